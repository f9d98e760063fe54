//! The HTTP plumbing both servers share: the JSON body extractor (size, type, encoding and
//! time limits), routes whose other methods answer 405 with `Allow`, `HEAD` on every `GET`,
//! the shared routes and the `Application` handle. The per-request checks (CORS, CSRF,
//! caching, metrics) are in `layer`.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::{Payload, Server};
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{guard, web, FromRequest, Handler, HttpRequest, HttpResponse, Resource, Responder};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::contract::{Credentials, UserView};
use crate::error::ApiError;
use crate::metrics;
use crate::state::Core;

/// Bodies over this many bytes are refused with 413.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A request head or body that has not arrived after this long is answered 408: a client
/// that stalls cannot hold a worker (or a shutdown) for longer.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// A JSON body, read whole within `BODY_TIMEOUT`, at most `MAX_BODY_BYTES`, never
/// decompressed (the layer refuses any `Content-Encoding` before this runs), and only as
/// `application/json`. Every failure is a contract error.
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

fn is_json(req: &HttpRequest) -> bool {
    let Some(ct) = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    // `application/json`, or a `+json` type such as `application/merge-patch+json`.
    let essence = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = is_json(req);
        let declared: Option<usize> = req
            .headers()
            .get(actix_web::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if !json {
                return Err(ApiError::UnsupportedMediaType);
            }
            if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
                return Err(ApiError::PayloadTooLarge);
            }
            let read = async {
                let mut body = web::BytesMut::with_capacity(declared.unwrap_or(256));
                while let Some(chunk) = payload.next().await {
                    let chunk = chunk.map_err(|e| {
                        ApiError::InvalidRequest(format!("the body could not be read: {e}"))
                    })?;
                    if body.len() + chunk.len() > MAX_BODY_BYTES {
                        return Err(ApiError::PayloadTooLarge);
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(body)
            };
            let body = tokio::time::timeout(BODY_TIMEOUT, read)
                .await
                .map_err(|_| ApiError::RequestTimeout)??;
            serde_json::from_slice(&body)
                .map(Json)
                .map_err(|e| ApiError::InvalidRequest(format!("invalid JSON body: {e}")))
        })
    }
}

/// `GET` routes answer `HEAD` too (actix sends no body for `HEAD`).
fn get_or_head() -> actix_web::Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// A resource with one method; every other method is `405` with `Allow`.
fn one_method(path: &str, route: actix_web::Route, allow: &'static str) -> Resource {
    web::resource(path)
        .route(route)
        .default_service(web::to(move || async move {
            Err::<HttpResponse, _>(ApiError::MethodNotAllowed(allow))
        }))
}

/// `GET` (and `HEAD`) `path`.
pub fn get<F, Args>(path: &str, handler: F) -> Resource
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    one_method(path, get_or_head().to(handler), "GET, HEAD")
}

/// `POST` `path`.
pub fn post<F, Args>(path: &str, handler: F) -> Resource
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    one_method(path, web::post().to(handler), "POST")
}

/// `PUT` `path`.
pub fn put<F, Args>(path: &str, handler: F) -> Resource
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    one_method(path, web::put().to(handler), "PUT")
}

/// For `App::default_service`.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

/// API routes whose behaviour does not depend on the auth model.
pub fn common_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(post("/auth/signup", signup))
        .service(get("/api/public", public));
}

/// Health, readiness and metrics: for orchestrators and scrapers, outside any auth
/// middleware, so a credential a probe happens to carry cannot make them touch Redis.
pub fn ops_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(get("/healthz", healthz))
        .service(get("/readyz", readyz))
        .service(get("/metrics", metrics::handler));
}

#[tracing::instrument(name = "signup", skip_all, fields(username = %body.username))]
async fn signup(
    core: web::Data<Core>,
    req: HttpRequest,
    body: Json<Credentials>,
) -> Result<HttpResponse, ApiError> {
    let creds = body.into_inner();
    creds.validate_for_signup()?;
    let user = core.sign_up(creds, &core.client_of(&req)).await?;
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

    /// Runs until SIGTERM/SIGINT (then lets in-flight requests finish within
    /// `SHUTDOWN_TIMEOUT`) or a stop via the handle.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
