//! Refresh-token families in Redis: one family per login, rotated on every use in one
//! atomic step, revoked whole on reuse, logout or "logout everywhere". This is where a
//! refresh token is rotated.
//!
//! Keys, bounded whatever the traffic, each in its user's hash slot (`auth_core::hash_slot`;
//! a family id starts with its user's slot tag, so a Redis Cluster runs these scripts too):
//! - `rtf:{<tag>}<rest of the family id>`: a hash `uid`, `name`, `scope`, `cur` (the live token's jti), `prev` and
//!   `prev_at` (the token it replaced, and when), `succ` (the live token itself, handed again
//!   to a retry). It expires with its live token, and never later than
//!   `REFRESH_FAMILY_MAX_AGE` after the login. One key per login, however often rotated.
//! - `ufam:{<tag>}<user id>`: the set of the user's families (the token model's answer to "end every
//!   login of this user"; the session model's is its session index).

use std::sync::Arc;

use auth_core::contract::Scopes;
use auth_core::hash_slot::UserSlot;
use auth_core::login_index::LoginIndex;
use auth_core::redis_conn::{Redis, Script};
use auth_core::users::StoredUser;
use auth_core::ApiError;

use crate::tokens::RefreshClaims;

/// The family index: `ufam:{<tag>}<user id>` holds the ids of `rtf:{<tag>}<rest>`.
pub const FAMILIES: LoginIndex = LoginIndex {
    index_prefix: "ufam:",
    login_prefix: "rtf:",
};

/// KEYS: family, user's families. ARGV: family id, user id, username, scope, first jti,
/// expiry (unix s), index TTL. The family is indexed in the same step
/// (`LoginIndex::add_lua`, spliced in by `start_script`).
const START: &str = r#"
redis.call('HSET', KEYS[1], 'uid', ARGV[2], 'name', ARGV[3], 'scope', ARGV[4], 'cur', ARGV[5])
redis.call('EXPIREAT', KEYS[1], ARGV[6])
"#;

fn start_script() -> String {
    format!(
        "{}{START}{}return 1\n",
        FAMILIES.lua_keys(),
        FAMILIES.add_lua(2, 1, 7)
    )
}

/// KEYS: family. ARGV: presented jti, new jti, new token, now, grace (s), new expiry.
/// At most one rotation of a token ever succeeds. Its immediate predecessor, presented again
/// within the grace, gets the same successor (a retry whose answer was lost); any other
/// token of the family is reuse, and revokes it.
///
/// The owner's user record (for the roles the new access token carries) is read in the same
/// step, from the user's key in the family's slot (`hash_slot::user_key`: `user:{<tag>}<name>`,
/// the tag being the family id's first characters), or `''` when the user is gone. Reading it
/// afterwards, in a call of its own, could fail after the rotation had happened: the client
/// got a 503 for a refresh that took place, and its retry was reuse.
const ROTATE: &str = r#"
local f = redis.call('HMGET', KEYS[1], 'cur', 'prev', 'prev_at', 'succ', 'uid', 'name', 'scope')
if not f[1] then return {'revoked'} end
local user = redis.call('GET', 'user:{' .. string.match(KEYS[1], '{(.-)}') .. '}' .. f[6]) or ''
if f[1] == ARGV[1] then
  redis.call('HSET', KEYS[1], 'cur', ARGV[2], 'prev', ARGV[1], 'prev_at', ARGV[4], 'succ', ARGV[3])
  redis.call('EXPIREAT', KEYS[1], ARGV[6])
  return {'rotated', f[5], f[6], f[7], user}
end
if f[2] == ARGV[1] and tonumber(ARGV[4]) - tonumber(f[3]) < tonumber(ARGV[5]) then
  return {'retry', f[5], f[6], f[7], user, f[4]}
end
redis.call('DEL', KEYS[1])
return {'reuse'}
"#;

/// Who a family belongs to, as stored at login.
#[derive(Debug, Clone)]
pub struct FamilyOwner {
    pub user_id: String,
    pub username: String,
    pub scope: Scopes,
}

/// A family's owner as a refresh finds it: the family's record, and the user's record read
/// in the same step (`None`: the user is gone).
pub struct Refreshed {
    pub owner: FamilyOwner,
    pub user: Option<StoredUser>,
}

pub enum Rotation {
    /// The presented token is now replaced by the new one.
    Rotated(Refreshed),
    /// The presented token was replaced moments ago: the client gets that successor again.
    Retry { owner: Refreshed, successor: String },
    /// The token had already been rotated away: the whole family is now revoked.
    Reused,
    /// Unknown, expired or revoked earlier.
    Revoked,
}

#[derive(Clone)]
pub struct RefreshTokens {
    redis: Redis,
    scripts: Arc<Scripts>,
    /// `REFRESH_REUSE_INTERVAL` in seconds.
    grace_s: u64,
    /// `REFRESH_FAMILY_MAX_AGE` in seconds (the user index lives that long).
    max_age_s: u64,
}

struct Scripts {
    start: Script,
    rotate: Script,
    /// Revokes one family (a script, not a `DEL`: a logout answered 503 must not happen later).
    revoke: Script,
    /// Revokes every family in the user's index.
    revoke_all: Script,
}

pub fn family_key(family: &str) -> String {
    FAMILIES.login_key(family)
}

fn index_key(username: &str, user_id: &str) -> String {
    FAMILIES.index_key(UserSlot::of(username), user_id)
}

/// A new family id for a login of `username`: its slot tag, then a random UUID.
pub fn new_family(username: &str) -> String {
    LoginIndex::new_id(
        UserSlot::of(username),
        &uuid::Uuid::new_v4().simple().to_string(),
    )
}

fn owner(fields: &[String]) -> Result<Refreshed, ApiError> {
    match fields {
        [uid, name, scope, user, ..] => Ok(Refreshed {
            owner: FamilyOwner {
                user_id: uid.clone(),
                username: name.clone(),
                scope: Scopes::parse(scope).map_err(|_| corrupt())?,
            },
            user: match user.as_str() {
                "" => None,
                raw => Some(serde_json::from_str(raw).map_err(|e| {
                    ApiError::Internal(anyhow::anyhow!("user record is corrupt: {e}"))
                })?),
            },
        }),
        _ => Err(corrupt()),
    }
}

fn corrupt() -> ApiError {
    ApiError::Internal(anyhow::anyhow!("refresh family record is corrupt"))
}

impl RefreshTokens {
    pub fn new(redis: Redis, grace_s: u64, max_age_s: u64) -> Self {
        Self {
            redis,
            scripts: Arc::new(Scripts {
                start: Script::new(&start_script()),
                rotate: Script::new(ROTATE),
                revoke: Script::new("redis.call('DEL', KEYS[1]) return 1"),
                revoke_all: Script::new(&FAMILIES.end_all_script()),
            }),
            grace_s,
            max_age_s,
        }
    }

    /// A new family at login, with its first token live.
    pub async fn start_family(
        &self,
        first: &RefreshClaims,
        owner: &FamilyOwner,
    ) -> Result<(), ApiError> {
        let mut inv = self.scripts.start.prepare_invoke();
        inv.key(family_key(&first.fam))
            .key(index_key(&owner.username, &owner.user_id))
            .arg(&first.fam)
            .arg(&owner.user_id)
            .arg(&owner.username)
            .arg(owner.scope.as_str())
            .arg(&first.jti)
            .arg(first.exp)
            .arg(self.max_age_s);
        self.redis.script::<()>(inv).await?;
        Ok(())
    }

    /// Refresh: `old` (verified) is replaced by `new`, whose signed form is `new_token`.
    pub async fn rotate(
        &self,
        old: &RefreshClaims,
        new: &RefreshClaims,
        new_token: &str,
    ) -> Result<Rotation, ApiError> {
        let mut inv = self.scripts.rotate.prepare_invoke();
        inv.key(family_key(&old.fam))
            .arg(&old.jti)
            .arg(&new.jti)
            .arg(new_token)
            .arg(new.iat)
            .arg(self.grace_s)
            .arg(new.exp);
        let answer: Vec<String> = self.redis.script(inv).await?;
        match answer.first().map(String::as_str) {
            Some("rotated") => Ok(Rotation::Rotated(owner(&answer[1..])?)),
            Some("retry") => Ok(Rotation::Retry {
                owner: owner(&answer[1..])?,
                successor: answer.get(5).cloned().ok_or_else(corrupt)?,
            }),
            Some("reuse") => {
                tracing::warn!(family = %old.fam, "refresh token reuse: family revoked");
                Ok(Rotation::Reused)
            }
            _ => Ok(Rotation::Revoked),
        }
    }

    /// Logout: the whole family, at once. Revoking a dead family is not an error.
    pub async fn revoke_family(&self, family: &str) -> Result<(), ApiError> {
        let mut inv = self.scripts.revoke.prepare_invoke();
        inv.key(family_key(family));
        self.redis.script::<()>(inv).await?;
        Ok(())
    }

    /// Logout everywhere: every family of the user, at once.
    pub async fn revoke_all_of(&self, username: &str, user_id: &str) -> Result<u64, ApiError> {
        let mut inv = self.scripts.revoke_all.prepare_invoke();
        inv.key(index_key(username, user_id));
        Ok(self.redis.script(inv).await?)
    }
}
