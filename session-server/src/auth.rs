//! Who is calling: the session cookie, the `AuthUser` extractor, and the session life cycle
//! (start at login, rotate at refresh, end at logout, idle and absolute timeouts, lazy
//! idle-TTL extension, the retry grace).

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::cookie::{Cookie, CookieJar, Key};
use actix_web::dev::Payload;
use actix_web::http::header::{HeaderValue, SET_COOKIE};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use auth_core::contract::{Scopes, UserView};
use auth_core::device::DeviceKey;
use auth_core::hash_slot::UserSlot;
use auth_core::layer::{cookie_values, only_cookie_value};
use auth_core::ApiError;

use crate::settings::SameSite;
use crate::store::{Lookup, Rotation, SessionData, SessionId, Store, Ttl};

/// The session rules and the cookie, from the settings.
#[derive(Clone)]
pub struct SessionPolicy {
    /// `sid`, or `__Host-sid` with `COOKIE_SECURE=true`.
    pub cookie_name: &'static str,
    /// `did`, or `__Host-did`: the device credential, set at every successful login.
    pub device_cookie_name: &'static str,
    pub cookie_secure: bool,
    pub same_site: SameSite,
    /// Signs the id in the cookie (`SESSION_KEY`, HMAC-SHA256): a cookie this server did
    /// not hand out is refused before any store lookup. Signed, not encrypted: the id is a
    /// random bearer secret either way, and the same id always gives the same cookie (a
    /// retry within the grace gets its successor's cookie byte for byte).
    pub key: Key,
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
    /// `REFRESH_REUSE_INTERVAL`.
    pub reuse_interval: Duration,
    pub store: Store,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl SessionPolicy {
    /// Re-writing the session on every read would cost a second Redis round trip per
    /// request; instead the idle TTL is pushed forward once a tenth of it has passed, so
    /// a session idles out between 90% and 100% of the idle timeout after its last use.
    fn extension_interval_ms(&self) -> u64 {
        (self.idle_timeout.as_millis() as u64 / 10).max(1)
    }

    /// Lifetimes for a session created at `created_ms`, written at `now_ms`.
    fn ttl(&self, created_ms: u64, now_ms: u64) -> Ttl {
        let absolute_end = created_ms + self.absolute_timeout.as_millis() as u64;
        let left_s = absolute_end.saturating_sub(now_ms).div_ceil(1000).max(1);
        Ttl {
            session_s: self.idle_timeout.as_secs().min(left_s),
            grace_s: self.reuse_interval.as_secs(),
            index_s: self.absolute_timeout.as_secs(),
        }
    }

    /// The session id in the request's cookie, if one verifies to a well-formed id. A
    /// request carrying the cookie twice has none (`only_cookie_value`).
    pub fn session_id(&self, req: &HttpRequest) -> Option<SessionId> {
        let raw = only_cookie_value(req.headers(), self.cookie_name)?;
        let mut jar = CookieJar::new();
        jar.add_original(Cookie::new(self.cookie_name, raw.to_owned()));
        let id = jar.signed(&self.key).get(self.cookie_name)?;
        SessionId::parse(id.value())
    }

    /// Whether the request carries the session cookie at all (live or not).
    pub fn has_cookie(&self, req: &HttpRequest) -> bool {
        cookie_values(req.headers(), self.cookie_name)
            .next()
            .is_some()
    }

    /// The device credential the request carries (the cookie once; twice is none).
    pub fn device_credential<'a>(&self, req: &'a HttpRequest) -> Option<&'a str> {
        only_cookie_value(req.headers(), self.device_cookie_name)
    }

    /// `Set-Cookie` handing the client a device credential for `username`, living `DEVICE_TTL`.
    pub fn set_device_cookie(&self, res: &mut HttpResponse, device: &DeviceKey, username: &str) {
        let mut c = self.cookie_named(self.device_cookie_name, device.issue(username));
        c.set_max_age(actix_web::cookie::time::Duration::seconds(
            device.ttl().as_secs().min(i64::MAX as u64) as i64,
        ));
        self.append(res, c);
    }

    fn cookie(&self, value: String) -> Cookie<'static> {
        self.cookie_named(self.cookie_name, value)
    }

    fn cookie_named(&self, name: &'static str, value: String) -> Cookie<'static> {
        let mut c = Cookie::new(name, value);
        c.set_http_only(true);
        c.set_secure(self.cookie_secure);
        c.set_path("/");
        c.set_same_site(match self.same_site {
            SameSite::Lax => actix_web::cookie::SameSite::Lax,
            SameSite::Strict => actix_web::cookie::SameSite::Strict,
            SameSite::None => actix_web::cookie::SameSite::None,
        });
        c
    }

    /// `Set-Cookie` handing the client `id` (signed with `SESSION_KEY`).
    pub fn set_cookie(&self, res: &mut HttpResponse, id: &SessionId) {
        let mut jar = CookieJar::new();
        jar.signed_mut(&self.key)
            .add(Cookie::new(self.cookie_name, id.as_str().to_owned()));
        let encrypted = jar
            .get(self.cookie_name)
            .map(|c| c.value().to_owned())
            .unwrap_or_default();
        self.append(res, self.cookie(encrypted));
    }

    /// `Set-Cookie` removing the cookie (also when it was dead or forged).
    pub fn clear_cookie(&self, res: &mut HttpResponse) {
        let mut c = self.cookie(String::new());
        c.make_removal();
        self.append(res, c);
    }

    fn append(&self, res: &mut HttpResponse, cookie: Cookie<'static>) {
        if let Ok(v) = HeaderValue::from_str(&cookie.to_string()) {
            res.headers_mut().append(SET_COOKIE, v);
        }
    }

    /// Login: a fresh session (never the id the client brought, which is ended).
    pub async fn start(
        &self,
        req: &HttpRequest,
        user: UserView,
        scope: Scopes,
    ) -> Result<SessionId, ApiError> {
        if let Some(old) = self.session_id(req) {
            self.store.delete(&old).await?;
        }
        let now = now_ms();
        let data = SessionData {
            user,
            scope,
            created_ms: now,
            extended_ms: now,
        };
        self.store.create(&data, self.ttl(now, now)).await
    }

    /// Refresh: a new id in one atomic step (the old one answers as the new one for the
    /// retry grace, then stops working), a fresh idle TTL; the absolute timeout still counts
    /// from login. Returns the id the client must hold from now on.
    pub async fn rotate(&self, caller: &AuthUser) -> Result<SessionId, ApiError> {
        if let Some(successor) = &caller.renewed {
            // A retry with the replaced id: served as the session it was replaced by.
            return Ok(successor.clone());
        }
        let new = SessionId::generate(UserSlot::of(&caller.data.user.username));
        let now = now_ms();
        let ttl = self.ttl(caller.data.created_ms, now);
        match self
            .store
            .rotate(&caller.id, &new, &caller.data.user, now, ttl)
            .await?
        {
            Rotation::Rotated => Ok(new),
            Rotation::AlreadyReplaced(successor) => Ok(successor),
            // A logout won the race.
            Rotation::Missing => Err(ApiError::InvalidToken),
        }
    }

    async fn authenticate(&self, req: HttpRequest) -> Result<AuthUser, ApiError> {
        let Some(id) = self.session_id(&req) else {
            // A cookie that leads nowhere (forged, from another key) is not the same as no
            // credentials at all.
            return Err(if self.has_cookie(&req) {
                ApiError::InvalidToken
            } else {
                ApiError::Unauthorized
            });
        };
        let (id, data, renewed) = match self.store.load(&id).await? {
            Lookup::Live(data) => (id, data, None),
            Lookup::Replaced { successor, data } => (successor.clone(), data, Some(successor)),
            Lookup::Missing => return Err(ApiError::InvalidToken),
        };
        let now = now_ms();
        // The store's TTL already drops idle sessions; checking here too keeps the rule
        // exact even if a store keeps an entry a little longer.
        if now.saturating_sub(data.created_ms) >= self.absolute_timeout.as_millis() as u64
            || now.saturating_sub(data.extended_ms) >= self.idle_timeout.as_millis() as u64
        {
            self.store.delete(&id).await?;
            return Err(ApiError::InvalidToken);
        }
        if now.saturating_sub(data.extended_ms) >= self.extension_interval_ms() {
            self.store
                .touch(&id, now, self.ttl(data.created_ms, now))
                .await?;
        }
        Ok(AuthUser { id, data, renewed })
    }
}

/// A caller with a live session. Taking it as a handler argument is what makes a route
/// protected.
pub struct AuthUser {
    /// The session's id (the successor's, when the client sent a just-replaced one).
    pub id: SessionId,
    pub data: SessionData,
    /// Set when the client sent an id replaced within the retry grace: the answer hands it
    /// the successor's id again.
    pub renewed: Option<SessionId>,
}

impl AuthUser {
    pub fn user(&self) -> &UserView {
        &self.data.user
    }

    /// `403 insufficient_scope` unless the credential carries `needed`.
    pub fn require_scope(&self, needed: Scopes) -> Result<(), ApiError> {
        self.data.scope.require(needed)
    }

    /// The admin routes: the role first (`forbidden`), then the scope.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        self.data.scope.require_admin(&self.data.user.roles)
    }

    /// The answer, with the successor's cookie when the client sent a replaced id.
    pub fn reply(&self, policy: &SessionPolicy, mut res: HttpResponse) -> HttpResponse {
        if let Some(successor) = &self.renewed {
            policy.set_cookie(&mut res, successor);
        }
        res
    }
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let policy = req.app_data::<web::Data<SessionPolicy>>().cloned();
        let req = req.clone();
        Box::pin(async move {
            match policy {
                Some(policy) => policy.authenticate(req).await,
                None => Err(ApiError::Internal(anyhow::anyhow!(
                    "SessionPolicy is not registered as app data"
                ))),
            }
        })
    }
}
