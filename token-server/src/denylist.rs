//! The optional access-token denylist (`ACCESS_DENYLIST=true`): logout revokes the access
//! token at once, at the price of one Redis read on every authenticated request.

use auth_core::redis_conn::Redis;
use auth_core::ApiError;

use crate::tokens::{now_s, AccessClaims, LEEWAY_S};

#[derive(Clone)]
pub struct Denylist {
    redis: Redis,
}

fn key(jti: &str) -> String {
    format!("deny:{jti}")
}

impl Denylist {
    pub fn new(redis: Redis) -> Self {
        Self { redis }
    }

    /// Kept only while the token could still verify, so the list never outgrows the
    /// tokens alive.
    pub async fn deny(&self, claims: &AccessClaims) -> Result<(), ApiError> {
        let ttl = claims.exp.saturating_sub(now_s()) + LEEWAY_S + 1;
        self.redis
            .query::<()>(
                redis::cmd("SET")
                    .arg(key(&claims.jti))
                    .arg(1)
                    .arg("EX")
                    .arg(ttl),
            )
            .await?;
        Ok(())
    }

    /// Redis away means the answer is unknown: refuse (503) rather than accept a token
    /// that may have been revoked.
    pub async fn is_denied(&self, jti: &str) -> Result<bool, ApiError> {
        Ok(self.redis.query(redis::cmd("EXISTS").arg(key(jti))).await?)
    }
}
