//! Builds the token server: Redis (users and refresh tokens only), keys, the routes.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use actix_web::http::StatusCode;
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use auth_core::error::ErrorCode;
use auth_core::http::{common_routes, json_config, not_found, ops_routes, Application};
use auth_core::{metrics, Core};

use crate::denylist::Denylist;
use crate::keys::Keys;
use crate::refresh_tokens::RefreshTokens;
use crate::routes::routes;
use crate::settings::Settings;
use crate::tokens::TokenCodec;

pub const SERVER_NAME: &str = "token-server";

pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    let keys = Keys::load(settings.alg, &settings.key)?;
    let core = Core::build(&settings.common, SERVER_NAME).await?;
    let codec = Arc::new(TokenCodec::new(
        keys,
        settings.access_ttl,
        settings.refresh_ttl,
    ));
    let refresh_tokens = RefreshTokens::new(core.redis.clone(), settings.refresh_ttl.as_secs());
    let denylist = settings
        .access_denylist
        .then(|| web::Data::new(Denylist::new(core.redis.clone())));
    let listener = TcpListener::bind(settings.common.listen_addr)
        .with_context(|| format!("cannot listen on {}", settings.common.listen_addr))?;
    tracing::info!(
        addr = %listener.local_addr()?,
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
    let server = HttpServer::new(move || {
        let mut app = App::new()
            .wrap(from_fn(www_authenticate))
            .wrap(from_fn(metrics::record))
            .app_data(json_config())
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
    .listen(listener.try_clone()?)?
    .run();
    Ok(Application::new(&listener, server)?)
}

/// RFC 6750 section 3: every 401 names the scheme and realm, and says `invalid_token`
/// when a token was sent.
async fn www_authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let sent_token = req.headers().contains_key(AUTHORIZATION);
    let mut res = next.call(req).await?;
    if res.status() == StatusCode::UNAUTHORIZED {
        let invalid = sent_token
            || res.response().extensions().get::<ErrorCode>() == Some(&ErrorCode("invalid_token"));
        let value = if invalid {
            r#"Bearer realm="token-server", error="invalid_token""#
        } else {
            r#"Bearer realm="token-server""#
        };
        res.headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static(value));
    }
    Ok(res)
}
