//! The real binary: bad settings stop it with a message, never a panic; SIGTERM drains.

use conformance::process::{assert_common_settings_are_checked, assert_refuses_to_start};

const BIN: &str = env!("CARGO_BIN_EXE_session-server");

#[test]
fn bad_settings_are_clear_errors() {
    assert_common_settings_are_checked(BIN);
    assert_refuses_to_start(
        BIN,
        &[("SESSION_KEY", "too-short")],
        "SESSION_KEY is 9 bytes long; it must be at least 64 bytes",
    );
    for (var, value) in [
        ("SESSION_STORE", "disk"),
        ("COOKIE_SECURE", "maybe"),
        ("SESSION_IDLE_TIMEOUT", "-5"),
        ("SESSION_ABSOLUTE_TIMEOUT", "0"),
    ] {
        assert_refuses_to_start(BIN, &[(var, value)], var);
    }
    assert_refuses_to_start(
        BIN,
        &[
            ("SESSION_IDLE_TIMEOUT", "600"),
            ("SESSION_ABSOLUTE_TIMEOUT", "60"),
        ],
        "SESSION_ABSOLUTE_TIMEOUT must not be shorter than SESSION_IDLE_TIMEOUT",
    );
    assert_refuses_to_start(BIN, &[("COOKIE_SAMESITE", "sometimes")], "COOKIE_SAMESITE");
    assert_refuses_to_start(
        BIN,
        &[("COOKIE_SAMESITE", "None"), ("COOKIE_SECURE", "false")],
        "COOKIE_SAMESITE=None needs COOKIE_SECURE=true",
    );
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish() {
    conformance::process::sigterm_lets_in_flight_requests_finish(
        BIN,
        &[("COOKIE_SECURE", "false"), ("SESSION_KEY", &"k".repeat(64))],
    )
    .await;
}

#[tokio::test]
async fn sigterm_does_not_wait_for_a_stalled_body() {
    conformance::process::sigterm_does_not_wait_for_a_stalled_body(
        BIN,
        &[("COOKIE_SECURE", "false"), ("SESSION_KEY", &"k".repeat(64))],
    )
    .await;
}

/// `COOKIE_SAMESITE` reaches the cookie the real binary hands out (`None` only with
/// `Secure`, and then under the `__Host-` name).
#[tokio::test]
async fn cookie_samesite_is_what_the_setting_says() {
    let redis = conformance::RedisProcess::start().await;
    let url = redis.url();
    let key = "k".repeat(64);
    for (same_site, secure, name) in [
        ("Strict", "false", "sid="),
        ("Lax", "false", "sid="),
        ("None", "true", "__Host-sid="),
    ] {
        let server = conformance::process::ServerProcess::start(
            BIN,
            &[
                ("REDIS_URL", url.as_str()),
                ("SESSION_KEY", key.as_str()),
                ("COOKIE_SAMESITE", same_site),
                ("COOKIE_SECURE", secure),
            ],
        )
        .await;
        let creds = serde_json::json!({
            "username": conformance::random_username(),
            "password": conformance::PASSWORD,
        });
        let signup = server.post_json("/auth/signup", creds.clone()).await;
        assert_eq!(signup.status, 201, "{}", signup.text);
        let login = server.post_json("/auth/login", creds).await;
        assert_eq!(login.status, 200, "{}", login.text);
        // The session cookie, then the device credential's: both follow the setting.
        let cookies = login.set_cookies();
        assert_eq!(cookies.len(), 2, "{cookies:?}");
        let device = if secure == "true" {
            "__Host-did="
        } else {
            "did="
        };
        for (cookie, name) in cookies.iter().zip([name, device]) {
            let attrs: Vec<&str> = cookie.split(';').map(str::trim).collect();
            assert!(attrs[0].starts_with(name), "{same_site}: {attrs:?}");
            assert!(
                attrs.contains(&format!("SameSite={same_site}").as_str()),
                "{same_site}: {attrs:?}"
            );
            assert_eq!(attrs.contains(&"Secure"), secure == "true", "{attrs:?}");
        }
    }
}

#[tokio::test]
async fn the_binary_runs_on_a_redis_cluster() {
    conformance::process::the_binary_runs_on_a_redis_cluster(
        BIN,
        &[("COOKIE_SECURE", "false"), ("SESSION_KEY", &"k".repeat(64))],
    )
    .await;
}

#[tokio::test]
async fn the_binary_outlives_a_primary_failover() {
    conformance::process::the_binary_outlives_a_primary_failover(
        BIN,
        &[("COOKIE_SECURE", "false"), ("SESSION_KEY", &"k".repeat(64))],
    )
    .await;
}
