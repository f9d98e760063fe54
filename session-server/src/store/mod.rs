//! Session stores behind actix-session: Redis (shared) or this replica's memory.

mod memory;
mod redis;

use std::collections::HashMap;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;
use rand::distributions::Alphanumeric;
use rand::Rng;

pub use self::memory::MemoryStore;
pub use self::redis::RedisStore;

type State = HashMap<String, String>;

/// 64 characters from a CSPRNG (about 380 bits), never derived from what a client sent.
fn new_session_key() -> SessionKey {
    let id: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(64)
        .map(char::from)
        .collect();
    id.try_into().expect("64 characters fit in a cookie")
}

/// The store chosen by `SESSION_STORE`.
pub enum Store {
    Redis(RedisStore),
    Memory(MemoryStore),
}

impl SessionStore for Store {
    async fn load(&self, key: &SessionKey) -> Result<Option<State>, LoadError> {
        match self {
            Store::Redis(s) => s.load(key).await,
            Store::Memory(s) => s.load(key).await,
        }
    }

    async fn save(&self, state: State, ttl: &Duration) -> Result<SessionKey, SaveError> {
        match self {
            Store::Redis(s) => s.save(state, ttl).await,
            Store::Memory(s) => s.save(state, ttl).await,
        }
    }

    async fn update(
        &self,
        key: SessionKey,
        state: State,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        match self {
            Store::Redis(s) => s.update(key, state, ttl).await,
            Store::Memory(s) => s.update(key, state, ttl).await,
        }
    }

    async fn update_ttl(&self, key: &SessionKey, ttl: &Duration) -> anyhow::Result<()> {
        match self {
            Store::Redis(s) => s.update_ttl(key, ttl).await,
            Store::Memory(s) => s.update_ttl(key, ttl).await,
        }
    }

    async fn delete(&self, key: &SessionKey) -> anyhow::Result<()> {
        match self {
            Store::Redis(s) => s.delete(key).await,
            Store::Memory(s) => s.delete(key).await,
        }
    }
}
