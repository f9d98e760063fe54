//! The HTTP plumbing both servers share: JSON limits and errors, 404/405 as contract
//! errors, the shared routes and the `Application` handle.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::error::JsonPayloadError;
use actix_web::{web, HttpRequest, HttpResponse, Resource};
use serde_json::json;

use crate::contract::{Credentials, UserView};
use crate::error::ApiError;
use crate::metrics;
use crate::state::Core;

/// Bodies over this many bytes are refused with 413.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// JSON extraction per the contract: 16 KiB, `application/json` only, errors as JSON.
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_BODY_BYTES)
        .content_type_required(true)
        .error_handler(|err, _req| {
            match err {
                JsonPayloadError::OverflowKnownLength { .. }
                | JsonPayloadError::Overflow { .. } => ApiError::PayloadTooLarge,
                JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
                JsonPayloadError::Deserialize(e) => {
                    ApiError::InvalidRequest(format!("invalid JSON body: {e}"))
                }
                other => ApiError::InvalidRequest(format!("invalid request body: {other}")),
            }
            .into()
        })
}

/// A route whose other methods answer 405 with the contract's body.
pub fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(|| async {
        Err::<HttpResponse, _>(ApiError::MethodNotAllowed)
    }))
}

/// For `App::default_service`.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

/// The client address that failed logins are counted against.
pub fn client_addr(req: &HttpRequest) -> String {
    req.connection_info()
        .realip_remote_addr()
        .unwrap_or("unknown")
        .to_owned()
}

/// API routes whose behaviour does not depend on the auth model.
pub fn common_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/auth/signup").route(web::post().to(signup)))
        .service(resource("/api/public").route(web::get().to(public)));
}

/// Health, readiness and metrics: for orchestrators and scrapers, outside any auth
/// middleware, so a credential a probe happens to carry cannot make them touch Redis.
pub fn ops_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/healthz").route(web::get().to(healthz)))
        .service(resource("/readyz").route(web::get().to(readyz)))
        .service(resource("/metrics").route(web::get().to(metrics::handler)));
}

#[tracing::instrument(name = "signup", skip_all, fields(username = %body.username))]
async fn signup(
    core: web::Data<Core>,
    body: web::Json<Credentials>,
) -> Result<HttpResponse, ApiError> {
    let creds = body.into_inner();
    creds.validate_for_signup()?;
    let user = core.create_user(creds, vec!["user".into()]).await?;
    Ok(HttpResponse::Created().json(user.view()))
}

async fn public(core: web::Data<Core>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "server": core.server_name,
        "message": "no credentials needed",
        "roles": [],
    }))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

async fn readyz(core: web::Data<Core>) -> Result<HttpResponse, ApiError> {
    core.redis.ping().await?;
    Ok(HttpResponse::Ok().json(json!({"status": "ready"})))
}

/// `GET /api/admin/stats`, once the caller is known to be an admin.
pub fn admin_stats(core: &Core, caller: &UserView) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "server": core.server_name,
        "uptime_s": core.started.elapsed().as_secs(),
        "redis_commands_total": core.metrics.redis_commands.get(),
        "requested_by": caller.username,
    }))
}

/// A bound, not yet running server: tests read the port, `main` runs it.
pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    pub fn new(listener: &TcpListener, server: Server) -> std::io::Result<Self> {
        Ok(Self {
            port: listener.local_addr()?.port(),
            server,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Runs until SIGTERM/SIGINT (then lets in-flight requests finish) or a stop via the handle.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
