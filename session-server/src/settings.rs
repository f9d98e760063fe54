//! The session server's settings: the common ones plus the cookie and session timeouts.

use std::time::Duration;

use auth_core::config::{env_bool, env_or, env_secret, env_secs, CommonSettings, ConfigError};

/// Where session state lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// Shared by every replica: any replica can serve any session.
    Redis,
    /// In this replica's memory: only the replica that created a session knows it.
    Memory,
}

impl std::str::FromStr for StoreKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "redis" => Ok(Self::Redis),
            "memory" => Ok(Self::Memory),
            other => Err(format!("`{other}` is neither `redis` nor `memory`")),
        }
    }
}

/// `COOKIE_SAMESITE`: when the browser attaches the session cookie to a request another
/// site started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// Top-level navigations only (a link), never a cross-site form POST or fetch.
    Lax,
    /// Never from another site, not even a link.
    Strict,
    /// Always (needs `Secure`): for an API on another site than its app.
    None,
}

impl std::str::FromStr for SameSite {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "lax" => Ok(Self::Lax),
            "strict" => Ok(Self::Strict),
            "none" => Ok(Self::None),
            _ => Err(format!("`{s}` is not `Lax`, `Strict` or `None`")),
        }
    }
}

impl SameSite {
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::Lax => "Lax",
            SameSite::Strict => "Strict",
            SameSite::None => "None",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub common: CommonSettings,
    /// `COOKIE_SECURE`: mark the cookie `Secure` and name it `__Host-sid` (a browser then
    /// refuses it from plain HTTP or with a `Domain`); `false` (cookie `sid`) only for
    /// plain-HTTP local runs.
    pub cookie_secure: bool,
    /// `COOKIE_SAMESITE`: `Lax` (default), `Strict` or `None` (needs `COOKIE_SECURE=true`).
    pub cookie_samesite: SameSite,
    /// `SESSION_KEY`: at least 64 bytes; signs the cookie's value. Every replica
    /// needs the same one.
    pub session_key: Vec<u8>,
    /// `SESSION_IDLE_TIMEOUT`: seconds without a request after which a session ends.
    pub idle_timeout: Duration,
    /// `SESSION_ABSOLUTE_TIMEOUT`: seconds after login after which a session ends anyway.
    pub absolute_timeout: Duration,
    /// `SESSION_STORE`: `redis` (default) or `memory`.
    pub store: StoreKind,
}

/// The cookie key must be 64 bytes (actix's `Key` needs that much).
pub const SESSION_KEY_MIN_BYTES: usize = 64;

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let settings = Self {
            common: CommonSettings::from_env()?,
            cookie_secure: env_bool("COOKIE_SECURE", true)?,
            cookie_samesite: env_or("COOKIE_SAMESITE", SameSite::Lax)?,
            session_key: env_secret("SESSION_KEY", SESSION_KEY_MIN_BYTES)?,
            idle_timeout: env_secs("SESSION_IDLE_TIMEOUT", 30 * 60)?,
            absolute_timeout: env_secs("SESSION_ABSOLUTE_TIMEOUT", 8 * 60 * 60)?,
            store: env_or("SESSION_STORE", StoreKind::Redis)?,
        };
        if settings.cookie_samesite == SameSite::None && !settings.cookie_secure {
            return Err(ConfigError(
                "COOKIE_SAMESITE=None needs COOKIE_SECURE=true (browsers drop such cookies otherwise)"
                    .into(),
            ));
        }
        if settings.absolute_timeout < settings.idle_timeout {
            return Err(ConfigError(
                "SESSION_ABSOLUTE_TIMEOUT must not be shorter than SESSION_IDLE_TIMEOUT".into(),
            ));
        }
        Ok(settings)
    }

    /// Plain-HTTP settings on a free loopback port, for tests.
    pub fn for_tests(redis: impl Into<auth_core::config::RedisTarget>) -> Self {
        Self {
            common: CommonSettings::for_tests(redis),
            cookie_secure: false,
            cookie_samesite: SameSite::Lax,
            session_key: vec![b'k'; SESSION_KEY_MIN_BYTES],
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Duration::from_secs(8 * 60 * 60),
            store: StoreKind::Redis,
        }
    }
}
