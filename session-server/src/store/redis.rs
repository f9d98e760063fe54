//! Sessions in Redis, through the process's shared connection (so its time limits and
//! command counter apply).
//!
//! Keys (each in its user's hash slot: `auth_core::hash_slot`; a session id starts with its
//! user's slot tag):
//! - `session:{<tag>}<rest of the id>`: the session as one JSON string `{"id", "name", "r" (roles), "s" (scope),
//!   "c" (created, ms), "e" (extended, ms), "prev" (the id it replaced, if any)}`, expiring
//!   with the idle timeout. A read is one `GET` of one value: a hash read with `HGETALL`
//!   cost the server more to parse than any other part of a session read.
//! - the same key after a rotation: `moved:<successor id>`, for the retry grace only.
//! - `usess:{<tag>}<user id>`: the set of the user's session ids (the session index).
//!
//! Every write that must not race is one Lua script. The scripts of logout and "logout
//! everywhere" reach keys they find on the way (a successor, the sessions of an index):
//! all of them are in the user's slot, so the scripts run on a Redis Cluster as well.

use std::sync::Arc;

use auth_core::contract::{Scopes, UserView};
use auth_core::hash_slot::{user_key, UserSlot};
use auth_core::login_index::LoginIndex;
use auth_core::redis_conn::{Redis, Script};
use auth_core::ApiError;

use super::{Lookup, Rotation, SessionData, SessionId, Ttl};

/// The session index: `usess:{<tag>}<user id>` holds the ids of `session:{<tag>}<rest>`.
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
local roles = cjson.decode(ARGV[4])
local raw = redis.call('GET', KEYS[3])
if raw then roles = cjson.decode(raw).roles end
local now = tonumber(ARGV[6])
redis.call('SET', KEYS[1], cjson.encode({id = ARGV[2], name = ARGV[3], r = roles, s = ARGV[5],
  c = now, e = now}), 'EX', ARGV[7])
"#;

fn create_script() -> String {
    format!(
        "{}{CREATE}{}return 1\n",
        SESSIONS.lua_keys(),
        SESSIONS.add_lua(2, 1, 8)
    )
}

/// A script that names keys it finds on the way, built with the index's key functions.
fn script(body: &str) -> Script {
    Script::new(&format!("{}{LIVE}{body}", SESSIONS.lua_keys()))
}

/// The Lua helper every other script starts with: the live session at `key`, decoded, or
/// nil for nothing or a pointer.
const LIVE: &str = r#"
local function live(key)
  local raw = redis.call('GET', key)
  if not raw or string.sub(raw, 1, 6) == 'moved:' then return nil end
  return cjson.decode(raw)
end
"#;

/// KEYS: session. ARGV: now, session TTL. Only a live session is touched: a write to a key a
/// logout just deleted would create it again.
const TOUCH: &str = r#"
local s = live(KEYS[1])
if not s then return 0 end
s.e = tonumber(ARGV[1])
redis.call('SET', KEYS[1], cjson.encode(s), 'EX', ARGV[2])
return 1
"#;

/// KEYS: old session, new session, index. ARGV: old id, new id, now, session TTL, grace,
/// index TTL. At most one rotation of `old` ever succeeds. The new session remembers `old`
/// (`prev`) so that its own rotation removes that pointer: only the immediate predecessor
/// keeps the grace, and a session never has more than two keys, however often rotated.
const ROTATE: &str = r#"
local raw = redis.call('GET', KEYS[1])
if not raw then return {'missing'} end
if string.sub(raw, 1, 6) == 'moved:' then return {'moved', string.sub(raw, 7)} end
local s = cjson.decode(raw)
if s.prev then redis.call('DEL', login_key(s.prev)) end
s.e = tonumber(ARGV[3])
s.prev = ARGV[1]
redis.call('SET', KEYS[2], cjson.encode(s), 'EX', ARGV[4])
if tonumber(ARGV[5]) > 0 then
  redis.call('SET', KEYS[1], 'moved:' .. ARGV[2], 'EX', ARGV[5])
else
  redis.call('DEL', KEYS[1])
end
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[2])
redis.call('EXPIRE', KEYS[3], ARGV[6])
return {'rotated'}
"#;

/// KEYS: session. ARGV: its id. Deletes it, and its successor if it was replaced.
const DELETE: &str = r#"
local target, target_id = KEYS[1], ARGV[1]
local raw = redis.call('GET', KEYS[1])
if raw and string.sub(raw, 1, 6) == 'moved:' then
  target_id = string.sub(raw, 7)
  target = login_key(target_id)
end
local s = live(target)
redis.call('DEL', target, KEYS[1])
if s then redis.call('SREM', index_key(target_id, s.id), target_id) end
return 1
"#;

/// KEYS: index. ARGV: roles (JSON). Rewrites the roles of every live session in the index
/// (keeping its TTL) and drops the ids that are gone.
const SET_ROLES: &str = r#"
local roles = cjson.decode(ARGV[1])
local n = 0
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = login_key(sid)
  local s = live(key)
  if s then
    s.r = roles
    redis.call('SET', key, cjson.encode(s), 'KEEPTTL')
    n = n + 1
  else
    redis.call('SREM', KEYS[1], sid)
  end
end
return n
"#;

/// What `session:<id>` holds (see the module's comment).
#[derive(serde::Deserialize)]
struct Stored {
    id: String,
    name: String,
    r: Vec<String>,
    s: String,
    c: u64,
    e: u64,
}

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

fn index_key(user: &UserView) -> String {
    SESSIONS.index_key(UserSlot::of(&user.username), &user.id)
}

fn corrupt(what: &str) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("session record is corrupt: {what}"))
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, ApiError> {
    serde_json::to_string(v).map_err(|e| ApiError::Internal(e.into()))
}

/// What a `session:<id>` value is.
enum Value {
    Live(SessionData),
    Moved(SessionId),
}

fn decode(raw: &str) -> Result<Value, ApiError> {
    if let Some(successor) = raw.strip_prefix("moved:") {
        return SessionId::parse(successor)
            .map(Value::Moved)
            .ok_or_else(|| corrupt("successor"));
    }
    let s: Stored = serde_json::from_str(raw).map_err(|_| corrupt("not the expected JSON"))?;
    Ok(Value::Live(SessionData {
        user: UserView {
            id: s.id,
            username: s.name,
            roles: s.r,
        },
        scope: Scopes::parse(&s.s).map_err(|_| corrupt("scope"))?,
        created_ms: s.c,
        extended_ms: s.e,
    }))
}

impl RedisStore {
    pub fn new(redis: Redis) -> Self {
        Self {
            redis,
            scripts: Arc::new(Scripts {
                create: Script::new(&create_script()),
                touch: script(TOUCH),
                rotate: script(ROTATE),
                delete: script(DELETE),
                delete_all: Script::new(&SESSIONS.end_all_script()),
                set_roles: script(SET_ROLES),
            }),
        }
    }

    async fn get(&self, id: &SessionId) -> Result<Option<Value>, ApiError> {
        let raw: Option<String> = self
            .redis
            .query(redis::cmd("GET").arg(session_key(id)))
            .await?;
        raw.as_deref().map(decode).transpose()
    }

    pub async fn create(&self, data: &SessionData, ttl: Ttl) -> Result<SessionId, ApiError> {
        let id = SessionId::generate(UserSlot::of(&data.user.username));
        let mut inv = self.scripts.create.prepare_invoke();
        inv.key(session_key(&id))
            .key(index_key(&data.user))
            .key(user_key(&data.user.username))
            .arg(id.as_str())
            .arg(&data.user.id)
            .arg(&data.user.username)
            .arg(json(&data.user.roles)?)
            .arg(data.scope.as_str())
            .arg(data.created_ms)
            .arg(ttl.session_s)
            .arg(ttl.index_s);
        self.redis.script::<()>(inv).await?;
        Ok(id)
    }

    /// One `GET` for a live session; a second only for a replaced id within its grace.
    pub async fn load(&self, id: &SessionId) -> Result<Lookup, ApiError> {
        Ok(match self.get(id).await? {
            Some(Value::Live(data)) => Lookup::Live(data),
            // A successor that was itself replaced leaves the old id nothing: only the
            // immediate predecessor has the grace.
            Some(Value::Moved(successor)) => match self.get(&successor).await? {
                Some(Value::Live(data)) => Lookup::Replaced { successor, data },
                _ => Lookup::Missing,
            },
            None => Lookup::Missing,
        })
    }

    pub async fn touch(&self, id: &SessionId, now_ms: u64, ttl: Ttl) -> Result<(), ApiError> {
        let mut inv = self.scripts.touch.prepare_invoke();
        inv.key(session_key(id)).arg(now_ms).arg(ttl.session_s);
        self.redis.script::<()>(inv).await?;
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
        let mut inv = self.scripts.rotate.prepare_invoke();
        inv.key(session_key(old))
            .key(session_key(new))
            .key(index_key(user))
            .arg(old.as_str())
            .arg(new.as_str())
            .arg(now_ms)
            .arg(ttl.session_s)
            .arg(ttl.grace_s)
            .arg(ttl.index_s);
        let answer: Vec<String> = self.redis.script(inv).await?;
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
        self.redis.script::<()>(inv).await?;
        Ok(())
    }

    pub async fn delete_all_of(&self, user: &UserView) -> Result<u64, ApiError> {
        let mut inv = self.scripts.delete_all.prepare_invoke();
        inv.key(index_key(user));
        Ok(self.redis.script(inv).await?)
    }

    pub async fn set_roles(&self, user: &UserView, roles: &[String]) -> Result<u64, ApiError> {
        let mut inv = self.scripts.set_roles.prepare_invoke();
        inv.key(index_key(user)).arg(json(&roles)?);
        Ok(self.redis.script(inv).await?)
    }
}
