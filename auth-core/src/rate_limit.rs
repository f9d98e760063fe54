//! Failed-login throttling, per username and per client, counted in Redis so that every
//! replica sees the same counts.

use crate::error::ApiError;
use crate::redis_conn::Redis;

#[derive(Clone)]
pub struct LoginLimiter {
    redis: Redis,
    /// Failed logins allowed per username inside one window.
    max_per_user: u64,
    /// Failed logins allowed per client address inside one window; larger, since many
    /// people can share one address.
    max_per_client: u64,
    window_s: u64,
}

fn user_key(username: &str) -> String {
    format!("loginfail:user:{username}")
}

fn client_key(client: &str) -> String {
    format!("loginfail:client:{client}")
}

impl LoginLimiter {
    pub fn new(redis: Redis, max_per_user: u64, window_s: u64) -> Self {
        Self {
            redis,
            max_per_user,
            max_per_client: max_per_user.saturating_mul(10),
            window_s,
        }
    }

    /// Refuses before any hashing when either counter is at its limit; otherwise returns
    /// the username's failure count, so a success clears it only when there is one.
    pub async fn check(&self, username: &str, client: &str) -> Result<u64, ApiError> {
        let (u, c) = (user_key(username), client_key(client));
        let counts: (Option<u64>, Option<u64>) =
            self.redis.query(redis::cmd("MGET").arg(&u).arg(&c)).await?;
        let limited = match counts {
            (Some(n), _) if n >= self.max_per_user => u,
            (_, Some(n)) if n >= self.max_per_client => c,
            (user_failures, _) => return Ok(user_failures.unwrap_or(0)),
        };
        let ttl: i64 = self.redis.query(redis::cmd("TTL").arg(limited)).await?;
        Err(ApiError::RateLimited {
            retry_after_s: ttl.max(1) as u64,
        })
    }

    pub async fn record_failure(&self, username: &str, client: &str) -> Result<(), ApiError> {
        let mut pipe = redis::pipe();
        for key in [user_key(username), client_key(client)] {
            pipe.cmd("INCR").arg(&key).ignore();
            pipe.cmd("EXPIRE")
                .arg(&key)
                .arg(self.window_s)
                .arg("NX")
                .ignore();
        }
        self.redis.pipeline::<()>(&pipe).await?;
        Ok(())
    }

    /// A successful login clears the username's count (not the client's: one client
    /// guessing many names stays throttled).
    pub async fn record_success(&self, username: &str) -> Result<(), ApiError> {
        self.redis
            .query::<()>(redis::cmd("DEL").arg(user_key(username)))
            .await?;
        Ok(())
    }
}
