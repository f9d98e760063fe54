//! Sessions in this replica's memory. Deliberately not shared: the experiments use it to
//! show what goes wrong when replicas do not share a session store. Otherwise the same
//! promises as the Redis store, each step under one lock.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auth_core::contract::UserView;
use auth_core::hash_slot::UserSlot;
use auth_core::ApiError;

use super::{Lookup, Rotation, SessionData, SessionId, Ttl};

enum Entry {
    /// A session, and the id it replaced (whose pointer its own rotation removes).
    Live(SessionData, Option<SessionId>),
    /// Replaced by a rotation; answers as the successor until the grace ends.
    Moved(SessionId),
}

#[derive(Default)]
struct Sessions {
    entries: HashMap<SessionId, (Entry, Instant)>,
    /// user id -> that user's session ids.
    index: HashMap<String, HashSet<SessionId>>,
    writes: usize,
}

impl Sessions {
    fn live(&self, id: &SessionId) -> Option<&SessionData> {
        match self.entries.get(id) {
            Some((Entry::Live(data, _), until)) if *until > Instant::now() => Some(data),
            _ => None,
        }
    }

    /// Sweeps expired entries now and then, so abandoned sessions do not pile up.
    fn wrote(&mut self) {
        self.writes += 1;
        if self.writes.is_multiple_of(1024) {
            let now = Instant::now();
            self.entries.retain(|_, (_, until)| *until > now);
            let entries = &self.entries;
            self.index.retain(|_, ids| {
                ids.retain(|id| entries.contains_key(id));
                !ids.is_empty()
            });
        }
    }
}

#[derive(Clone, Default)]
pub struct MemoryStore {
    sessions: Arc<Mutex<Sessions>>,
}

fn after(seconds: u64) -> Instant {
    Instant::now() + Duration::from_secs(seconds)
}

impl MemoryStore {
    fn with<T>(&self, f: impl FnOnce(&mut Sessions) -> T) -> T {
        // A panic while holding the lock cannot leave a session half-written (every write
        // replaces a whole entry), so a poisoned lock is safe to keep using.
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut sessions)
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.with(|s| {
            let now = Instant::now();
            s.entries
                .values()
                .filter(|(e, until)| matches!(e, Entry::Live(..)) && *until > now)
                .count()
        })
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub async fn create(&self, data: &SessionData, ttl: Ttl) -> Result<SessionId, ApiError> {
        let id = SessionId::generate(UserSlot::of(&data.user.username));
        self.with(|s| {
            s.entries.insert(
                id.clone(),
                (Entry::Live(data.clone(), None), after(ttl.session_s)),
            );
            s.index
                .entry(data.user.id.clone())
                .or_default()
                .insert(id.clone());
            s.wrote();
        });
        Ok(id)
    }

    pub async fn load(&self, id: &SessionId) -> Result<Lookup, ApiError> {
        Ok(self.with(|s| match s.entries.get(id) {
            Some((Entry::Live(data, _), until)) if *until > Instant::now() => {
                Lookup::Live(data.clone())
            }
            Some((Entry::Moved(successor), until)) if *until > Instant::now() => {
                match s.live(successor) {
                    Some(data) => Lookup::Replaced {
                        successor: successor.clone(),
                        data: data.clone(),
                    },
                    None => Lookup::Missing,
                }
            }
            _ => Lookup::Missing,
        }))
    }

    pub async fn touch(&self, id: &SessionId, now_ms: u64, ttl: Ttl) -> Result<(), ApiError> {
        self.with(|s| {
            if let Some((Entry::Live(data, _), until)) = s.entries.get_mut(id) {
                if *until > Instant::now() {
                    data.extended_ms = now_ms;
                    *until = after(ttl.session_s);
                }
            }
        });
        Ok(())
    }

    pub async fn rotate(
        &self,
        old: &SessionId,
        new: &SessionId,
        user: &UserView,
        now_ms: u64,
        ttl: Ttl,
    ) -> Result<Rotation, ApiError> {
        Ok(self.with(|s| {
            let now = Instant::now();
            let (mut data, prev) = match s.entries.remove(old) {
                Some((Entry::Live(data, prev), until)) if until > now => (data, prev),
                Some((Entry::Moved(successor), until)) if until > now => {
                    let answer = Rotation::AlreadyReplaced(successor.clone());
                    s.entries
                        .insert(old.clone(), (Entry::Moved(successor), until));
                    return answer;
                }
                _ => return Rotation::Missing,
            };
            if let Some(prev) = prev {
                s.entries.remove(&prev);
            }
            data.extended_ms = now_ms;
            s.entries.insert(
                new.clone(),
                (Entry::Live(data, Some(old.clone())), after(ttl.session_s)),
            );
            if ttl.grace_s > 0 {
                s.entries
                    .insert(old.clone(), (Entry::Moved(new.clone()), after(ttl.grace_s)));
            }
            let ids = s.index.entry(user.id.clone()).or_default();
            ids.remove(old);
            ids.insert(new.clone());
            s.wrote();
            Rotation::Rotated
        }))
    }

    pub async fn delete(&self, id: &SessionId) -> Result<(), ApiError> {
        self.with(|s| {
            let target = match s.entries.remove(id) {
                Some((Entry::Moved(successor), _)) => {
                    s.entries.remove(&successor).map(|e| (e, successor))
                }
                Some(e) => Some((e, id.clone())),
                None => None,
            };
            if let Some(((Entry::Live(data, _), _), target_id)) = target {
                if let Some(ids) = s.index.get_mut(&data.user.id) {
                    ids.remove(&target_id);
                }
            }
        });
        Ok(())
    }

    pub async fn delete_all_of(&self, user: &UserView) -> Result<u64, ApiError> {
        Ok(self.with(|s| {
            let ids = s.index.remove(&user.id).unwrap_or_default();
            ids.iter()
                .filter(|id| s.entries.remove(*id).is_some())
                .count() as u64
        }))
    }

    pub async fn set_roles(&self, user: &UserView, roles: &[String]) -> Result<u64, ApiError> {
        Ok(self.with(|s| {
            let Some(ids) = s.index.get(&user.id) else {
                return 0;
            };
            let mut n = 0;
            for id in ids {
                if let Some((Entry::Live(data, _), _)) = s.entries.get_mut(id) {
                    data.user.roles = roles.to_vec();
                    n += 1;
                }
            }
            n
        }))
    }
}
