//! Access and refresh tokens: what they carry, how they are signed and how they are
//! checked. Whether a refresh token is still live is Redis's business (`refresh_tokens`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth_core::contract::{UserRef, UserView};
use jsonwebtoken::{decode, encode, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::keys::Keys;

pub const ISSUER: &str = "token-server";
/// Access tokens are for the API...
pub const ACCESS_AUDIENCE: &str = "session-vs-token-api";
/// ...refresh tokens only for `/auth/refresh` and `/auth/logout`: with a different `aud`
/// and `typ`, neither verifies as the other.
pub const REFRESH_AUDIENCE: &str = "token-server/refresh";
pub const ACCESS_TYP: &str = "at+jwt";
pub const REFRESH_TYP: &str = "rt+jwt";
/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_S: u64 = 30;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub exp: u64,
    pub iat: u64,
    pub nbf: u64,
    pub jti: String,
    pub roles: Vec<String>,
    /// So `/api/me` needs no lookup.
    pub preferred_username: String,
}

impl AccessClaims {
    pub fn user_ref(&self) -> UserRef<'_> {
        UserRef {
            id: &self.sub,
            username: &self.preferred_username,
            roles: &self.roles,
        }
    }

    pub fn user(&self) -> UserView {
        UserView {
            id: self.sub.clone(),
            username: self.preferred_username.clone(),
            roles: self.roles.clone(),
        }
    }
}

/// No user data: a refresh token only names its family; Redis knows the rest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshClaims {
    pub iss: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
    pub nbf: u64,
    pub jti: String,
    pub fam: String,
}

/// Why a token was refused; every case answers `401 invalid_token`, the detail is logged.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token rejected: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error("token has typ {0:?}, expected {1}")]
    WrongType(Option<String>, &'static str),
    #[error("token has kid {0:?}, which is not this server's")]
    UnknownKey(Option<String>),
}

pub fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub struct TokenCodec {
    keys: Keys,
    access_ttl: Duration,
    refresh_ttl: Duration,
    access_validation: Validation,
    refresh_validation: Validation,
}

fn validation(keys: &Keys, audience: &str) -> Validation {
    let mut v = Validation::new(keys.alg);
    v.algorithms = vec![keys.alg];
    v.set_issuer(&[ISSUER]);
    v.set_audience(&[audience]);
    v.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "jti"]);
    v.validate_exp = true;
    v.validate_nbf = true;
    v.leeway = LEEWAY_S;
    v
}

impl TokenCodec {
    pub fn new(keys: Keys, access_ttl: Duration, refresh_ttl: Duration) -> Self {
        Self {
            access_validation: validation(&keys, ACCESS_AUDIENCE),
            refresh_validation: validation(&keys, REFRESH_AUDIENCE),
            keys,
            access_ttl,
            refresh_ttl,
        }
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    pub fn refresh_ttl(&self) -> Duration {
        self.refresh_ttl
    }

    fn header(&self, typ: &str) -> Header {
        let mut h = Header::new(self.keys.alg);
        h.typ = Some(typ.into());
        h.kid = Some(self.keys.kid.clone());
        h
    }

    fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> anyhow::Result<String> {
        encode(&self.header(typ), claims, &self.keys.encoding)
            .map_err(|e| anyhow::anyhow!("signing failed: {e}"))
    }

    pub fn issue_access(&self, user: &UserView) -> anyhow::Result<(String, AccessClaims)> {
        let now = now_s();
        let claims = AccessClaims {
            iss: ISSUER.into(),
            aud: ACCESS_AUDIENCE.into(),
            sub: user.id.clone(),
            exp: now + self.access_ttl.as_secs(),
            iat: now,
            nbf: now,
            jti: uuid::Uuid::new_v4().to_string(),
            roles: user.roles.clone(),
            preferred_username: user.username.clone(),
        };
        Ok((self.sign(ACCESS_TYP, &claims)?, claims))
    }

    pub fn issue_refresh(&self, family: &str) -> anyhow::Result<(String, RefreshClaims)> {
        let now = now_s();
        let claims = RefreshClaims {
            iss: ISSUER.into(),
            aud: REFRESH_AUDIENCE.into(),
            exp: now + self.refresh_ttl.as_secs(),
            iat: now,
            nbf: now,
            jti: uuid::Uuid::new_v4().to_string(),
            fam: family.into(),
        };
        Ok((self.sign(REFRESH_TYP, &claims)?, claims))
    }

    fn verify<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        typ: &'static str,
        validation: &Validation,
    ) -> Result<T, TokenError> {
        let data = decode::<T>(token, &self.keys.decoding, validation)?;
        if data.header.typ.as_deref() != Some(typ) {
            return Err(TokenError::WrongType(data.header.typ, typ));
        }
        if data.header.kid.as_deref() != Some(self.keys.kid.as_str()) {
            return Err(TokenError::UnknownKey(data.header.kid));
        }
        Ok(data.claims)
    }

    /// Signature, `alg`, `typ`, `kid`, `iss`, `aud`, `exp`, `nbf` and the presence of every
    /// claim; no Redis.
    pub fn verify_access(&self, token: &str) -> Result<AccessClaims, TokenError> {
        self.verify(token, ACCESS_TYP, &self.access_validation)
    }

    pub fn verify_refresh(&self, token: &str) -> Result<RefreshClaims, TokenError> {
        self.verify(token, REFRESH_TYP, &self.refresh_validation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{KeySource, SigningAlg};

    fn codec() -> TokenCodec {
        let keys = Keys::load(SigningAlg::Hs256, &KeySource::Secret(vec![7; 32])).unwrap();
        TokenCodec::new(keys, Duration::from_secs(60), Duration::from_secs(600))
    }

    fn user() -> UserView {
        UserView {
            id: "u1".into(),
            username: "alice".into(),
            roles: vec!["user".into()],
        }
    }

    #[test]
    fn an_access_token_round_trips_and_is_not_a_refresh_token() {
        let c = codec();
        let (token, claims) = c.issue_access(&user()).unwrap();
        assert_eq!(c.verify_access(&token).unwrap().sub, claims.sub);
        assert!(c.verify_refresh(&token).is_err());
    }

    #[test]
    fn a_refresh_token_is_not_an_access_token_and_carries_no_user() {
        let c = codec();
        let (token, _) = c.issue_refresh("fam1").unwrap();
        assert_eq!(c.verify_refresh(&token).unwrap().fam, "fam1");
        assert!(c.verify_access(&token).is_err());
        let payload = token.split('.').nth(1).unwrap();
        use base64::Engine;
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        let json = String::from_utf8(json).unwrap();
        assert!(!json.contains("alice") && !json.contains("u1") && !json.contains("sub"));
    }

    #[test]
    fn eddsa_tokens_verify_with_the_published_key_only() {
        let keys = Keys::load(SigningAlg::EdDsa, &KeySource::Generated).unwrap();
        let jwks = keys.jwks.clone().unwrap();
        let c = TokenCodec::new(keys, Duration::from_secs(60), Duration::from_secs(600));
        let (token, _) = c.issue_access(&user()).unwrap();
        let public = jsonwebtoken::DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
        let mut v = Validation::new(jsonwebtoken::Algorithm::EdDSA);
        v.set_audience(&[ACCESS_AUDIENCE]);
        assert!(decode::<AccessClaims>(&token, &public, &v).is_ok());
        let other = Keys::load(SigningAlg::EdDsa, &KeySource::Generated).unwrap();
        let other = TokenCodec::new(other, Duration::from_secs(60), Duration::from_secs(600));
        assert!(other.verify_access(&token).is_err());
    }
}
