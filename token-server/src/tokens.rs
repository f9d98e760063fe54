//! Access and refresh tokens: what they carry, how they are signed and how they are
//! checked. Whether a refresh token is still live is Redis's business (`refresh_tokens`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth_core::contract::{Scopes, UserRef, UserView};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::Mac;
use jsonwebtoken::{encode, Algorithm, Header};
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
    pub iss: Issuer,
    pub aud: AccessAudience,
    pub sub: String,
    pub exp: u64,
    pub iat: u64,
    pub nbf: u64,
    pub jti: String,
    pub roles: Vec<String>,
    /// So `/api/me` needs no lookup.
    pub preferred_username: String,
    /// What the token may be used for (`read`, `admin`), granted at login.
    pub scope: Scopes,
    /// The login (refresh-token family) the token was issued under: with the revocation
    /// check on, a token is refused as soon as its login is ended.
    pub sid: String,
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
    pub iss: Issuer,
    pub aud: RefreshAudience,
    pub exp: u64,
    pub iat: u64,
    pub nbf: u64,
    pub jti: String,
    pub fam: String,
    /// When the user logged in (unix s): the family ends `REFRESH_FAMILY_MAX_AGE` after it,
    /// however often it is rotated.
    pub auth_time: u64,
}

/// Why a token was refused; every case answers `401 invalid_token`, the detail is logged.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("not a compact JWS (three base64url parts)")]
    Malformed,
    #[error("the header is not valid JSON: {0}")]
    Header(serde_json::Error),
    #[error("the claims are missing or of the wrong type: {0}")]
    Claims(serde_json::Error),
    #[error("alg {0:?} is not the one this server signs with")]
    WrongAlgorithm(String),
    #[error("the header has `crit`: no extension is understood here")]
    Critical,
    #[error("token has typ {0:?}, expected {1}")]
    WrongType(Option<String>, &'static str),
    #[error("token has kid {0:?}, which is not this server's")]
    UnknownKey(Option<String>),
    #[error("the signature does not verify")]
    Signature,
    #[error("expired")]
    Expired,
    #[error("not valid yet (nbf)")]
    NotYetValid,
    #[error("issued in the future (iat)")]
    IssuedInTheFuture,
    #[error("lives longer than this server issues tokens for")]
    TooLong,
}

/// The JOSE header fields this server reads. `crit` is only looked for: a token that needs
/// an extension understood is refused (RFC 7515 section 4.1.11).
#[derive(serde::Deserialize)]
struct JoseHeader {
    alg: String,
    typ: Option<String>,
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

/// A claim whose value is fixed (`iss`, `aud`): a unit type that writes its one value and
/// refuses any other when read, so a token for another issuer or audience never
/// deserializes, and a valid one costs no allocation for it.
macro_rules! fixed_claim {
    ($name:ident, $value:expr) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name;

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($value)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let v = std::borrow::Cow::<str>::deserialize(d)?;
                if v == $value {
                    Ok($name)
                } else {
                    Err(serde::de::Error::custom(format_args!(
                        "expected `{}`",
                        $value
                    )))
                }
            }
        }
    };
}
fixed_claim!(Issuer, ISSUER);
fixed_claim!(AccessAudience, ACCESS_AUDIENCE);
fixed_claim!(RefreshAudience, REFRESH_AUDIENCE);

/// The registered claims every token of this server has, checked by `verify` (`iss` and
/// `aud` are checked by their types).
pub trait Registered {
    fn exp(&self) -> u64;
    fn nbf(&self) -> u64;
    fn iat(&self) -> u64;
}

macro_rules! registered {
    ($t:ty) => {
        impl Registered for $t {
            fn exp(&self) -> u64 {
                self.exp
            }
            fn nbf(&self) -> u64 {
                self.nbf
            }
            fn iat(&self) -> u64 {
                self.iat
            }
        }
    };
}
registered!(AccessClaims);
registered!(RefreshClaims);

pub fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The header of every token this server signs.
fn jose_header(keys: &Keys, typ: &str) -> Header {
    let mut h = Header::new(keys.alg);
    h.typ = Some(typ.into());
    h.kid = Some(keys.kid.clone());
    h
}

pub struct TokenCodec {
    keys: Keys,
    /// The first part of every access (refresh) token this server signs, base64url: the
    /// header `sign` writes.
    access_header: String,
    refresh_header: String,
    /// `alg` as it appears in the header of every token this server signs.
    alg_name: &'static str,
    access_ttl: Duration,
    refresh_ttl: Duration,
    family_max_age: Duration,
}

impl TokenCodec {
    pub fn new(
        keys: Keys,
        access_ttl: Duration,
        refresh_ttl: Duration,
        family_max_age: Duration,
    ) -> Self {
        let encoded_header = |typ: &str| {
            let json =
                serde_json::to_vec(&jose_header(&keys, typ)).expect("a JOSE header serialises");
            URL_SAFE_NO_PAD.encode(json)
        };
        Self {
            access_header: encoded_header(ACCESS_TYP),
            refresh_header: encoded_header(REFRESH_TYP),
            alg_name: match keys.alg {
                Algorithm::EdDSA => "EdDSA",
                _ => "HS256",
            },
            keys,
            access_ttl,
            refresh_ttl,
            family_max_age,
        }
    }

    pub fn family_max_age(&self) -> Duration {
        self.family_max_age
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

    fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> anyhow::Result<String> {
        encode(&jose_header(&self.keys, typ), claims, &self.keys.encoding)
            .map_err(|e| anyhow::anyhow!("signing failed: {e}"))
    }

    pub fn issue_access(
        &self,
        user: &UserView,
        scope: Scopes,
        sid: &str,
    ) -> anyhow::Result<(String, AccessClaims)> {
        let now = now_s();
        let claims = AccessClaims {
            iss: Issuer,
            aud: AccessAudience,
            sub: user.id.clone(),
            exp: now + self.access_ttl.as_secs(),
            iat: now,
            nbf: now,
            jti: uuid::Uuid::new_v4().to_string(),
            roles: user.roles.clone(),
            preferred_username: user.username.clone(),
            scope,
            sid: sid.to_owned(),
        };
        Ok((self.sign(ACCESS_TYP, &claims)?, claims))
    }

    /// A refresh token of `family`, started at `auth_time`: it expires after
    /// `REFRESH_TOKEN_TTL`, or when the family reaches `REFRESH_FAMILY_MAX_AGE`, whichever
    /// comes first. `None` when the family is already that old.
    pub fn issue_refresh(
        &self,
        family: &str,
        auth_time: u64,
    ) -> anyhow::Result<Option<(String, RefreshClaims)>> {
        let now = now_s();
        let exp = (now + self.refresh_ttl.as_secs())
            .min(auth_time.saturating_add(self.family_max_age.as_secs()));
        if exp <= now {
            return Ok(None);
        }
        let claims = RefreshClaims {
            iss: Issuer,
            aud: RefreshAudience,
            exp,
            iat: now,
            nbf: now,
            jti: uuid::Uuid::new_v4().to_string(),
            fam: family.into(),
            auth_time,
        };
        Ok(Some((self.sign(REFRESH_TYP, &claims)?, claims)))
    }

    /// Every check, in an order that trusts nothing unverified: the header's shape, `alg`
    /// (only the configured one), no `crit`, `typ`, `kid`; then the signature; only then the
    /// claims: `iss` and `aud` (by their types), `exp` and `nbf` (30 s leeway), `iat` not in
    /// the future, and a lifetime no longer than this server issues (a key-holder's `exp` in
    /// 2300 is refused). The claims are parsed once, and the header not at all when it is this
    /// server's own, byte for byte: jsonwebtoken's `decode` parsed each twice, on the hot path
    /// of every request.
    fn verify<T: serde::de::DeserializeOwned + Registered>(
        &self,
        token: &str,
        typ: &'static str,
        expected_header: &str,
        max_lifetime: Duration,
    ) -> Result<T, TokenError> {
        let mut parts = token.splitn(3, '.');
        let (Some(header_b64), Some(payload_b64), Some(signature)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        if signature.contains('.') {
            return Err(TokenError::Malformed);
        }
        // This server's own header, byte for byte, needs no decoding: it was checked once,
        // at start. Any other header gets every check.
        if header_b64 != expected_header {
            self.check_header(header_b64, typ)?;
        }
        let message = &token[..header_b64.len() + 1 + payload_b64.len()];
        let verified = match &self.keys.hs256 {
            Some(keyed) => {
                // An HS256 signature is 32 bytes: decoded on the stack.
                let mut raw = [0u8; 64];
                let n = URL_SAFE_NO_PAD
                    .decode_slice(signature, &mut raw)
                    .map_err(|_| TokenError::Malformed)?;
                let mut mac = keyed.clone();
                mac.update(message.as_bytes());
                // Constant-time comparison.
                mac.verify_slice(&raw[..n]).is_ok()
            }
            None => jsonwebtoken::crypto::verify(
                signature,
                message.as_bytes(),
                &self.keys.decoding,
                self.keys.alg,
            )
            .unwrap_or(false),
        };
        if !verified {
            return Err(TokenError::Signature);
        }
        let payload = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| TokenError::Malformed)?;
        let claims: T = serde_json::from_slice(&payload).map_err(TokenError::Claims)?;
        let now = now_s();
        if claims.exp().saturating_add(LEEWAY_S) <= now {
            return Err(TokenError::Expired);
        }
        if claims.nbf() > now + LEEWAY_S {
            return Err(TokenError::NotYetValid);
        }
        if claims.iat() > now + LEEWAY_S {
            return Err(TokenError::IssuedInTheFuture);
        }
        if claims.exp().saturating_sub(claims.iat()) > max_lifetime.as_secs() {
            return Err(TokenError::TooLong);
        }
        Ok(claims)
    }

    /// The header's shape, `alg` (only the configured one), no `crit`, `typ`, `kid`.
    fn check_header(&self, header_b64: &str, typ: &'static str) -> Result<(), TokenError> {
        let header = URL_SAFE_NO_PAD
            .decode(header_b64)
            .map_err(|_| TokenError::Malformed)?;
        let header: JoseHeader = serde_json::from_slice(&header).map_err(TokenError::Header)?;
        if header.alg != self.alg_name {
            return Err(TokenError::WrongAlgorithm(header.alg));
        }
        if header.crit.is_some() {
            return Err(TokenError::Critical);
        }
        if header.typ.as_deref() != Some(typ) {
            return Err(TokenError::WrongType(header.typ, typ));
        }
        if header.kid.as_deref() != Some(self.keys.kid.as_str()) {
            return Err(TokenError::UnknownKey(header.kid));
        }
        Ok(())
    }

    /// Signature, `alg`, `crit`, `typ`, `kid`, `iss`, `aud`, `exp`, `nbf`, `iat`, lifetime
    /// and the presence of every claim; no Redis.
    pub fn verify_access(&self, token: &str) -> Result<AccessClaims, TokenError> {
        self.verify(token, ACCESS_TYP, &self.access_header, self.access_ttl)
    }

    pub fn verify_refresh(&self, token: &str) -> Result<RefreshClaims, TokenError> {
        self.verify(token, REFRESH_TYP, &self.refresh_header, self.refresh_ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{KeySource, SigningAlg};

    fn codec() -> TokenCodec {
        let keys = Keys::load(SigningAlg::Hs256, &KeySource::Secret(vec![7; 32])).unwrap();
        TokenCodec::new(
            keys,
            Duration::from_secs(60),
            Duration::from_secs(600),
            Duration::from_secs(6000),
        )
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
        let (token, claims) = c.issue_access(&user(), Scopes::READ, "fam1").unwrap();
        assert_eq!(c.verify_access(&token).unwrap().sub, claims.sub);
        assert!(c.verify_refresh(&token).is_err());
    }

    #[test]
    fn issued_tokens_start_with_the_header_verification_knows() {
        let c = codec();
        let (access, _) = c.issue_access(&user(), Scopes::READ, "f").unwrap();
        let (refresh, _) = c.issue_refresh("f", now_s()).unwrap().unwrap();
        assert_eq!(access.split('.').next(), Some(c.access_header.as_str()));
        assert_eq!(refresh.split('.').next(), Some(c.refresh_header.as_str()));
        // Both paths accept it: the shortcut and the full header check.
        c.check_header(&c.access_header, ACCESS_TYP).unwrap();
        c.check_header(&c.refresh_header, REFRESH_TYP).unwrap();
        assert!(c.check_header(&c.access_header, REFRESH_TYP).is_err());
    }

    #[test]
    fn a_family_at_its_maximum_age_gets_no_more_refresh_tokens() {
        let c = codec();
        let (_, claims) = c.issue_refresh("f", now_s() - 5990).unwrap().unwrap();
        assert!(claims.exp <= now_s() + 10, "capped by the family's age");
        assert!(c.issue_refresh("f", now_s() - 6000).unwrap().is_none());
    }

    #[test]
    fn a_refresh_token_is_not_an_access_token_and_carries_no_user() {
        let c = codec();
        let (token, _) = c.issue_refresh("fam1", now_s()).unwrap().unwrap();
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
        let d = Duration::from_secs(600);
        let c = TokenCodec::new(keys, d, d, d);
        let (token, _) = c.issue_access(&user(), Scopes::READ, "fam1").unwrap();
        let public = jsonwebtoken::DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
        v.set_audience(&[ACCESS_AUDIENCE]);
        assert!(jsonwebtoken::decode::<AccessClaims>(&token, &public, &v).is_ok());
        let other = Keys::load(SigningAlg::EdDsa, &KeySource::Generated).unwrap();
        let other = TokenCodec::new(other, d, d, d);
        assert!(other.verify_access(&token).is_err());
    }
}
