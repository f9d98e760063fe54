//! The one middleware every request of both servers passes through: the contract's
//! per-request checks and headers, written once and run in one step (one future per
//! request, however many checks).
//!
//! In order: a compressed body is refused (415) before anything reads it; a CORS preflight
//! from an allowed origin is answered; the session server's CSRF check refuses a
//! state-changing request from another site (403) before any handler runs; then, on the way
//! out, `Cache-Control: no-store` on credentials and personal data, the CORS headers, the
//! token server's `WWW-Authenticate`, and the metrics.

use std::borrow::Cow;
use std::rc::Rc;
use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{
    HeaderValue, ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS,
    ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_METHOD, AUTHORIZATION, CACHE_CONTROL, CONTENT_ENCODING, COOKIE, HOST,
    ORIGIN, VARY, WWW_AUTHENTICATE,
};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use futures_util::future::{ready, LocalBoxFuture, Ready};

use crate::client::TrustedProxies;
use crate::error::{ApiError, ErrorCode};
use crate::metrics::{Metrics, Recorder};

/// Methods the API answers, for CORS.
const CORS_METHODS: &str = "GET, HEAD, POST, PUT";
/// Request headers a browser may send cross-origin (`Device-Token`: the token server's
/// device credential, sent at login by an app on another origin).
const CORS_HEADERS: &str = "Authorization, Content-Type, Device-Token";
/// How long a browser may cache a preflight answer (seconds).
const CORS_MAX_AGE: &str = "600";

/// What the layer does for one server.
pub struct LayerConfig {
    /// `CORS_ALLOWED_ORIGINS`, normalised (`config::parse_origin`).
    pub cors_origins: Vec<String>,
    /// Session server: CORS answers carry `Access-Control-Allow-Credentials: true`, since
    /// the credential is a cookie the browser must be allowed to send.
    pub cors_credentials: bool,
    /// Session server: every state-changing request is subject to the CSRF origin check,
    /// whether or not it carries the cookie (a forged logout or login carries none under
    /// `SameSite=Lax`, yet its answer's `Set-Cookie` would reach the victim's browser). Off on
    /// the token server: a browser attaches no bearer token by itself, and a logout or
    /// refresh needs the refresh token in the body, so there is nothing to forge.
    pub csrf_check: bool,
    /// Whose `X-Forwarded-Proto`/`X-Forwarded-Host` say what the server's own origin is.
    pub trusted_proxies: TrustedProxies,
    /// Token server: the realm of `WWW-Authenticate` on every 401 (RFC 6750 section 3).
    pub bearer_realm: Option<&'static str>,
    pub metrics: Metrics,
}

impl LayerConfig {
    fn allowed_origin(&self, origin: &str) -> bool {
        self.cors_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin))
    }

    /// The request's own origin (scheme, host and port), as a browser would write it.
    fn own_origin(&self, req: &ServiceRequest) -> Option<String> {
        let headers = req.headers();
        let trusted = !self.trusted_proxies.is_empty()
            && req
                .peer_addr()
                .is_some_and(|p| self.trusted_proxies.trusts(p.ip()));
        let forwarded = |name: &str| {
            trusted
                .then(|| headers.get(name).and_then(|v| v.to_str().ok()))
                .flatten()
                .and_then(|v| v.split(',').next())
                .map(str::trim)
        };
        // This server speaks plain HTTP; TLS is a proxy's job, and only a trusted proxy may
        // say the client used it.
        let scheme = forwarded("x-forwarded-proto").unwrap_or("http");
        let host = match forwarded("x-forwarded-host") {
            Some(h) => h,
            None => headers.get(HOST)?.to_str().ok()?,
        };
        let default_port = if scheme == "https" { ":443" } else { ":80" };
        let host = host.strip_suffix(default_port).unwrap_or(host);
        Some(format!("{scheme}://{host}").to_ascii_lowercase())
    }

    /// The session server's CSRF rule (`API.md`, "Caching, CSRF and CORS"), the way Go's
    /// `http.CrossOriginProtection` decides: `Origin` against this server's own origin and the
    /// allowed ones when the browser sent it, else Fetch Metadata; a request with neither is
    /// not from a browser (or from one too old to say), and is let through.
    fn cross_site(&self, req: &ServiceRequest) -> bool {
        if !self.csrf_check || matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        {
            return false;
        }
        let headers = req.headers();
        match headers.get(ORIGIN).map(|o| o.to_str().unwrap_or("null")) {
            Some(origin) => {
                let origin = origin.trim_end_matches('/');
                !(self.allowed_origin(origin)
                    || self
                        .own_origin(req)
                        .is_some_and(|own| own.eq_ignore_ascii_case(origin)))
            }
            // Older browsers send no Origin on some requests; Fetch Metadata still says
            // where the request came from.
            None => matches!(
                headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()),
                Some("cross-site" | "same-site")
            ),
        }
    }
}

/// The value of the cookie `name` when the request carries it exactly once: sent twice, no
/// rule (first, last) may pick one, or a cookie planted beside the real one decides.
pub fn only_cookie_value<'a>(
    headers: &'a actix_web::http::header::HeaderMap,
    name: &'a str,
) -> Option<&'a str> {
    let mut values = cookie_values(headers, name);
    let first = values.next()?;
    values.next().is_none().then_some(first)
}

/// Every value of the cookie `name` in the request's `Cookie` headers.
pub fn cookie_values<'a>(
    headers: &'a actix_web::http::header::HeaderMap,
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(move |pair| {
            let (n, v) = pair.split_once('=')?;
            (n.trim() == name).then(|| v.trim())
        })
}

/// Routes that hand out credentials or answer with personal data: never stored by a
/// cache. `/api/public` is the one API route without credentials.
fn no_store(path: &str) -> bool {
    path.starts_with("/auth/") || (path.starts_with("/api/") && path != "/api/public")
}

/// The route template for metrics: looked up in a short list of the fixed paths first, since
/// actix's `match_pattern` walks the whole route table on every request.
fn route_label(req: &ServiceRequest, fixed: &[&'static str]) -> Cow<'static, str> {
    let path = req.path();
    match fixed.iter().find(|p| **p == path) {
        Some(p) => Cow::Borrowed(p),
        None => req
            .match_pattern()
            .map_or(Cow::Borrowed("unmatched"), Cow::Owned),
    }
}

/// Paths without parameters that both servers serve (the metrics' hot labels).
const FIXED_PATHS: [&str; 14] = [
    "/api/me",
    "/api/items",
    "/api/public",
    "/api/admin/stats",
    "/auth/login",
    "/auth/refresh",
    "/auth/logout",
    "/auth/logout-all",
    "/auth/signup",
    "/healthz",
    "/readyz",
    "/metrics",
    "/.well-known/jwks.json",
    "/",
];

/// `App::wrap(ContractLayer::new(config))`.
/// Built once per worker (inside `HttpServer::new`'s factory), so its recorder is the
/// worker's own.
#[derive(Clone)]
pub struct ContractLayer {
    config: Rc<LayerConfig>,
    recorder: Rc<Recorder>,
}

impl ContractLayer {
    pub fn new(config: LayerConfig) -> Self {
        Self {
            recorder: Rc::new(config.metrics.recorder()),
            config: Rc::new(config),
        }
    }
}

impl<S, B> Transform<S, ServiceRequest> for ContractLayer
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = ContractService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(ContractService {
            service: Rc::new(service),
            config: self.config.clone(),
            recorder: self.recorder.clone(),
        }))
    }
}

pub struct ContractService<S> {
    service: Rc<S>,
    config: Rc<LayerConfig>,
    recorder: Rc<Recorder>,
}

fn add_cors(
    headers: &mut actix_web::http::header::HeaderMap,
    origin: &HeaderValue,
    credentials: bool,
) {
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    headers.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(CORS_METHODS),
    );
    headers.insert(
        ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(CORS_HEADERS),
    );
    if credentials {
        headers.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
}

impl<S, B> Service<ServiceRequest> for ContractService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let config = self.config.clone();
        let start = Instant::now();
        let route = route_label(&req, &FIXED_PATHS);
        let no_store = no_store(req.path());
        let sent_token = req.headers().contains_key(AUTHORIZATION);
        let cors_origin = match req.headers().get(ORIGIN) {
            // Echoed as the browser sent it.
            Some(o) if !config.cors_origins.is_empty() => o
                .to_str()
                .is_ok_and(|o| config.allowed_origin(o))
                .then(|| o.clone()),
            _ => None,
        };

        // Checks that answer before any handler runs.
        let early: Option<HttpResponse> = if req
            .headers()
            .get(CONTENT_ENCODING)
            .is_some_and(|e| !e.as_bytes().eq_ignore_ascii_case(b"identity"))
        {
            Some(ApiError::ContentEncoding.error_response())
        } else if req.method() == Method::OPTIONS
            && cors_origin.is_some()
            && req.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD)
        {
            Some(
                HttpResponse::NoContent()
                    .insert_header((ACCESS_CONTROL_MAX_AGE, CORS_MAX_AGE))
                    .finish(),
            )
        } else if config.cross_site(&req) {
            Some(ApiError::CrossSite.error_response())
        } else {
            None
        };

        let out = Outgoing {
            config,
            recorder: self.recorder.clone(),
            start,
            route,
            no_store,
            sent_token,
            cors_origin,
        };
        if let Some(answer) = early {
            let res = req.into_response(answer).map_into_right_body();
            return Box::pin(async move { Ok(out.finish(res)) });
        }
        let fut = self.service.call(req);
        Box::pin(async move { Ok(out.finish(fut.await?.map_into_left_body())) })
    }
}

/// What the layer learnt from the request, for the way out.
struct Outgoing {
    config: Rc<LayerConfig>,
    recorder: Rc<Recorder>,
    start: Instant,
    route: Cow<'static, str>,
    no_store: bool,
    sent_token: bool,
    cors_origin: Option<HeaderValue>,
}

impl Outgoing {
    fn finish<B>(self, mut res: ServiceResponse<B>) -> ServiceResponse<B> {
        let config = &self.config;
        let status = res.status();
        let headers = res.headers_mut();
        if self.no_store && !headers.contains_key(CACHE_CONTROL) {
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        if !config.cors_origins.is_empty() {
            headers.append(VARY, HeaderValue::from_static("Origin"));
            if let Some(origin) = &self.cors_origin {
                add_cors(headers, origin, config.cors_credentials);
            }
        }
        if let Some(realm) = config.bearer_realm {
            www_authenticate(&mut res, realm, self.sent_token);
        }
        self.recorder
            .observe(self.route, status, self.start.elapsed());
        res
    }
}

/// RFC 6750 section 3: every 401 names the scheme and realm, and says `invalid_token` when a
/// token was sent; a 403 for a missing scope says `insufficient_scope`.
fn www_authenticate<B>(res: &mut ServiceResponse<B>, realm: &str, sent_token: bool) {
    let code = res.response().extensions().get::<ErrorCode>().copied();
    let value = match res.status() {
        StatusCode::UNAUTHORIZED if sent_token || code == Some(ErrorCode("invalid_token")) => {
            format!(r#"Bearer realm="{realm}", error="invalid_token""#)
        }
        StatusCode::UNAUTHORIZED => format!(r#"Bearer realm="{realm}""#),
        StatusCode::FORBIDDEN if code == Some(ErrorCode("insufficient_scope")) => {
            format!(r#"Bearer realm="{realm}", error="insufficient_scope""#)
        }
        _ => return,
    };
    res.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer")),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_store_covers_credentials_and_personal_data_only() {
        for p in [
            "/auth/login",
            "/auth/refresh",
            "/api/me",
            "/api/admin/users/x/roles",
        ] {
            assert!(no_store(p), "{p}");
        }
        for p in ["/api/public", "/healthz", "/.well-known/jwks.json"] {
            assert!(!no_store(p), "{p}");
        }
    }
}
