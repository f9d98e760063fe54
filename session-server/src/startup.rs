//! Builds the session server: Redis, the session store and policy, the contract layer with
//! its CSRF check, the routes.

use std::net::TcpListener;

use actix_web::cookie::Key;
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use auth_core::http::{common_routes, not_found, ops_routes, Application, BODY_TIMEOUT};
use auth_core::layer::{ContractLayer, LayerConfig};
use auth_core::Core;

use crate::auth::SessionPolicy;
use crate::routes::routes;
use crate::settings::{Settings, StoreKind};
use crate::store::{MemoryStore, RedisStore, Store};

pub const SERVER_NAME: &str = "session-server";
/// The cookie's name over plain HTTP (local runs).
pub const COOKIE_NAME: &str = "sid";
/// With `COOKIE_SECURE=true`: the `__Host-` prefix makes a browser refuse the cookie unless
/// it is `Secure`, has `Path=/` and no `Domain`, so no sibling subdomain can plant or shadow it.
pub const SECURE_COOKIE_NAME: &str = "__Host-sid";
/// The device credential's cookie (`auth_core::device`), and its name with `COOKIE_SECURE`.
pub const DEVICE_COOKIE_NAME: &str = "did";
pub const SECURE_DEVICE_COOKIE_NAME: &str = "__Host-did";

pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    let core = Core::build(&settings.common, SERVER_NAME, &settings.session_key).await?;
    let key = Key::try_from(settings.session_key.as_slice())
        .context("SESSION_KEY must be at least 64 bytes")?;
    let (cookie_name, device_cookie_name) = if settings.cookie_secure {
        (SECURE_COOKIE_NAME, SECURE_DEVICE_COOKIE_NAME)
    } else {
        (COOKIE_NAME, DEVICE_COOKIE_NAME)
    };
    let store = match settings.store {
        StoreKind::Redis => Store::Redis(RedisStore::new(core.redis.clone())),
        // One memory store for all workers of this replica (it is per replica, not per thread).
        StoreKind::Memory => Store::Memory(MemoryStore::default()),
    };
    let policy = SessionPolicy {
        cookie_name,
        device_cookie_name,
        cookie_secure: settings.cookie_secure,
        same_site: settings.cookie_samesite,
        key,
        idle_timeout: settings.idle_timeout,
        absolute_timeout: settings.absolute_timeout,
        reuse_interval: settings.common.refresh_reuse_interval,
        store,
    };
    let listener = TcpListener::bind(settings.common.listen_addr)
        .with_context(|| format!("cannot listen on {}", settings.common.listen_addr))?;
    tracing::info!(
        addr = %listener.local_addr()?,
        redis = %settings.common.redis,
        store = ?settings.store,
        cookie = cookie_name,
        same_site = settings.cookie_samesite.as_str(),
        workers = settings.common.workers,
        "session-server listening"
    );
    let core_data = web::Data::new(core.clone());
    let policy_data = web::Data::new(policy);
    let metrics_data = web::Data::new(core.metrics.clone());
    let common = settings.common.clone();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(ContractLayer::new(LayerConfig {
                cors_origins: common.cors_allowed_origins.clone(),
                cors_credentials: true,
                csrf_check: true,
                trusted_proxies: common.trusted_proxies.clone(),
                bearer_realm: None,
                metrics: core_data.metrics.clone(),
            }))
            .app_data(core_data.clone())
            .app_data(policy_data.clone())
            .app_data(metrics_data.clone())
            .configure(ops_routes)
            .configure(common_routes)
            .configure(routes)
            .default_service(web::to(not_found))
    })
    .workers(settings.common.workers)
    .client_request_timeout(BODY_TIMEOUT)
    .shutdown_timeout(settings.common.shutdown_timeout.as_secs())
    .listen(listener.try_clone()?)?
    .run();
    Ok(Application::new(&listener, server)?)
}
