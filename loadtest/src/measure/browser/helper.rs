//! Two small HTTP services on loopback, behind the TLS nginx:
//! - the attacker's **collector** (`collect.attacker.test`): keeps whatever an injected
//!   script sends it, with the time it arrived;
//! - the app's **token handler** (`app.example.test/bff/`): what a single-page app uses to
//!   keep its refresh token out of JavaScript. It logs in and refreshes at the token server
//!   for the page, hands the page only the access token, and keeps the refresh token in an
//!   `HttpOnly; Secure; SameSite=Strict` cookie of the app's own origin.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use super::lock;

/// The token handler's cookie (host-only, `Path=/`, `Secure`: a `__Host-` cookie).
pub const REFRESH_COOKIE: &str = "__Host-rt";

/// What the collector received.
#[derive(Debug, Clone)]
pub struct Collected {
    pub at: Instant,
    /// The case the script was injected for (from the collector URL's query).
    pub case: String,
    pub what: String,
    pub value: String,
}

struct State {
    /// The token server (one replica, plain HTTP on loopback).
    token_api: String,
    http: reqwest::Client,
    collected: Mutex<Vec<Collected>>,
}

pub struct Helper {
    pub port: u16,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Helper {
    pub async fn start(token_api: String) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(State {
            token_api,
            http: crate::measure::probes::client()?,
            collected: Mutex::new(Vec::new()),
        });
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, std::convert::Infallible>(handle(&state, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { port, state, task })
    }

    /// Everything collected so far.
    pub fn collected(&self) -> Vec<Collected> {
        lock(&self.state.collected).clone()
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let case = req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix("case="))
        .unwrap_or_default()
        .to_string();
    let method = req.method().clone();
    let cookie = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| kv.trim().strip_prefix(&format!("{REFRESH_COOKIE}=")))
        .map(str::to_owned);
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return answer(StatusCode::BAD_REQUEST, json!({"error": "body"})),
    };
    match (method, path.as_str()) {
        (Method::POST, "/collect") => {
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            lock(&state.collected).push(Collected {
                at: Instant::now(),
                case,
                what: text("what"),
                value: text("value"),
            });
            let mut r = answer(StatusCode::NO_CONTENT, Value::Null);
            *r.body_mut() = Full::new(Bytes::new());
            r
        }
        (Method::POST, "/bff/login") => {
            let creds: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            exchange(state, "/auth/login", &creds).await
        }
        (Method::POST, "/bff/refresh") => match cookie {
            Some(rt) => exchange(state, "/auth/refresh", &json!({"refresh_token": rt})).await,
            None => answer(
                StatusCode::UNAUTHORIZED,
                json!({"error": "unauthorized", "message": "no refresh cookie"}),
            ),
        },
        _ => answer(StatusCode::NOT_FOUND, json!({"error": "not_found"})),
    }
}

/// Login or refresh at the token server; the page gets the access token, the cookie jar
/// the refresh token.
async fn exchange(state: &State, route: &str, body: &Value) -> Response<Full<Bytes>> {
    let sent = state
        .http
        .post(format!("{}{route}", state.token_api))
        .json(body)
        .send()
        .await;
    let Ok(r) = sent else {
        return answer(StatusCode::BAD_GATEWAY, json!({"error": "unavailable"}));
    };
    let status = StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let v: Value = r.json().await.unwrap_or(Value::Null);
    if status != StatusCode::OK {
        return answer(status, v);
    }
    let mut out = answer(
        StatusCode::OK,
        json!({"access_token": v["access_token"], "expires_in": v["expires_in"]}),
    );
    let cookie = format!(
        "{REFRESH_COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Strict",
        v["refresh_token"].as_str().unwrap_or_default()
    );
    if let Ok(c) = header::HeaderValue::from_str(&cookie) {
        out.headers_mut().insert(header::SET_COOKIE, c);
    }
    out
}
