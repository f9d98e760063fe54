//! Builds the session server: Redis, the session store and middleware, the routes.

use std::net::TcpListener;

use actix_session::config::{BrowserSession, CookieContentSecurity, TtlExtensionPolicy};
use actix_session::SessionMiddleware;
use actix_web::body::MessageBody;
use actix_web::cookie::{time, Key, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use auth_core::http::{common_routes, json_config, not_found, ops_routes, Application};
use auth_core::{metrics, ApiError, Core};

use crate::auth::SessionPolicy;
use crate::routes::routes;
use crate::settings::{Settings, StoreKind};
use crate::store::{MemoryStore, RedisStore, Store};

pub const SERVER_NAME: &str = "session-server";
pub const COOKIE_NAME: &str = "sid";

pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    let core = Core::build(&settings.common, SERVER_NAME).await?;
    let key = Key::try_from(settings.session_key.as_slice())
        .context("SESSION_KEY must be at least 64 bytes")?;
    let policy = SessionPolicy {
        cookie_name: COOKIE_NAME.into(),
        idle_timeout: settings.idle_timeout,
        absolute_timeout: settings.absolute_timeout,
    };
    // One memory store for all workers of this replica (it is per replica, not per thread).
    let memory = MemoryStore::default();
    let listener = TcpListener::bind(settings.common.listen_addr)
        .with_context(|| format!("cannot listen on {}", settings.common.listen_addr))?;
    tracing::info!(
        addr = %listener.local_addr()?,
        store = ?settings.store,
        workers = settings.common.workers,
        "session-server listening"
    );
    let core_data = web::Data::new(core.clone());
    let policy_data = web::Data::new(policy);
    let metrics_data = web::Data::new(core.metrics.clone());
    let store_kind = settings.store;
    let cookie_secure = settings.cookie_secure;
    let state_ttl = time::Duration::seconds(settings.idle_timeout.as_secs() as i64);
    let server = HttpServer::new(move || {
        let store = match store_kind {
            StoreKind::Redis => Store::Redis(RedisStore::new(core_data.redis.clone())),
            StoreKind::Memory => Store::Memory(memory.clone()),
        };
        let sessions = SessionMiddleware::builder(store, key.clone())
            .cookie_name(COOKIE_NAME.into())
            .cookie_secure(cookie_secure)
            .cookie_http_only(true)
            .cookie_same_site(SameSite::Lax)
            .cookie_path("/".into())
            .cookie_content_security(CookieContentSecurity::Private)
            .session_lifecycle(
                BrowserSession::default()
                    .state_ttl(state_ttl)
                    .state_ttl_extension_policy(TtlExtensionPolicy::OnStateChanges),
            )
            .build();
        App::new()
            .wrap(from_fn(metrics::record))
            .app_data(json_config())
            .app_data(core_data.clone())
            .app_data(policy_data.clone())
            .app_data(metrics_data.clone())
            .configure(ops_routes)
            .service(
                web::scope("")
                    .wrap(sessions)
                    .wrap(from_fn(store_errors_as_503))
                    .configure(common_routes)
                    .configure(routes)
                    .default_service(web::to(not_found)),
            )
    })
    .workers(settings.common.workers)
    .listen(listener.try_clone()?)?
    .run();
    Ok(Application::new(&listener, server)?)
}

/// The session middleware fails the whole request when its store does (an opaque 500);
/// the store here is Redis or memory, so such a failure means Redis is away: 503.
async fn store_errors_as_503(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    next.call(req)
        .await
        .map_err(|e| ApiError::Unavailable(anyhow::anyhow!("session store: {e:?}")).into())
}
