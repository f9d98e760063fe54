//! The user directory in Redis: one JSON value per user under `user:<username>`, written
//! and read the same way by both servers, so a signup on one replica is seen by all.

use serde::{Deserialize, Serialize};

use crate::contract::UserView;
use crate::error::ApiError;
use crate::redis_conn::Redis;

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
}

fn key(username: &str) -> String {
    format!("user:{username}")
}

impl UserDirectory {
    pub fn new(redis: Redis) -> Self {
        Self { redis }
    }

    /// Creates the user unless the name is taken (`SET NX`: two concurrent signups with
    /// one name give one winner).
    pub async fn create(&self, user: &StoredUser) -> Result<(), ApiError> {
        let body = serde_json::to_string(user).map_err(|e| ApiError::Internal(e.into()))?;
        let created: Option<String> = self
            .redis
            .query(
                redis::cmd("SET")
                    .arg(key(&user.username))
                    .arg(body)
                    .arg("NX"),
            )
            .await?;
        match created {
            Some(_) => Ok(()),
            None => Err(ApiError::Conflict(format!(
                "username `{}` is taken",
                user.username
            ))),
        }
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
