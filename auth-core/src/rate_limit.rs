//! Failed-login throttling, counted in Redis so that every replica sees the same counts.
//!
//! Every attempt is counted *before* the password is checked, in one atomic script: of N
//! parallel guesses at most the limit get through to the (slow) hash; the rest are `429` at
//! once. A success then takes its own attempt back. Three counters, so neither one client
//! guessing many names nor many clients guessing one name gets far:
//! - (username, client): `LOGIN_MAX_FAILURES`;
//! - client, over all usernames: ten times that (many people can share one address);
//! - username, over all clients: ten times that (a botnet spraying one account).

use std::sync::Arc;

use redis::Script;

use crate::error::ApiError;
use crate::hash_slot::THROTTLE_PREFIX;
use crate::redis_conn::Redis;

/// KEYS: pair, user, client counters. ARGV: their limits, then the window in seconds.
/// Counts the attempt in all three; if any is now over its limit, takes the attempt back
/// (a refused attempt is not a failure) and returns that counter's seconds to live.
const ATTEMPT: &str = r#"
local over = nil
for i = 1, 3 do
  local n = redis.call('INCR', KEYS[i])
  if n == 1 then redis.call('EXPIRE', KEYS[i], ARGV[4]) end
  if n > tonumber(ARGV[i]) and not over then over = i end
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
    pub async fn attempt(&self, username: &str, client: &str) -> Result<(), ApiError> {
        let mut invocation = self.attempt.prepare_invoke();
        for k in keys(username, client) {
            invocation.key(k);
        }
        invocation
            .arg(self.max_per_pair)
            .arg(self.max_per_client_or_user)
            .arg(self.max_per_client_or_user)
            .arg(self.window_s);
        match self.redis.script::<u64>(&invocation).await? {
            0 => Ok(()),
            retry_after_s => Err(ApiError::RateLimited { retry_after_s }),
        }
    }

    /// The password was right: this attempt was no failure.
    pub async fn succeeded(&self, username: &str, client: &str) -> Result<(), ApiError> {
        let mut invocation = self.succeeded.prepare_invoke();
        for k in keys(username, client) {
            invocation.key(k);
        }
        self.redis.script::<()>(&invocation).await?;
        Ok(())
    }
}
