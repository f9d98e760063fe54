//! Who is calling: the `AuthUser` extractor, and the session life cycle (start at login,
//! rotate at refresh, idle and absolute timeouts, lazy idle-TTL extension).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use auth_core::contract::UserView;
use auth_core::ApiError;
use futures_util::future::{ready, Ready};

const USER: &str = "user";
/// When the session was created at login (unix milliseconds): the absolute timeout counts from it.
const CREATED: &str = "created";
/// When the idle TTL was last pushed forward (unix milliseconds).
const EXTENDED: &str = "extended";

/// The session rules, from the settings.
#[derive(Debug, Clone)]
pub struct SessionPolicy {
    pub cookie_name: String,
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("session state: {e}"))
}

impl SessionPolicy {
    /// Re-writing the session on every read would cost a second Redis round trip per
    /// request; instead the idle TTL is pushed forward once a tenth of it has passed, so
    /// a session idles out between 90% and 100% of the idle timeout after its last use.
    fn extension_interval_ms(&self) -> u64 {
        (self.idle_timeout.as_millis() as u64 / 10).max(1)
    }

    /// Login: whatever session the client brought is discarded and a fresh id issued
    /// (no session fixation).
    pub fn start(&self, session: &Session, user: &UserView) -> Result<(), ApiError> {
        session.clear();
        session.renew();
        let now = now_ms();
        session.insert(USER, user).map_err(internal)?;
        session.insert(CREATED, now).map_err(internal)?;
        session.insert(EXTENDED, now).map_err(internal)?;
        Ok(())
    }

    /// Refresh: a new id (the old one stops working) and a fresh idle TTL; the absolute
    /// timeout still counts from login.
    pub fn rotate(&self, session: &Session) -> Result<(), ApiError> {
        session.renew();
        session.insert(EXTENDED, now_ms()).map_err(internal)
    }

    fn authenticate(&self, req: &HttpRequest) -> Result<AuthUser, ApiError> {
        let session = req.get_session();
        let user: Option<UserView> = session.get(USER).map_err(internal)?;
        let Some(user) = user else {
            // A cookie that leads nowhere (expired, logged out, forged) is not the same as
            // no credentials at all.
            return Err(if req.cookie(&self.cookie_name).is_some() {
                ApiError::InvalidToken
            } else {
                ApiError::Unauthorized
            });
        };
        let created: u64 = session.get(CREATED).map_err(internal)?.unwrap_or(0);
        let extended: u64 = session.get(EXTENDED).map_err(internal)?.unwrap_or(0);
        let now = now_ms();
        // The store's TTL already drops idle sessions; checking here too keeps the rule
        // exact even if a store keeps an entry a little longer.
        if now.saturating_sub(created) >= self.absolute_timeout.as_millis() as u64
            || now.saturating_sub(extended) >= self.idle_timeout.as_millis() as u64
        {
            session.purge();
            return Err(ApiError::InvalidToken);
        }
        if now.saturating_sub(extended) >= self.extension_interval_ms() {
            session.insert(EXTENDED, now).map_err(internal)?;
        }
        Ok(AuthUser { user, session })
    }
}

/// A caller with a live session. Taking it as a handler argument is what makes a route
/// protected.
pub struct AuthUser {
    pub user: UserView,
    pub session: Session,
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match req.app_data::<web::Data<SessionPolicy>>() {
            Some(policy) => policy.authenticate(req),
            None => Err(ApiError::Internal(anyhow::anyhow!(
                "SessionPolicy is not registered as app data"
            ))),
        })
    }
}
