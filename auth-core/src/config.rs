//! Settings both servers read from the environment (names are part of the interface:
//! README lists them, deployments and checks outside the repo rely on them).

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use rand::distributions::Alphanumeric;
use rand::Rng;

pub use crate::client::TrustedProxies;

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

/// A duration in whole seconds; 0 allowed (for settings where 0 means "off" or "at once").
pub fn env_secs_or_zero(name: &str, default_s: u64) -> Result<Duration, ConfigError> {
    Ok(Duration::from_secs(env_or(name, default_s)?))
}

/// A comma-separated list; empty entries are ignored.
pub fn env_list(name: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
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

/// `REDIS_URL`, which may carry a password: shown everywhere (logs, errors, `Debug`) with
/// the password replaced, so no secret reaches a log line.
#[derive(Clone)]
pub struct RedisUrl(String);

impl RedisUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The real URL, for the Redis client only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for RedisUrl {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl std::fmt::Display for RedisUrl {
    /// `redis://user:secret@host/0` -> `redis://user:***@host/0`; anything else unchanged.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = &self.0;
        let Some((scheme, rest)) = url.split_once("://") else {
            return f.write_str(url);
        };
        // The authority ends at the first `/`; its user info at the last `@` inside it.
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let (authority, path) = rest.split_at(authority_end);
        match authority.rsplit_once('@') {
            Some((user_info, host)) => {
                let user = user_info.split_once(':').map_or("", |(u, _)| u);
                write!(f, "{scheme}://{user}:***@{host}{path}")
            }
            None => f.write_str(url),
        }
    }
}

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedisUrl({self})")
    }
}

/// Where the store is: one Redis (`REDIS_URL`) or a Redis Cluster (`REDIS_CLUSTER_NODES`,
/// some or all of its nodes; the client learns the rest and the slot map from them).
#[derive(Clone)]
pub enum RedisTarget {
    Single(RedisUrl),
    Cluster(Vec<RedisUrl>),
}

impl RedisTarget {
    /// `REDIS_CLUSTER_NODES` (comma-separated `host:port` or `redis://[user:password@]host:port`)
    /// when set, else `REDIS_URL` (default `redis://127.0.0.1:6379`). Both set is an error: a
    /// deployment that meant one and got the other would run without saying so.
    pub fn from_env() -> Result<Self, ConfigError> {
        let nodes = env_list("REDIS_CLUSTER_NODES");
        if nodes.is_empty() {
            return Ok(Self::Single(env_or(
                "REDIS_URL",
                RedisUrl::new("redis://127.0.0.1:6379"),
            )?));
        }
        if std::env::var("REDIS_URL").is_ok_and(|v| !v.trim().is_empty()) {
            return Err(ConfigError(
                "REDIS_URL and REDIS_CLUSTER_NODES are both set; set only one".into(),
            ));
        }
        Ok(Self::cluster(nodes))
    }

    /// A cluster from node addresses; a bare `host:port` gets the `redis://` scheme.
    pub fn cluster<S: AsRef<str>>(nodes: impl IntoIterator<Item = S>) -> Self {
        Self::Cluster(
            nodes
                .into_iter()
                .map(|n| {
                    let n = n.as_ref();
                    if n.contains("://") {
                        RedisUrl::new(n)
                    } else {
                        RedisUrl::new(format!("redis://{n}"))
                    }
                })
                .collect(),
        )
    }
}

impl From<String> for RedisTarget {
    fn from(url: String) -> Self {
        Self::Single(RedisUrl::new(url))
    }
}

impl std::fmt::Display for RedisTarget {
    /// Passwords hidden, as `RedisUrl` shows them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Single(url) => write!(f, "{url}"),
            Self::Cluster(nodes) => {
                f.write_str("cluster [")?;
                for (i, n) in nodes.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{n}")?;
                }
                f.write_str("]")
            }
        }
    }
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedisTarget({self})")
    }
}

/// What both servers need, whatever their auth model.
#[derive(Debug, Clone)]
pub struct CommonSettings {
    /// `LISTEN_ADDR`: where to listen; port 0 picks a free port (tests).
    pub listen_addr: SocketAddr,
    /// `REDIS_URL` or `REDIS_CLUSTER_NODES`: the Redis (or Redis Cluster) holding users
    /// (and sessions or refresh tokens); passwords are never shown.
    pub redis: RedisTarget,
    /// `WORKERS`: actix worker threads; default the CPUs this process may use.
    pub workers: usize,
    /// `BOOTSTRAP_ADMIN`: `username:password` of an admin created at start if missing.
    pub bootstrap_admin: Option<(String, String)>,
    /// `LOGIN_MAX_FAILURES`: failed logins per username per window before 429
    /// (ten times as many per client address).
    pub login_max_failures: u64,
    /// `LOGIN_FAILURE_WINDOW`: seconds over which failed logins are counted.
    pub login_failure_window_s: u64,
    /// `SIGNUP_MAX`: signup attempts per client (created or refused alike) per window.
    pub signup_max: u64,
    /// `SIGNUP_WINDOW`: seconds over which signups are counted.
    pub signup_window_s: u64,
    /// `DEVICE_TTL`: how long a device credential (an earlier successful login's proof,
    /// `device`) lets its owner past the wider failed-login limits.
    pub device_ttl: Duration,
    /// `TRUSTED_PROXIES`: peers (IP addresses or CIDR ranges) whose `X-Forwarded-For` is
    /// believed; default none, so the client is the TCP peer.
    pub trusted_proxies: TrustedProxies,
    /// `REFRESH_REUSE_INTERVAL`: seconds during which a just-replaced session id or refresh
    /// token is answered as its successor (a retry whose first answer was lost); 0 = off.
    pub refresh_reuse_interval: Duration,
    /// `CORS_ALLOWED_ORIGINS`: origins (`https://app.example`) allowed to call the API from a
    /// browser; default none (no CORS headers at all).
    pub cors_allowed_origins: Vec<String>,
    /// `SHUTDOWN_TIMEOUT`: seconds in-flight requests get to finish after SIGTERM (default 8,
    /// below Docker's 10 s stop grace).
    pub shutdown_timeout: Duration,
}

/// `scheme://host[:port]`, lower-cased, as a browser sends it in `Origin`.
pub fn parse_origin(raw: &str) -> Result<String, String> {
    let o = raw.trim().trim_end_matches('/').to_ascii_lowercase();
    let Some((scheme, host)) = o.split_once("://") else {
        return Err(format!("`{raw}` is not an origin like https://app.example"));
    };
    if !matches!(scheme, "http" | "https")
        || host.is_empty()
        || host.contains(['/', '?', '#', '@', ' ', '*'])
    {
        return Err(format!(
            "`{raw}` is not an origin like https://app.example (scheme, host, optional port; no path, no wildcard)"
        ));
    }
    Ok(o)
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
        let login_max_failures: u64 = env_or("LOGIN_MAX_FAILURES", 10)?;
        if login_max_failures == 0 {
            return Err(ConfigError("LOGIN_MAX_FAILURES must be at least 1".into()));
        }
        let signup_max: u64 = env_or("SIGNUP_MAX", 20)?;
        if signup_max == 0 {
            return Err(ConfigError("SIGNUP_MAX must be at least 1".into()));
        }
        let trusted_proxies = TrustedProxies::parse(&env_list("TRUSTED_PROXIES"))
            .map_err(|e| ConfigError(format!("TRUSTED_PROXIES: {e}")))?;
        let cors_allowed_origins = env_list("CORS_ALLOWED_ORIGINS")
            .iter()
            .map(|o| parse_origin(o))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ConfigError(format!("CORS_ALLOWED_ORIGINS: {e}")))?;
        Ok(Self {
            listen_addr: env_or("LISTEN_ADDR", SocketAddr::from(([0, 0, 0, 0], 8080)))?,
            redis: RedisTarget::from_env()?,
            workers,
            bootstrap_admin,
            login_max_failures,
            login_failure_window_s: env_secs("LOGIN_FAILURE_WINDOW", 300)?.as_secs(),
            signup_max,
            signup_window_s: env_secs("SIGNUP_WINDOW", 300)?.as_secs(),
            device_ttl: env_secs("DEVICE_TTL", 30 * 24 * 60 * 60)?,
            trusted_proxies,
            refresh_reuse_interval: env_secs_or_zero("REFRESH_REUSE_INTERVAL", 10)?,
            cors_allowed_origins,
            shutdown_timeout: env_secs_or_zero("SHUTDOWN_TIMEOUT", 8)?,
        })
    }

    /// Settings for tests: port 0 on loopback, one worker, the contract's defaults but for
    /// `SIGNUP_MAX`: tests sign many users up from 127.0.0.1 (the signup throttling test
    /// sets its own).
    pub fn for_tests(redis: impl Into<RedisTarget>) -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            redis: redis.into(),
            workers: 1,
            bootstrap_admin: None,
            login_max_failures: 10,
            login_failure_window_s: 300,
            signup_max: 100_000,
            signup_window_s: 300,
            device_ttl: Duration::from_secs(30 * 24 * 60 * 60),
            trusted_proxies: TrustedProxies::default(),
            refresh_reuse_interval: Duration::from_secs(10),
            cors_allowed_origins: Vec::new(),
            shutdown_timeout: Duration::from_secs(8),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redis_url_never_shows_its_password() {
        for (raw, shown) in [
            ("redis://:hunter2@redis:6379/0", "redis://:***@redis:6379/0"),
            ("redis://app:hunter2@redis", "redis://app:***@redis"),
            ("rediss://app:p@ss@host/1", "rediss://app:***@host/1"),
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
        ] {
            let url = RedisUrl::new(raw);
            assert_eq!(url.to_string(), shown);
            assert!(!format!("{url:?}").contains("hunter2"));
            assert_eq!(url.expose(), raw);
        }
    }

    #[test]
    fn cluster_nodes_get_a_scheme_and_hide_their_passwords() {
        let target = RedisTarget::cluster(["127.0.0.1:7000", "redis://:hunter2@10.0.0.2:7001"]);
        assert_eq!(
            target.to_string(),
            "cluster [redis://127.0.0.1:7000, redis://:***@10.0.0.2:7001]"
        );
        assert!(!format!("{target:?}").contains("hunter2"));
        let RedisTarget::Cluster(nodes) = target else {
            panic!("a cluster")
        };
        assert_eq!(nodes[0].expose(), "redis://127.0.0.1:7000");
    }

    #[test]
    fn origins_are_normalised_and_checked() {
        assert_eq!(
            parse_origin("HTTPS://App.Example:8443/").unwrap(),
            "https://app.example:8443"
        );
        for bad in [
            "app.example",
            "ftp://x",
            "https://",
            "https://a/b",
            "https://*.x",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }
}
