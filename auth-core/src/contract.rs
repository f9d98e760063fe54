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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginFields {
    username: String,
    password: String,
    #[serde(default)]
    scope: Option<String>,
}

/// `POST /auth/login`: credentials and, optionally, the scopes asked for.
#[derive(Clone)]
pub struct LoginRequest {
    pub credentials: Credentials,
    /// `None`: every scope the user's roles allow.
    pub scope: Option<String>,
}

impl<'de> Deserialize<'de> for LoginRequest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let f: LoginFields = object_only(d)?;
        Ok(LoginRequest {
            credentials: Credentials {
                username: f.username,
                password: f.password,
            },
            scope: f.scope,
        })
    }
}

/// What a credential may be used for (`API.md`, login `scope`): `read` for `/api/me` and
/// `/api/items`, `admin` for `/api/admin/*`. A credential with fewer scopes than its user's
/// roles allow is how a user hands a limited credential to another program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes {
    pub read: bool,
    pub admin: bool,
}

impl Scopes {
    pub const READ: Scopes = Scopes {
        read: true,
        admin: false,
    };
    pub const ADMIN: Scopes = Scopes {
        read: false,
        admin: true,
    };

    /// What roles allow: `read` for everybody, `admin` for admins.
    pub fn allowed_by(roles: &[String]) -> Scopes {
        Scopes {
            read: true,
            admin: roles.iter().any(|r| r == ADMIN_ROLE),
        }
    }

    /// `read admin`, `read`, ... (space-separated, as OAuth writes scopes).
    pub fn parse(raw: &str) -> Result<Scopes, ApiError> {
        let mut s = Scopes::default();
        for word in raw.split(' ').filter(|w| !w.is_empty()) {
            match word {
                "read" => s.read = true,
                "admin" => s.admin = true,
                other => {
                    return Err(ApiError::InvalidRequest(format!(
                        "unknown scope `{}`: use `read` and/or `admin`",
                        other.chars().take(32).collect::<String>()
                    )))
                }
            }
        }
        if s == Scopes::default() {
            return Err(ApiError::InvalidRequest(
                "scope is empty: use `read` and/or `admin`".into(),
            ));
        }
        Ok(s)
    }

    /// The scopes a login gets: those asked for (which the roles must allow), or all the
    /// roles allow.
    pub fn grant(asked: Option<&str>, roles: &[String]) -> Result<Scopes, ApiError> {
        let allowed = Scopes::allowed_by(roles);
        let Some(asked) = asked else {
            return Ok(allowed);
        };
        let asked = Scopes::parse(asked)?;
        if (asked.read && !allowed.read) || (asked.admin && !allowed.admin) {
            return Err(ApiError::InsufficientScope("admin"));
        }
        Ok(asked)
    }

    pub fn contains(self, needed: Scopes) -> bool {
        (!needed.read || self.read) && (!needed.admin || self.admin)
    }

    /// `403 insufficient_scope` unless this credential was granted `needed`.
    pub fn require(self, needed: Scopes) -> Result<(), ApiError> {
        if self.contains(needed) {
            Ok(())
        } else {
            Err(ApiError::InsufficientScope(if needed.admin {
                "admin"
            } else {
                "read"
            }))
        }
    }

    /// The admin routes' rule: the role first (`403 forbidden`), then the scope
    /// (`403 insufficient_scope`).
    pub fn require_admin(self, roles: &[String]) -> Result<(), ApiError> {
        if !roles.iter().any(|r| r == ADMIN_ROLE) {
            return Err(ApiError::Forbidden(ADMIN_ROLE));
        }
        self.require(Scopes::ADMIN)
    }

    pub fn as_str(self) -> &'static str {
        match (self.read, self.admin) {
            (true, true) => "read admin",
            (true, false) => "read",
            (false, true) => "admin",
            (false, false) => "",
        }
    }
}

impl std::fmt::Display for Scopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Scopes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Borrowed where the JSON allows (no escapes): this runs on every token read.
        let raw = std::borrow::Cow::<str>::deserialize(d)?;
        Scopes::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// The roles a user can have.
pub const ROLES: [&str; 2] = ["user", ADMIN_ROLE];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RolesFields {
    roles: Vec<String>,
}

/// `PUT /api/admin/users/{username}/roles`: a non-empty subset of `user`, `admin`.
#[derive(Debug, Clone, Serialize)]
pub struct RolesRequest {
    pub roles: Vec<String>,
}

impl<'de> Deserialize<'de> for RolesRequest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let f: RolesFields = object_only(d)?;
        Ok(RolesRequest { roles: f.roles })
    }
}

impl RolesRequest {
    /// The roles in their canonical order, each once; an error for anything else.
    pub fn validated(&self) -> Result<Vec<String>, ApiError> {
        if self.roles.is_empty() {
            return Err(ApiError::InvalidRequest(
                "roles must not be empty: a subset of `user`, `admin`".into(),
            ));
        }
        if let Some(bad) = self.roles.iter().find(|r| !ROLES.contains(&r.as_str())) {
            return Err(ApiError::InvalidRequest(format!(
                "unknown role `{}`: use `user` and/or `admin`",
                bad.chars().take(32).collect::<String>()
            )));
        }
        Ok(ROLES
            .iter()
            .filter(|r| self.roles.iter().any(|x| x == *r))
            .map(|r| r.to_string())
            .collect())
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

/// `{"user": {...}, "scope": "..."}`, the session server's login and refresh answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct UserEnvelope {
    pub user: UserView,
    pub scope: Scopes,
}

/// The token server's login and refresh answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct TokenResponse {
    pub user: UserView,
    /// The scopes granted (also the access token's `scope` claim).
    pub scope: Scopes,
    pub token_type: String,
    pub access_token: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: u64,
    /// At login: the device credential (`device`), sent back in `Device-Token` at the next
    /// login so that a stranger's failed guesses cannot lock this client out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_token: Option<String>,
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
    fn scopes_are_granted_within_the_roles() {
        let user = vec!["user".to_string()];
        let admin = vec!["user".to_string(), "admin".to_string()];
        assert_eq!(Scopes::grant(None, &user).unwrap(), Scopes::READ);
        assert_eq!(Scopes::grant(None, &admin).unwrap().as_str(), "read admin");
        assert_eq!(Scopes::grant(Some("read"), &admin).unwrap(), Scopes::READ);
        assert_eq!(
            Scopes::grant(Some(" admin "), &admin).unwrap(),
            Scopes::ADMIN
        );
        assert!(matches!(
            Scopes::grant(Some("admin"), &user),
            Err(ApiError::InsufficientScope(_))
        ));
        for bad in ["", "  ", "write", "read,admin", "READ"] {
            assert!(
                matches!(
                    Scopes::grant(Some(bad), &admin),
                    Err(ApiError::InvalidRequest(_))
                ),
                "{bad:?}"
            );
        }
        assert!(Scopes::grant(None, &admin).unwrap().contains(Scopes::ADMIN));
        assert!(!Scopes::READ.contains(Scopes::ADMIN));
    }

    #[test]
    fn roles_are_a_non_empty_subset_in_canonical_order() {
        let r = |v: &[&str]| RolesRequest {
            roles: v.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(
            r(&["admin", "user", "admin"]).validated().unwrap(),
            ["user", "admin"]
        );
        assert!(r(&[]).validated().is_err());
        assert!(r(&["root"]).validated().is_err());
    }

    #[test]
    fn debug_never_shows_the_password() {
        assert!(!format!("{:?}", creds("abc", "hunter22")).contains("hunter22"));
    }
}
