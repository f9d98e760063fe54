//! The real binary: bad settings stop it with a message, never a panic; SIGTERM drains.

use conformance::process::{assert_common_settings_are_checked, assert_refuses_to_start};

const BIN: &str = env!("CARGO_BIN_EXE_token-server");

#[test]
fn bad_settings_are_clear_errors() {
    assert_common_settings_are_checked(BIN);
    assert_refuses_to_start(
        BIN,
        &[("JWT_SECRET", "too-short")],
        "JWT_SECRET is 9 bytes long; it must be at least 32 bytes",
    );
    for (var, value) in [
        ("JWT_ALG", "none"),
        ("ACCESS_DENYLIST", "maybe"),
        ("ACCESS_TOKEN_TTL", "-5"),
        ("REFRESH_TOKEN_TTL", "0"),
        ("REFRESH_FAMILY_MAX_AGE", "0"),
    ] {
        assert_refuses_to_start(BIN, &[(var, value)], var);
    }
    let path = std::env::temp_dir().join(format!("svt-bad-{}.pem", std::process::id()));
    std::fs::write(&path, "not a key").unwrap();
    let file = path.to_str().unwrap();
    assert_refuses_to_start(
        BIN,
        &[("JWT_ALG", "EdDSA"), ("JWT_PRIVATE_KEY_FILE", file)],
        "JWT_PRIVATE_KEY_FILE",
    );
    let _ = std::fs::remove_file(&path);
    assert_refuses_to_start(
        BIN,
        &[
            ("JWT_ALG", "EdDSA"),
            ("JWT_PRIVATE_KEY_FILE", "/nonexistent/key.pem"),
        ],
        "cannot read",
    );
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish() {
    conformance::process::sigterm_lets_in_flight_requests_finish(
        BIN,
        &[("JWT_SECRET", &"s".repeat(32))],
    )
    .await;
}

#[tokio::test]
async fn sigterm_does_not_wait_for_a_stalled_body() {
    conformance::process::sigterm_does_not_wait_for_a_stalled_body(
        BIN,
        &[("JWT_SECRET", &"s".repeat(32))],
    )
    .await;
}

#[tokio::test]
async fn the_binary_runs_on_a_redis_cluster() {
    conformance::process::the_binary_runs_on_a_redis_cluster(
        BIN,
        &[("JWT_SECRET", &"s".repeat(32))],
    )
    .await;
}

#[tokio::test]
async fn the_binary_outlives_a_primary_failover() {
    conformance::process::the_binary_outlives_a_primary_failover(
        BIN,
        // The denylist makes every authenticated request read the store.
        &[("JWT_SECRET", &"s".repeat(32)), ("ACCESS_DENYLIST", "true")],
    )
    .await;
}
