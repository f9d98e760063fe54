//! Refresh token families in Redis: issued at login, rotated on use in one atomic step,
//! revoked whole on reuse or logout.
//!
//! Keys: `rtf:<family>` holds the user (JSON) while the family lives; `rt:<jti>` holds
//! `live:<family>` or `used:<family>`. Deleting the family key kills every token of it.

use auth_core::contract::UserView;
use auth_core::redis_conn::Redis;
use auth_core::ApiError;
use redis::Script;

use crate::tokens::RefreshClaims;

/// One atomic step, so two concurrent refreshes with one token give at most one winner.
/// Presenting a token already rotated away is reuse: the family is revoked.
const ROTATE: &str = r#"
local cur = redis.call('GET', KEYS[1])
local user = redis.call('GET', KEYS[3])
if not cur or not user then return {'revoked'} end
if cur == 'used:' .. ARGV[1] then
  redis.call('DEL', KEYS[3])
  return {'reuse'}
end
if cur ~= 'live:' .. ARGV[1] then return {'revoked'} end
redis.call('SET', KEYS[1], 'used:' .. ARGV[1], 'KEEPTTL')
redis.call('SET', KEYS[2], 'live:' .. ARGV[1], 'EX', ARGV[2])
redis.call('EXPIRE', KEYS[3], ARGV[2])
return {'ok', user}
"#;

pub enum Rotation {
    /// The old token is now used; the new one is live. Carries the family's user.
    Rotated(UserView),
    /// The token had already been rotated away: the whole family is now revoked.
    Reused,
    /// Unknown, expired or revoked earlier.
    Revoked,
}

#[derive(Clone)]
pub struct RefreshTokens {
    redis: Redis,
    rotate: std::sync::Arc<Script>,
    ttl_s: u64,
}

fn token_key(jti: &str) -> String {
    format!("rt:{jti}")
}

fn family_key(family: &str) -> String {
    format!("rtf:{family}")
}

impl RefreshTokens {
    pub fn new(redis: Redis, ttl_s: u64) -> Self {
        Self {
            redis,
            rotate: std::sync::Arc::new(Script::new(ROTATE)),
            ttl_s,
        }
    }

    /// A new family at login, with its first token live.
    pub async fn start_family(
        &self,
        first: &RefreshClaims,
        user: &UserView,
    ) -> Result<(), ApiError> {
        let user = serde_json::to_string(user).map_err(|e| ApiError::Internal(e.into()))?;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(family_key(&first.fam))
            .arg(user)
            .arg("EX")
            .arg(self.ttl_s)
            .ignore()
            .cmd("SET")
            .arg(token_key(&first.jti))
            .arg(format!("live:{}", first.fam))
            .arg("EX")
            .arg(self.ttl_s)
            .ignore();
        self.redis.pipeline::<()>(&pipe).await?;
        Ok(())
    }

    pub async fn rotate(
        &self,
        old: &RefreshClaims,
        new: &RefreshClaims,
    ) -> Result<Rotation, ApiError> {
        let mut invocation = self.rotate.prepare_invoke();
        invocation
            .key(token_key(&old.jti))
            .key(token_key(&new.jti))
            .key(family_key(&old.fam))
            .arg(&old.fam)
            .arg(self.ttl_s);
        let answer: Vec<String> = self.redis.script(&invocation).await?;
        match answer.first().map(String::as_str) {
            Some("ok") => {
                let user = answer
                    .get(1)
                    .and_then(|u| serde_json::from_str(u).ok())
                    .ok_or_else(|| {
                        ApiError::Internal(anyhow::anyhow!("refresh family holds no valid user"))
                    })?;
                Ok(Rotation::Rotated(user))
            }
            Some("reuse") => {
                tracing::warn!(family = %old.fam, "refresh token reuse: family revoked");
                Ok(Rotation::Reused)
            }
            _ => Ok(Rotation::Revoked),
        }
    }

    /// Logout: the whole family, at once. Revoking a dead family is not an error.
    pub async fn revoke_family(&self, family: &str) -> Result<(), ApiError> {
        self.redis
            .query::<()>(redis::cmd("DEL").arg(family_key(family)))
            .await?;
        Ok(())
    }
}
