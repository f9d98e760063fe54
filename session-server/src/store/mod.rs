//! Where sessions live: Redis (shared by every replica) or this replica's memory (the
//! experiments' counter-example). Both keep the same promises, each in one atomic step:
//!
//! - a rotation leaves exactly one live session, however many refreshes race with one id;
//!   the replaced id answers as its successor for `REFRESH_REUSE_INTERVAL` seconds (a retry
//!   whose answer was lost), and is dead after that or once the successor is rotated itself;
//! - nothing but login and rotation creates a session: a read or a touch racing a logout
//!   never brings it back;
//! - every user's sessions are indexed, so "end every login of this user" and "this user's
//!   roles changed" reach all of them at once. (The token server's answer to the same
//!   question is the refresh-token family.)

mod memory;
mod redis;

use auth_core::contract::{Scopes, UserView};
use auth_core::hash_slot::UserSlot;
use auth_core::login_index::LoginIndex;
use auth_core::ApiError;
use rand::distributions::Alphanumeric;
use rand::Rng;

pub use self::memory::MemoryStore;
pub use self::redis::RedisStore;

/// An opaque session id: its user's hash-slot tag (4 hex digits, `auth_core::hash_slot`:
/// the session lives beside its user on a Redis Cluster), then 60 characters from a CSPRNG
/// (about 357 bits), never derived from what a client sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    pub const LEN: usize = 64;

    pub fn generate(slot: UserSlot) -> Self {
        let random: String = rand::thread_rng()
            .sample_iter(&Alphanumeric)
            .take(Self::LEN - UserSlot::LEN)
            .map(char::from)
            .collect();
        Self(LoginIndex::new_id(slot, &random))
    }

    /// An id from a (decrypted) cookie: only the shape a generated id has.
    pub fn parse(raw: &str) -> Option<Self> {
        (raw.len() == Self::LEN && raw.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a session holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionData {
    /// The user, with the roles as they are now (a role change rewrites live sessions).
    pub user: UserView,
    /// The scopes granted at login.
    pub scope: Scopes,
    /// Login time (unix ms): the absolute timeout counts from it.
    pub created_ms: u64,
    /// When the idle TTL was last pushed forward (unix ms).
    pub extended_ms: u64,
}

/// What an id leads to.
#[derive(Debug)]
pub enum Lookup {
    Live(SessionData),
    /// The id was rotated away less than `REFRESH_REUSE_INTERVAL` ago: it answers as its
    /// successor, whose id the client is handed again.
    Replaced {
        successor: SessionId,
        data: SessionData,
    },
    /// Unknown, expired, logged out, or replaced too long ago.
    Missing,
}

/// What a rotation did.
#[derive(Debug)]
pub enum Rotation {
    /// `old` is now a pointer to the new id, valid for the retry grace.
    Rotated,
    /// Another request rotated `old` first: its successor is the session.
    AlreadyReplaced(SessionId),
    /// `old` is gone (a logout won the race): there is nothing to rotate.
    Missing,
}

/// Lifetimes a store write needs, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Ttl {
    /// The session's time to live from now (idle timeout, capped by the absolute one).
    pub session_s: u64,
    /// How long a replaced id answers as its successor; 0: not at all.
    pub grace_s: u64,
    /// How long a user's session index lives after its last write (the absolute timeout:
    /// no session can be older).
    pub index_s: u64,
}

/// The store chosen by `SESSION_STORE`.
#[derive(Clone)]
pub enum Store {
    Redis(RedisStore),
    Memory(MemoryStore),
}

/// Dispatches to the chosen store (an enum: no boxed futures on the read path).
macro_rules! dispatch {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            Store::Redis($s) => $call,
            Store::Memory($s) => $call,
        }
    };
}

impl Store {
    /// Login: a new session, indexed under its user.
    pub async fn create(&self, data: &SessionData, ttl: Ttl) -> Result<SessionId, ApiError> {
        dispatch!(self, s => s.create(data, ttl).await)
    }

    pub async fn load(&self, id: &SessionId) -> Result<Lookup, ApiError> {
        dispatch!(self, s => s.load(id).await)
    }

    /// Pushes the idle TTL forward, only if the session still exists.
    pub async fn touch(&self, id: &SessionId, now_ms: u64, ttl: Ttl) -> Result<(), ApiError> {
        dispatch!(self, s => s.touch(id, now_ms, ttl).await)
    }

    /// Refresh: `old` becomes `new` in one step.
    pub async fn rotate(
        &self,
        old: &SessionId,
        new: &SessionId,
        user: &UserView,
        now_ms: u64,
        ttl: Ttl,
    ) -> Result<Rotation, ApiError> {
        dispatch!(self, s => s.rotate(old, new, user, now_ms, ttl).await)
    }

    /// Logout: the session `id` leads to (itself, or its successor within the grace), and
    /// `id` itself. Deleting nothing is fine.
    pub async fn delete(&self, id: &SessionId) -> Result<(), ApiError> {
        dispatch!(self, s => s.delete(id).await)
    }

    /// Logout everywhere: every session of the user, at once.
    pub async fn delete_all_of(&self, user: &UserView) -> Result<u64, ApiError> {
        dispatch!(self, s => s.delete_all_of(user).await)
    }

    /// A role change reaches every live session of the user at once.
    pub async fn set_roles(&self, user: &UserView, roles: &[String]) -> Result<u64, ApiError> {
        dispatch!(self, s => s.set_roles(user, roles).await)
    }
}
