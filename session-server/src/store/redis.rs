//! Sessions in Redis under `session:<id>`, through the process's shared connection, so
//! its time limits (a dead Redis answers within 2 s) and command counter apply.

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;
use auth_core::redis_conn::Redis;

use super::{new_session_key, State};

pub struct RedisStore {
    redis: Redis,
}

fn key(id: &SessionKey) -> String {
    format!("session:{}", id.as_ref())
}

impl RedisStore {
    pub fn new(redis: Redis) -> Self {
        Self { redis }
    }
}

impl SessionStore for RedisStore {
    async fn load(&self, id: &SessionKey) -> Result<Option<State>, LoadError> {
        let raw: Option<String> = self
            .redis
            .query(redis::cmd("GET").arg(key(id)))
            .await
            .map_err(|e| LoadError::Other(e.into()))?;
        raw.map(|raw| serde_json::from_str(&raw))
            .transpose()
            .map_err(|e| LoadError::Deserialization(e.into()))
    }

    async fn save(&self, state: State, ttl: &Duration) -> Result<SessionKey, SaveError> {
        let body = serde_json::to_string(&state).map_err(|e| SaveError::Serialization(e.into()))?;
        let id = new_session_key();
        self.redis
            .query::<()>(
                redis::cmd("SET")
                    .arg(key(&id))
                    .arg(body)
                    .arg("NX")
                    .arg("EX")
                    .arg(ttl.whole_seconds()),
            )
            .await
            .map_err(|e| SaveError::Other(e.into()))?;
        Ok(id)
    }

    async fn update(
        &self,
        id: SessionKey,
        state: State,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let body =
            serde_json::to_string(&state).map_err(|e| UpdateError::Serialization(e.into()))?;
        let updated: Option<String> = self
            .redis
            .query(
                redis::cmd("SET")
                    .arg(key(&id))
                    .arg(&body)
                    .arg("XX")
                    .arg("EX")
                    .arg(ttl.whole_seconds()),
            )
            .await
            .map_err(|e| UpdateError::Other(e.into()))?;
        match updated {
            Some(_) => Ok(id),
            // Expired between load and update: store it under a fresh id rather than
            // resurrecting the old one.
            None => self.save(state, ttl).await.map_err(|e| match e {
                SaveError::Serialization(e) => UpdateError::Serialization(e),
                SaveError::Other(e) => UpdateError::Other(e),
            }),
        }
    }

    async fn update_ttl(&self, id: &SessionKey, ttl: &Duration) -> anyhow::Result<()> {
        self.redis
            .query::<()>(redis::cmd("EXPIRE").arg(key(id)).arg(ttl.whole_seconds()))
            .await?;
        Ok(())
    }

    async fn delete(&self, id: &SessionKey) -> anyhow::Result<()> {
        self.redis
            .query::<()>(redis::cmd("DEL").arg(key(id)))
            .await?;
        Ok(())
    }
}
