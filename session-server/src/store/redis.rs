//! Sessions in Redis, through the process's shared connection (so its time limits and
//! command counter apply).
//!
//! Keys:
//! - `session:<id>`: a hash `id`, `name`, `r` (roles, JSON), `s` (scope), `c` (created, ms),
//!   `e` (extended, ms), `prev` (the id it replaced, if any), expiring with the idle
//!   timeout. A read is one `HGETALL`.
//! - the same key after a rotation: a hash with the single field `moved` = the successor's
//!   id, for the retry grace only.
//! - `usess:<user id>`: the set of the user's session ids (the session index).
//!
//! Every write that must not race is one Lua script. The scripts of logout and "logout
//! everywhere" reach keys they find on the way (a successor, the sessions of an index):
//! fine on one Redis; a Redis Cluster would need those keys in one hash slot.

use std::collections::HashMap;
use std::sync::Arc;

use auth_core::contract::{Scopes, UserView};
use auth_core::login_index::LoginIndex;
use auth_core::redis_conn::Redis;
use auth_core::ApiError;
use redis::Script;

use super::{Lookup, Rotation, SessionData, SessionId, Ttl};

/// The session index: `usess:<user id>` holds the ids of `session:<id>`.
pub const SESSIONS: LoginIndex = LoginIndex {
    index_prefix: "usess:",
    login_prefix: "session:",
};

/// KEYS: session, index, user. ARGV: id, user id, username, roles (JSON, used if the user
/// record is gone), scope, now, session TTL, index TTL. The session is indexed in the same
/// step (`LoginIndex::add_lua`, spliced in by `create_script`).
/// The roles are read from the user record inside the script, so a role change that lands
/// between the password check and this write is not lost.
const CREATE: &str = r#"
local roles = ARGV[4]
local raw = redis.call('GET', KEYS[3])
if raw then roles = cjson.encode(cjson.decode(raw).roles) end
redis.call('HSET', KEYS[1], 'id', ARGV[2], 'name', ARGV[3], 'r', roles, 's', ARGV[5],
  'c', ARGV[6], 'e', ARGV[6])
redis.call('EXPIRE', KEYS[1], ARGV[7])
"#;

fn create_script() -> String {
    format!("{CREATE}{}return 1\n", SESSIONS.add_lua(2, 1, 8))
}

/// KEYS: session. ARGV: now, session TTL. Only a live session is touched: `HSET` on a key a
/// logout just deleted would create it again.
const TOUCH: &str = r#"
if redis.call('HEXISTS', KEYS[1], 'c') == 0 then return 0 end
redis.call('HSET', KEYS[1], 'e', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"#;

/// KEYS: old session, new session, index. ARGV: old id, new id, now, session TTL, grace,
/// index TTL. At most one rotation of `old` ever succeeds. The new session remembers `old`
/// (`prev`) so that its own rotation removes that pointer: only the immediate predecessor
/// keeps the grace, and a session never has more than two keys, however often rotated.
const ROTATE: &str = r#"
local moved = redis.call('HGET', KEYS[1], 'moved')
if moved then return {'moved', moved} end
if redis.call('HEXISTS', KEYS[1], 'c') == 0 then return {'missing'} end
local prev = redis.call('HGET', KEYS[1], 'prev')
if prev then redis.call('DEL', 'session:' .. prev) end
redis.call('HSET', KEYS[2], unpack(redis.call('HGETALL', KEYS[1])))
redis.call('HSET', KEYS[2], 'e', ARGV[3], 'prev', ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('DEL', KEYS[1])
if tonumber(ARGV[5]) > 0 then
  redis.call('HSET', KEYS[1], 'moved', ARGV[2])
  redis.call('EXPIRE', KEYS[1], ARGV[5])
end
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[2])
redis.call('EXPIRE', KEYS[3], ARGV[6])
return {'rotated'}
"#;

/// KEYS: session. ARGV: its id. Deletes it, and its successor if it was replaced.
const DELETE: &str = r#"
local target, target_id = KEYS[1], ARGV[1]
local moved = redis.call('HGET', KEYS[1], 'moved')
if moved then target, target_id = 'session:' .. moved, moved end
local uid = redis.call('HGET', target, 'id')
redis.call('DEL', target, KEYS[1])
if uid then redis.call('SREM', 'usess:' .. uid, target_id) end
return 1
"#;

/// KEYS: index. ARGV: roles (JSON). Rewrites the roles of every live session in the index
/// and drops the ids that are gone.
const SET_ROLES: &str = r#"
local n = 0
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = 'session:' .. sid
  if redis.call('HEXISTS', key, 'c') == 1 then
    redis.call('HSET', key, 'r', ARGV[1])
    n = n + 1
  else
    redis.call('SREM', KEYS[1], sid)
  end
end
return n
"#;

#[derive(Clone)]
pub struct RedisStore {
    redis: Redis,
    scripts: Arc<Scripts>,
}

struct Scripts {
    create: Script,
    touch: Script,
    rotate: Script,
    delete: Script,
    delete_all: Script,
    set_roles: Script,
}

fn session_key(id: &SessionId) -> String {
    SESSIONS.login_key(id.as_str())
}

fn index_key(user_id: &str) -> String {
    SESSIONS.index_key(user_id)
}

fn corrupt(what: &str) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("session record is corrupt: {what}"))
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, ApiError> {
    serde_json::to_string(v).map_err(|e| ApiError::Internal(e.into()))
}

/// A live session's fields (`None` for a pointer or nothing).
fn decode(mut fields: HashMap<String, String>) -> Result<Option<SessionData>, ApiError> {
    let Some(created) = fields.get("c") else {
        return Ok(None);
    };
    let created_ms = created.parse().map_err(|_| corrupt("created"))?;
    let extended_ms = fields
        .get("e")
        .and_then(|e| e.parse().ok())
        .unwrap_or(created_ms);
    let roles = serde_json::from_str(fields.get("r").map_or("[]", String::as_str))
        .map_err(|_| corrupt("roles"))?;
    let scope =
        Scopes::parse(fields.get("s").map_or("", String::as_str)).map_err(|_| corrupt("scope"))?;
    Ok(Some(SessionData {
        user: UserView {
            id: fields.remove("id").ok_or_else(|| corrupt("id"))?,
            username: fields.remove("name").ok_or_else(|| corrupt("name"))?,
            roles,
        },
        scope,
        created_ms,
        extended_ms,
    }))
}

impl RedisStore {
    pub fn new(redis: Redis) -> Self {
        Self {
            redis,
            scripts: Arc::new(Scripts {
                create: Script::new(&create_script()),
                touch: Script::new(TOUCH),
                rotate: Script::new(ROTATE),
                delete: Script::new(DELETE),
                delete_all: Script::new(&SESSIONS.end_all_script()),
                set_roles: Script::new(SET_ROLES),
            }),
        }
    }

    async fn fields(&self, id: &str) -> Result<HashMap<String, String>, ApiError> {
        Ok(self
            .redis
            .query(redis::cmd("HGETALL").arg(SESSIONS.login_key(id)))
            .await?)
    }

    pub async fn create(&self, data: &SessionData, ttl: Ttl) -> Result<SessionId, ApiError> {
        let id = SessionId::generate();
        let mut inv = self.scripts.create.prepare_invoke();
        inv.key(session_key(&id))
            .key(index_key(&data.user.id))
            .key(format!("user:{}", data.user.username))
            .arg(id.as_str())
            .arg(&data.user.id)
            .arg(&data.user.username)
            .arg(json(&data.user.roles)?)
            .arg(data.scope.as_str())
            .arg(data.created_ms)
            .arg(ttl.session_s)
            .arg(ttl.index_s);
        self.redis.script::<()>(&inv).await?;
        Ok(id)
    }

    /// One `HGETALL` for a live session; a second only for a replaced id within its grace.
    pub async fn load(&self, id: &SessionId) -> Result<Lookup, ApiError> {
        let mut fields = self.fields(id.as_str()).await?;
        if let Some(successor) = fields.remove("moved") {
            let Some(successor) = SessionId::parse(&successor) else {
                return Err(corrupt("successor"));
            };
            // A successor that was itself replaced leaves the old id nothing: only the
            // immediate predecessor has the grace.
            return Ok(match decode(self.fields(successor.as_str()).await?)? {
                Some(data) => Lookup::Replaced { successor, data },
                None => Lookup::Missing,
            });
        }
        Ok(match decode(fields)? {
            Some(data) => Lookup::Live(data),
            None => Lookup::Missing,
        })
    }

    pub async fn touch(&self, id: &SessionId, now_ms: u64, ttl: Ttl) -> Result<(), ApiError> {
        let mut inv = self.scripts.touch.prepare_invoke();
        inv.key(session_key(id)).arg(now_ms).arg(ttl.session_s);
        self.redis.script::<()>(&inv).await?;
        Ok(())
    }

    pub async fn rotate(
        &self,
        old: &SessionId,
        new: &SessionId,
        user_id: &str,
        now_ms: u64,
        ttl: Ttl,
    ) -> Result<Rotation, ApiError> {
        let mut inv = self.scripts.rotate.prepare_invoke();
        inv.key(session_key(old))
            .key(session_key(new))
            .key(index_key(user_id))
            .arg(old.as_str())
            .arg(new.as_str())
            .arg(now_ms)
            .arg(ttl.session_s)
            .arg(ttl.grace_s)
            .arg(ttl.index_s);
        let answer: Vec<String> = self.redis.script(&inv).await?;
        Ok(match answer.first().map(String::as_str) {
            Some("rotated") => Rotation::Rotated,
            Some("moved") => match answer.get(1).and_then(|s| SessionId::parse(s)) {
                Some(successor) => Rotation::AlreadyReplaced(successor),
                None => return Err(corrupt("successor")),
            },
            _ => Rotation::Missing,
        })
    }

    pub async fn delete(&self, id: &SessionId) -> Result<(), ApiError> {
        let mut inv = self.scripts.delete.prepare_invoke();
        inv.key(session_key(id)).arg(id.as_str());
        self.redis.script::<()>(&inv).await?;
        Ok(())
    }

    pub async fn delete_all_of(&self, user_id: &str) -> Result<u64, ApiError> {
        let mut inv = self.scripts.delete_all.prepare_invoke();
        inv.key(index_key(user_id));
        Ok(self.redis.script(&inv).await?)
    }

    pub async fn set_roles(&self, user_id: &str, roles: &[String]) -> Result<u64, ApiError> {
        let mut inv = self.scripts.set_roles.prepare_invoke();
        inv.key(index_key(user_id)).arg(json(&roles)?);
        Ok(self.redis.script(&inv).await?)
    }
}
