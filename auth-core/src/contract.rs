//! Request and response bodies of `API.md`, shared by both servers and their clients.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// serde accepts a JSON array for a struct (fields by position); the contract's bodies
/// are objects, so anything else is a malformed request.
fn object_only<'de, D: serde::Deserializer<'de>, T: serde::de::DeserializeOwned>(
    d: D,
) -> Result<T, D::Error> {
    let map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
    serde_json::from_value(serde_json::Value::Object(map)).map_err(serde::de::Error::custom)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFields {
    username: String,
    password: String,
}

/// `POST /auth/signup` and `POST /auth/login`.
#[derive(Clone, Serialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl<'de> Deserialize<'de> for Credentials {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let f: CredentialsFields = object_only(d)?;
        Ok(Credentials {
            username: f.username,
            password: f.password,
        })
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// The signup rules: username 3-32 chars of `[a-z0-9_.-]`, password 8-128 chars.
    pub fn validate_for_signup(&self) -> Result<(), ApiError> {
        let name = &self.username;
        if !(3..=32).contains(&name.len())
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
        {
            return Err(ApiError::InvalidRequest(
                "username must be 3-32 characters of a-z, 0-9, `_`, `.` or `-`".into(),
            ));
        }
        if !(8..=128).contains(&self.password.chars().count()) {
            return Err(ApiError::InvalidRequest(
                "password must be 8-128 characters".into(),
            ));
        }
        Ok(())
    }

    /// Login accepts any string, but refuses what no signup could have created before
    /// spending a hash on it (128 chars is also what bounds the hashing work).
    pub fn validate_for_login(&self) -> Result<(), ApiError> {
        if self.username.is_empty() || self.username.len() > 64 {
            return Err(ApiError::InvalidRequest(
                "username is empty or too long".into(),
            ));
        }
        if self.password.chars().count() > 128 {
            return Err(ApiError::InvalidRequest("password is too long".into()));
        }
        Ok(())
    }
}

/// `{"id", "username", "roles"}`: what `/api/me` answers and `login` embeds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub roles: Vec<String>,
}

/// The same JSON as `UserView`, borrowed: the hot read path serialises straight from the
/// verified token without copying its strings.
#[derive(Debug, Serialize)]
pub struct UserRef<'a> {
    pub id: &'a str,
    pub username: &'a str,
    pub roles: &'a [String],
}

/// `{"user": {...}}`, the session server's login and refresh answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct UserEnvelope {
    pub user: UserView,
}

/// The token server's login and refresh answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct TokenResponse {
    pub user: UserView,
    pub token_type: String,
    pub access_token: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshFields {
    refresh_token: String,
}

/// The token server's refresh and logout body.
#[derive(Debug, Serialize)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

impl<'de> Deserialize<'de> for RefreshRequest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let f: RefreshFields = object_only(d)?;
        Ok(RefreshRequest {
            refresh_token: f.refresh_token,
        })
    }
}

/// `GET /api/items`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Items {
    pub items: Vec<Item>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Item {
    pub id: u32,
    pub owner: String,
    pub title: String,
}

impl Items {
    /// A small list that belongs to the caller; computed, so a read costs no storage
    /// access beyond authentication itself.
    pub fn for_user(user_id: &str) -> Self {
        Items {
            items: (1..=10)
                .map(|id| Item {
                    id,
                    owner: user_id.to_owned(),
                    title: format!("item {id}"),
                })
                .collect(),
        }
    }
}

/// The role an admin route needs.
pub const ADMIN_ROLE: &str = "admin";

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(u: &str, p: &str) -> Credentials {
        Credentials {
            username: u.into(),
            password: p.into(),
        }
    }

    #[test]
    fn signup_rules_follow_the_contract() {
        assert!(creds("abc", "12345678").validate_for_signup().is_ok());
        assert!(creds("a.b-c_9", &"x".repeat(128))
            .validate_for_signup()
            .is_ok());
        assert!(creds("ab", "12345678").validate_for_signup().is_err());
        assert!(creds(&"a".repeat(33), "12345678")
            .validate_for_signup()
            .is_err());
        assert!(creds("Abc", "12345678").validate_for_signup().is_err());
        assert!(creds("a b", "12345678").validate_for_signup().is_err());
        assert!(creds("abc", "1234567").validate_for_signup().is_err());
        assert!(creds("abc", &"x".repeat(129))
            .validate_for_signup()
            .is_err());
    }

    #[test]
    fn bodies_must_be_objects_with_exactly_the_fields() {
        assert!(serde_json::from_str::<Credentials>(r#"{"username":"a","password":"b"}"#).is_ok());
        assert!(serde_json::from_str::<Credentials>(r#"["a","b"]"#).is_err());
        assert!(
            serde_json::from_str::<Credentials>(r#"{"username":"a","password":"b","x":1}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<RefreshRequest>(r#"["t"]"#).is_err());
        assert!(serde_json::from_str::<RefreshRequest>(r#"{"refresh_token":"t"}"#).is_ok());
    }

    #[test]
    fn debug_never_shows_the_password() {
        assert!(!format!("{:?}", creds("abc", "hunter22")).contains("hunter22"));
    }
}
