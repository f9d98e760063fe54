//! Failed-login and signup throttling, counted in Redis so that every replica sees the same
//! counts.
//!
//! Every login attempt is counted *before* the password is checked, in one atomic script: of
//! N parallel guesses at most the limit get through to the (slow) hash; the rest are `429`
//! at once. A success then takes its own attempt back. Three counters, so neither one client
//! guessing many names nor many clients guessing one name gets far:
//! - (username, client): `LOGIN_MAX_FAILURES`;
//! - client, over all usernames: ten times that (many people can share one address);
//! - username, over all clients: ten times that (a botnet spraying one account).
//!
//! The two wider limits would let a stranger lock the owner out (100 wrong guesses from
//! anywhere, renewed every window). So they never refuse an attempt that proves the owner's
//! device (`device`: a credential the server signed at an earlier successful login of this
//! user) from a (username, client) pair that has not itself failed within the window.
//!
//! Signups are counted per client (`SIGNUP_MAX` per `SIGNUP_WINDOW`), before the password is
//! hashed, whatever the answer (a `409` included: otherwise the cheap "name taken" answer is
//! an oracle of which usernames exist).

use std::sync::Arc;

use crate::error::ApiError;
use crate::hash_slot::THROTTLE_PREFIX;
use crate::redis_conn::{Redis, Script};

/// KEYS: pair, user, client counters. ARGV: their limits, the window in seconds, then 1 when
/// the attempt proves the user's device. Counts the attempt in all three; if one is now over
/// its limit, takes the attempt back (a refused attempt is not a failure) and returns that
/// counter's seconds to live. A proven device whose pair had no failure is held to the pair's
/// limit only.
const ATTEMPT: &str = r#"
local owner = ARGV[5] == '1' and tonumber(redis.call('GET', KEYS[1]) or '0') == 0
local over = nil
for i = 1, 3 do
  local n = redis.call('INCR', KEYS[i])
  if n == 1 then redis.call('EXPIRE', KEYS[i], ARGV[4]) end
  if n > tonumber(ARGV[i]) and not over and not (owner and i > 1) then over = i end
end
if not over then return 0 end
for i = 1, 3 do redis.call('DECR', KEYS[i]) end
local ttl = redis.call('TTL', KEYS[over])
if ttl < 1 then ttl = 1 end
return ttl
"#;

/// KEYS: pair, user, client counters. A successful login clears the pair's count (the user
/// got in from there) and takes its attempt back from the other two, but only where they
/// still exist: a counter that expired meanwhile must not come back without a TTL.
const SUCCEEDED: &str = r#"
redis.call('DEL', KEYS[1])
for i = 2, 3 do
  if redis.call('GET', KEYS[i]) then redis.call('DECR', KEYS[i]) end
end
return 1
"#;

/// KEYS: the client's signup counter. ARGV: the limit, the window in seconds. Counts one
/// signup, or (over the limit) takes it back and returns the seconds until the window ends.
const SIGNUP: &str = r#"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
if n <= tonumber(ARGV[1]) then return 0 end
redis.call('DECR', KEYS[1])
local ttl = redis.call('TTL', KEYS[1])
if ttl < 1 then ttl = 1 end
return ttl
"#;

/// What the counting scripts answer: 0 when the attempt is counted, else the seconds until
/// the window ends (`429` with `Retry-After`).
fn allowed(retry_after_s: u64) -> Result<(), ApiError> {
    match retry_after_s {
        0 => Ok(()),
        retry_after_s => Err(ApiError::RateLimited { retry_after_s }),
    }
}

/// What a login attempt brings besides the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// A valid device credential of this user (an earlier successful login).
    Known,
    /// None, or one that is not this user's, or expired.
    Unknown,
}

#[derive(Clone)]
pub struct LoginLimiter {
    redis: Redis,
    /// Attempts allowed per (username, client) inside one window.
    max_per_pair: u64,
    /// Per client and per username, over everything else.
    max_per_client_or_user: u64,
    window_s: u64,
    attempt: Arc<Script>,
    succeeded: Arc<Script>,
}

/// `SIGNUP_MAX` per client per `SIGNUP_WINDOW`.
#[derive(Clone)]
pub struct SignupLimiter {
    redis: Redis,
    max: u64,
    window_s: u64,
    script: Arc<Script>,
}

impl SignupLimiter {
    pub fn new(redis: Redis, max: u64, window_s: u64) -> Self {
        Self {
            redis,
            max,
            window_s,
            script: Arc::new(Script::new(SIGNUP)),
        }
    }

    /// Counts one signup from `client`, or refuses it (`429`). Call before hashing.
    pub async fn attempt(&self, client: &str) -> Result<(), ApiError> {
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(format!("{THROTTLE_PREFIX}signup:{client}"))
            .arg(self.max)
            .arg(self.window_s);
        allowed(self.redis.script(invocation).await?)
    }
}

/// The three counters of one attempt. The username is length-prefixed: login accepts any
/// name (not only signup's alphabet), so `a:b` + `c` must not collide with `a` + `b:c`.
/// All three share one hash slot (`THROTTLE_PREFIX`), as one script counts them together.
fn keys(username: &str, client: &str) -> [String; 3] {
    [
        format!(
            "{THROTTLE_PREFIX}pair:{}:{username}:{client}",
            username.len()
        ),
        format!("{THROTTLE_PREFIX}user:{username}"),
        format!("{THROTTLE_PREFIX}client:{client}"),
    ]
}

impl LoginLimiter {
    pub fn new(redis: Redis, max_per_pair: u64, window_s: u64) -> Self {
        Self {
            redis,
            max_per_pair,
            max_per_client_or_user: max_per_pair.saturating_mul(10),
            window_s,
            attempt: Arc::new(Script::new(ATTEMPT)),
            succeeded: Arc::new(Script::new(SUCCEEDED)),
        }
    }

    /// Counts one attempt, or refuses it (`429` with the seconds until the window ends)
    /// when a counter is at its limit. Call before checking the password.
    pub async fn attempt(
        &self,
        username: &str,
        client: &str,
        device: Device,
    ) -> Result<(), ApiError> {
        let mut invocation = self.attempt.prepare_invoke();
        for k in keys(username, client) {
            invocation.key(k);
        }
        invocation
            .arg(self.max_per_pair)
            .arg(self.max_per_client_or_user)
            .arg(self.max_per_client_or_user)
            .arg(self.window_s)
            .arg(u8::from(device == Device::Known));
        allowed(self.redis.script(invocation).await?)
    }

    /// The password was right: this attempt was no failure.
    pub async fn succeeded(&self, username: &str, client: &str) -> Result<(), ApiError> {
        let mut invocation = self.succeeded.prepare_invoke();
        for k in keys(username, client) {
            invocation.key(k);
        }
        self.redis.script::<()>(invocation).await?;
        Ok(())
    }
}
