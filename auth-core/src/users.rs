//! The user directory in Redis: one JSON value per user under `user:{<slot tag>}<username>`
//! (`hash_slot::user_key`), written and read the same way by both servers, so a signup on
//! one replica is seen by all.

use serde::{Deserialize, Serialize};

use crate::contract::UserView;
use crate::error::ApiError;
use crate::redis_conn::{Redis, Script};

#[derive(Clone, Serialize, Deserialize)]
pub struct StoredUser {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub roles: Vec<String>,
}

impl StoredUser {
    pub fn view(&self) -> UserView {
        UserView {
            id: self.id.clone(),
            username: self.username.clone(),
            roles: self.roles.clone(),
        }
    }
}

#[derive(Clone)]
pub struct UserDirectory {
    redis: Redis,
    scripts: std::sync::Arc<Scripts>,
}

struct Scripts {
    create: Script,
    set_roles: Script,
}

/// KEYS[1]: the user. ARGV[1]: the record. 1 when created, 0 when the name is taken.
const CREATE: &str = r#"
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 1 end
return 0
"#;

/// KEYS[1]: the user. ARGV[1]: the roles as a JSON array. Returns the new record, or nil.
const SET_ROLES: &str = r#"
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local user = cjson.decode(raw)
user.roles = cjson.decode(ARGV[1])
local out = cjson.encode(user)
redis.call('SET', KEYS[1], out, 'KEEPTTL')
return out
"#;

fn key(username: &str) -> String {
    crate::hash_slot::user_key(username)
}

impl UserDirectory {
    pub fn new(redis: Redis) -> Self {
        Self {
            redis,
            scripts: std::sync::Arc::new(Scripts {
                create: Script::new(CREATE),
                set_roles: Script::new(SET_ROLES),
            }),
        }
    }

    /// Creates the user unless the name is taken (`SET NX`: two concurrent signups with
    /// one name give one winner), in a script so that a signup answered 503 is not created
    /// later by a Redis that stalled.
    pub async fn create(&self, user: &StoredUser) -> Result<(), ApiError> {
        let body = serde_json::to_string(user).map_err(|e| ApiError::Internal(e.into()))?;
        let mut invocation = self.scripts.create.prepare_invoke();
        invocation.key(key(&user.username)).arg(body);
        let created: bool = self.redis.script(invocation).await?;
        match created {
            true => Ok(()),
            false => Err(ApiError::Conflict(format!(
                "username `{}` is taken",
                user.username
            ))),
        }
    }

    /// Replaces a user's roles in one atomic step (a concurrent signup or role change
    /// cannot be lost); `None` when there is no such user.
    pub async fn set_roles(
        &self,
        username: &str,
        roles: &[String],
    ) -> Result<Option<StoredUser>, ApiError> {
        let roles = serde_json::to_string(roles).map_err(|e| ApiError::Internal(e.into()))?;
        let mut invocation = self.scripts.set_roles.prepare_invoke();
        invocation.key(key(username)).arg(roles);
        let raw: Option<String> = self.redis.script(invocation).await?;
        raw.map(|raw| serde_json::from_str(&raw))
            .transpose()
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("user record is corrupt: {e}")))
    }

    pub async fn find(&self, username: &str) -> Result<Option<StoredUser>, ApiError> {
        let raw: Option<String> = self
            .redis
            .query(redis::cmd("GET").arg(key(username)))
            .await?;
        raw.map(|raw| serde_json::from_str(&raw))
            .transpose()
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("user record is corrupt: {e}")))
    }
}
