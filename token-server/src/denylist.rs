//! The optional revocation check (`ACCESS_DENYLIST=true`): an access token is refused as soon
//! as the login it was issued under (its refresh-token family, the `sid` claim) has ended, by
//! logout, "logout everywhere" or detected reuse, at the price of one Redis read on every
//! authenticated request. Without it an access token lives until it expires: that is the
//! stateless model's trade-off.

use auth_core::redis_conn::Redis;
use auth_core::ApiError;

use crate::refresh_tokens::family_key;
use crate::tokens::AccessClaims;

#[derive(Clone)]
pub struct Denylist {
    redis: Redis,
}

impl Denylist {
    pub fn new(redis: Redis) -> Self {
        Self { redis }
    }

    /// Redis away means the answer is unknown: refuse (503) rather than accept a token
    /// that may have been revoked.
    pub async fn is_denied(&self, claims: &AccessClaims) -> Result<bool, ApiError> {
        let live: bool = self
            .redis
            .query(redis::cmd("EXISTS").arg(family_key(&claims.sid)))
            .await?;
        Ok(!live)
    }
}
