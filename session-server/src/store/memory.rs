//! Sessions in this replica's memory. Deliberately not shared: the experiments use it to
//! show what goes wrong when replicas do not share a session store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;

use super::{new_session_key, State};

#[derive(Clone, Default)]
pub struct MemoryStore {
    sessions: Arc<Mutex<HashMap<String, (State, Instant)>>>,
}

fn deadline(ttl: &Duration) -> Instant {
    Instant::now() + std::time::Duration::from_secs(ttl.whole_seconds().max(0) as u64)
}

impl MemoryStore {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, (State, Instant)>) -> T) -> T {
        // A panic while holding the lock cannot leave a session half-written (every
        // write replaces a whole entry), so a poisoned lock is safe to keep using.
        let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut map)
    }

    /// Number of live sessions (expired ones are dropped on the way).
    pub fn len(&self) -> usize {
        self.with(|m| {
            let now = Instant::now();
            m.retain(|_, (_, until)| *until > now);
            m.len()
        })
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl SessionStore for MemoryStore {
    async fn load(&self, id: &SessionKey) -> Result<Option<State>, LoadError> {
        Ok(self.with(|m| match m.get(id.as_ref()) {
            Some((state, until)) if *until > Instant::now() => Some(state.clone()),
            Some(_) => {
                m.remove(id.as_ref());
                None
            }
            None => None,
        }))
    }

    async fn save(&self, state: State, ttl: &Duration) -> Result<SessionKey, SaveError> {
        let id = new_session_key();
        self.with(|m| {
            // Sweep now and then so abandoned sessions do not pile up forever.
            if m.len() % 1024 == 1023 {
                let now = Instant::now();
                m.retain(|_, (_, until)| *until > now);
            }
            m.insert(id.as_ref().to_owned(), (state, deadline(ttl)));
        });
        Ok(id)
    }

    async fn update(
        &self,
        id: SessionKey,
        state: State,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let live = self.with(|m| match m.get_mut(id.as_ref()) {
            Some(entry) if entry.1 > Instant::now() => {
                *entry = (state.clone(), deadline(ttl));
                true
            }
            _ => false,
        });
        if live {
            Ok(id)
        } else {
            self.save(state, ttl)
                .await
                .map_err(|e| UpdateError::Other(anyhow::anyhow!("{e}")))
        }
    }

    async fn update_ttl(&self, id: &SessionKey, ttl: &Duration) -> anyhow::Result<()> {
        self.with(|m| {
            if let Some(entry) = m.get_mut(id.as_ref()) {
                entry.1 = deadline(ttl);
            }
        });
        Ok(())
    }

    async fn delete(&self, id: &SessionKey) -> anyhow::Result<()> {
        self.with(|m| m.remove(id.as_ref()));
        Ok(())
    }
}
