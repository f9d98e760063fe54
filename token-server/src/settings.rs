//! The token server's settings: the common ones plus signing keys and token lifetimes.

use std::path::PathBuf;
use std::time::Duration;

use auth_core::config::{env_bool, env_or, env_secret, env_secs, CommonSettings, ConfigError};

/// The signing algorithms this server offers; the verifier accepts only the configured one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlg {
    Hs256,
    EdDsa,
}

impl std::str::FromStr for SigningAlg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "HS256" => Ok(Self::Hs256),
            "EdDSA" => Ok(Self::EdDsa),
            other => Err(format!(
                "`{other}` is not supported: use `HS256` or `EdDSA`"
            )),
        }
    }
}

/// The key material for the chosen algorithm.
#[derive(Clone)]
pub enum KeySource {
    /// `JWT_SECRET` (or a random one when unset).
    Secret(Vec<u8>),
    /// `JWT_PRIVATE_KEY_FILE`: a PKCS#8 PEM Ed25519 private key.
    PemFile(PathBuf),
    /// EdDSA with no key file: a key generated for this process only.
    Generated,
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Secret(_) => f.write_str("Secret(<redacted>)"),
            KeySource::PemFile(p) => write!(f, "PemFile({})", p.display()),
            KeySource::Generated => f.write_str("Generated"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub common: CommonSettings,
    /// `JWT_ALG`: `HS256` (default) or `EdDSA`.
    pub alg: SigningAlg,
    /// `JWT_SECRET` (HS256, at least 32 bytes) or `JWT_PRIVATE_KEY_FILE` (EdDSA).
    pub key: KeySource,
    /// `ACCESS_TOKEN_TTL`: access token lifetime in seconds (default 900).
    pub access_ttl: Duration,
    /// `REFRESH_TOKEN_TTL`: refresh token lifetime in seconds (default 14 days).
    pub refresh_ttl: Duration,
    /// `ACCESS_DENYLIST`: an access token is refused as soon as its login ends (logout,
    /// logout-all, reuse), at one Redis read per request.
    pub access_denylist: bool,
    /// `REFRESH_FAMILY_MAX_AGE`: seconds after login after which a refresh-token family
    /// ends, however often it was rotated (default 30 days).
    pub family_max_age: Duration,
}

/// HS256 keys shorter than the hash output are weak; RFC 7518 section 3.2 asks for 256 bits.
pub const JWT_SECRET_MIN_BYTES: usize = 32;

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let alg = env_or("JWT_ALG", SigningAlg::Hs256)?;
        let key = match alg {
            SigningAlg::Hs256 => KeySource::Secret(env_secret("JWT_SECRET", JWT_SECRET_MIN_BYTES)?),
            SigningAlg::EdDsa => match std::env::var("JWT_PRIVATE_KEY_FILE") {
                Ok(p) if !p.is_empty() => KeySource::PemFile(p.into()),
                _ => {
                    tracing::warn!(
                        "JWT_ALG=EdDSA without JWT_PRIVATE_KEY_FILE: using a key generated for \
                         this process only. Replicas will not accept each other's tokens."
                    );
                    KeySource::Generated
                }
            },
        };
        Ok(Self {
            common: CommonSettings::from_env()?,
            alg,
            key,
            access_ttl: env_secs("ACCESS_TOKEN_TTL", 15 * 60)?,
            refresh_ttl: env_secs("REFRESH_TOKEN_TTL", 14 * 24 * 60 * 60)?,
            access_denylist: env_bool("ACCESS_DENYLIST", false)?,
            family_max_age: env_secs("REFRESH_FAMILY_MAX_AGE", 30 * 24 * 60 * 60)?,
        })
    }

    /// HS256 with a fixed test secret on a free loopback port.
    pub fn for_tests(redis: impl Into<auth_core::config::RedisTarget>) -> Self {
        Self {
            common: CommonSettings::for_tests(redis),
            alg: SigningAlg::Hs256,
            key: KeySource::Secret(b"test-only-secret-test-only-secret!".to_vec()),
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(14 * 24 * 60 * 60),
            access_denylist: false,
            family_max_age: Duration::from_secs(30 * 24 * 60 * 60),
        }
    }
}
