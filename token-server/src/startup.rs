//! Builds the token server: Redis (users and refresh tokens only), keys, the routes.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::{web, App, HttpServer};
use anyhow::Context;
use auth_core::http::{common_routes, not_found, ops_routes, Application, BODY_TIMEOUT};
use auth_core::layer::{ContractLayer, LayerConfig};
use auth_core::Core;

use crate::denylist::Denylist;
use crate::keys::Keys;
use crate::refresh_tokens::RefreshTokens;
use crate::routes::routes;
use crate::settings::Settings;
use crate::tokens::TokenCodec;

pub const SERVER_NAME: &str = "token-server";

pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    let keys = Keys::load(settings.alg, &settings.key)?;
    let core = Core::build(&settings.common, SERVER_NAME, &keys.device_secret).await?;
    let codec = Arc::new(TokenCodec::new(
        keys,
        settings.access_ttl,
        settings.refresh_ttl,
        settings.family_max_age,
    ));
    let refresh_tokens = RefreshTokens::new(
        core.redis.clone(),
        settings.common.refresh_reuse_interval.as_secs(),
        settings.family_max_age.as_secs(),
    );
    let denylist = settings
        .access_denylist
        .then(|| web::Data::new(Denylist::new(core.redis.clone())));
    let listener = TcpListener::bind(settings.common.listen_addr)
        .with_context(|| format!("cannot listen on {}", settings.common.listen_addr))?;
    tracing::info!(
        addr = %listener.local_addr()?,
        redis = %settings.common.redis,
        alg = ?settings.alg,
        kid = %codec.keys().kid,
        denylist = settings.access_denylist,
        workers = settings.common.workers,
        "token-server listening"
    );
    let core_data = web::Data::new(core.clone());
    let metrics_data = web::Data::new(core.metrics.clone());
    let codec_data = web::Data::new(codec);
    let refresh_data = web::Data::new(refresh_tokens);
    let common = settings.common.clone();
    let server = HttpServer::new(move || {
        let mut app = App::new()
            .wrap(ContractLayer::new(LayerConfig {
                cors_origins: common.cors_allowed_origins.clone(),
                cors_credentials: false,
                csrf_check: false,
                trusted_proxies: common.trusted_proxies.clone(),
                bearer_realm: Some(SERVER_NAME),
                metrics: core_data.metrics.clone(),
            }))
            .app_data(core_data.clone())
            .app_data(metrics_data.clone())
            .app_data(codec_data.clone())
            .app_data(refresh_data.clone());
        if let Some(d) = &denylist {
            app = app.app_data(d.clone());
        }
        app.configure(ops_routes)
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
