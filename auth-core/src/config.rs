//! Settings both servers read from the environment (names are part of the interface:
//! README lists them, deployments and checks outside the repo rely on them).

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use rand::distributions::Alphanumeric;
use rand::Rng;

/// A configuration error: start-up stops with this message, never a panic.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// Reads `name`, parsing it when set and returning `default` when unset.
pub fn env_or<T: FromStr>(name: &str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(raw) if !raw.trim().is_empty() => raw
            .trim()
            .parse()
            .map_err(|e| ConfigError(format!("{name}=`{raw}` is not valid: {e}"))),
        _ => Ok(default),
    }
}

/// A boolean variable: `true/false`, `1/0`, `yes/no`, `on/off`.
pub fn env_bool(name: &str, default: bool) -> Result<bool, ConfigError> {
    match std::env::var(name) {
        Ok(raw) if !raw.trim().is_empty() => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(ConfigError(format!(
                "{name}=`{raw}` is not a boolean (true/false)"
            ))),
        },
        _ => Ok(default),
    }
}

/// A duration in whole seconds, at least 1.
pub fn env_secs(name: &str, default_s: u64) -> Result<Duration, ConfigError> {
    let s: u64 = env_or(name, default_s)?;
    if s == 0 {
        return Err(ConfigError(format!("{name} must be at least 1 second")));
    }
    Ok(Duration::from_secs(s))
}

/// A shared secret every replica must agree on. Unset: a random one is generated and a
/// warning says replicas will not agree. Set but shorter than `min_len`: an error.
pub fn env_secret(name: &str, min_len: usize) -> Result<Vec<u8>, ConfigError> {
    match std::env::var(name) {
        Ok(raw) if !raw.is_empty() => {
            if raw.len() < min_len {
                return Err(ConfigError(format!(
                    "{name} is {} bytes long; it must be at least {min_len} bytes \
                     (e.g. `openssl rand -hex {min_len}`)",
                    raw.len()
                )));
            }
            // docker-compose.yml's defaults are published; say so where an operator looks.
            if raw.starts_with("local-only") {
                tracing::warn!(
                    "{name} is a published LOCAL-ONLY default: anyone can forge credentials \
                     with it. Set your own for anything but a local benchmark."
                );
            }
            Ok(raw.into_bytes())
        }
        _ => {
            tracing::warn!(
                "{name} is not set: using a random one for this process only. Replicas will \
                 not accept each other's credentials, and a restart invalidates them all."
            );
            Ok(rand::thread_rng()
                .sample_iter(&Alphanumeric)
                .take(min_len.max(64))
                .collect())
        }
    }
}

/// What both servers need, whatever their auth model.
#[derive(Debug, Clone)]
pub struct CommonSettings {
    /// `LISTEN_ADDR`: where to listen; port 0 picks a free port (tests).
    pub listen_addr: SocketAddr,
    /// `REDIS_URL`: the Redis holding users (and sessions or refresh tokens).
    pub redis_url: String,
    /// `WORKERS`: actix worker threads; default the CPUs this process may use.
    pub workers: usize,
    /// `BOOTSTRAP_ADMIN`: `username:password` of an admin created at start if missing.
    pub bootstrap_admin: Option<(String, String)>,
    /// `LOGIN_MAX_FAILURES`: failed logins per username per window before 429
    /// (ten times as many per client address).
    pub login_max_failures: u64,
    /// `LOGIN_FAILURE_WINDOW`: seconds over which failed logins are counted.
    pub login_failure_window_s: u64,
}

impl CommonSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let default_workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers: usize = env_or("WORKERS", default_workers)?;
        if workers == 0 {
            return Err(ConfigError("WORKERS must be at least 1".into()));
        }
        let bootstrap_admin = match std::env::var("BOOTSTRAP_ADMIN") {
            Ok(raw) if !raw.is_empty() => match raw.split_once(':') {
                Some((u, p)) if !u.is_empty() && !p.is_empty() => {
                    Some((u.to_owned(), p.to_owned()))
                }
                _ => {
                    return Err(ConfigError(
                        "BOOTSTRAP_ADMIN must be `username:password`".into(),
                    ))
                }
            },
            _ => None,
        };
        Ok(Self {
            listen_addr: env_or("LISTEN_ADDR", SocketAddr::from(([0, 0, 0, 0], 8080)))?,
            redis_url: env_or("REDIS_URL", "redis://127.0.0.1:6379".to_owned())?,
            workers,
            bootstrap_admin,
            login_max_failures: env_or("LOGIN_MAX_FAILURES", 10)?,
            login_failure_window_s: env_secs("LOGIN_FAILURE_WINDOW", 300)?.as_secs(),
        })
    }

    /// Settings for tests: port 0 on loopback, one worker.
    pub fn for_tests(redis_url: String) -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            redis_url,
            workers: 1,
            bootstrap_admin: None,
            login_max_failures: 10,
            login_failure_window_s: 300,
        }
    }
}
