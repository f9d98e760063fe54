//! The real binary: bad settings stop it with a message, never a panic.

use std::process::Command;

fn run_with(vars: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_session-server"))
        .env_clear()
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .envs(vars.iter().copied())
        .output()
        .expect("the binary runs");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn a_short_session_key_is_a_clear_error() {
    let (ok, text) = run_with(&[("SESSION_KEY", "too-short")]);
    assert!(!ok);
    assert!(
        text.contains("SESSION_KEY is 9 bytes long; it must be at least 64 bytes"),
        "{text}"
    );
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn bad_values_name_the_variable() {
    for (var, value) in [
        ("SESSION_STORE", "disk"),
        ("COOKIE_SECURE", "maybe"),
        ("SESSION_IDLE_TIMEOUT", "-5"),
        ("WORKERS", "0"),
        ("LISTEN_ADDR", "nowhere"),
        ("BOOTSTRAP_ADMIN", "nopassword"),
    ] {
        let (ok, text) = run_with(&[(var, value)]);
        assert!(!ok, "{var}={value}");
        assert!(text.contains(var), "{var}={value}: {text}");
        assert!(!text.contains("panicked"), "{text}");
    }
}

#[test]
fn an_unreachable_redis_is_a_clear_error() {
    let (ok, text) = run_with(&[]);
    assert!(!ok);
    assert!(
        text.contains("cannot connect to Redis at redis://127.0.0.1:1"),
        "{text}"
    );
    assert!(!text.contains("panicked"), "{text}");
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish() {
    conformance::process::sigterm_lets_in_flight_requests_finish(
        env!("CARGO_BIN_EXE_session-server"),
        &[
            ("COOKIE_SECURE", "false"),
            ("SESSION_KEY", &"k".repeat(64)),
            ("JWT_SECRET", &"s".repeat(32)),
        ],
    )
    .await;
}
