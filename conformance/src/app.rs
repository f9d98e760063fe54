//! `TestApp`: one server on port 0 over a private Redis, with one method per route, that
//! carries whichever credential the server hands out (cookie or bearer tokens).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_core::config::RedisTarget;
use auth_core::http::Application;
use reqwest::header::{HeaderMap, AUTHORIZATION, COOKIE, SET_COOKIE};
use reqwest::Method;
use serde_json::{json, Value};

use crate::redis_process::RedisProcess;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Session,
    Token,
}

/// Knobs the tests turn; each server maps them onto its own settings.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub idle_timeout_s: Option<u64>,
    pub absolute_timeout_s: Option<u64>,
    pub access_ttl_s: Option<u64>,
    pub access_denylist: bool,
    pub memory_store: bool,
    pub cookie_secure: bool,
    pub eddsa: bool,
    pub login_max_failures: Option<u64>,
    pub bootstrap_admin: Option<(String, String)>,
    /// `REFRESH_REUSE_INTERVAL` in seconds (default 10).
    pub reuse_interval_s: Option<u64>,
    /// `TRUSTED_PROXIES` entries.
    pub trusted_proxies: Vec<String>,
    /// `CORS_ALLOWED_ORIGINS` entries.
    pub cors_origins: Vec<String>,
    /// `SIGNUP_MAX` (tests default to a high one: they sign many users up from one address).
    pub signup_max: Option<u64>,
}

/// Which store a test's server gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// One `redis-server`.
    Single,
    /// A 3-primary Redis Cluster (`REDIS_CLUSTER_NODES`).
    Cluster,
}

/// What a server crate implements to run the suite against itself.
pub trait Server {
    const KIND: Kind;
    /// The store `TestApp::spawn` starts; `OnCluster<S>` runs the same server on a cluster.
    const STORE: Store = Store::Single;
    fn build(
        redis: RedisTarget,
        options: Options,
    ) -> impl Future<Output = anyhow::Result<Application>>;
}

/// `S` with its store on a Redis Cluster: `suite!(conformance::OnCluster<MyServer>)` runs
/// the whole contract again there.
pub struct OnCluster<S>(std::marker::PhantomData<S>);

impl<S: Server> Server for OnCluster<S> {
    const KIND: Kind = S::KIND;
    const STORE: Store = Store::Cluster;
    fn build(
        redis: RedisTarget,
        options: Options,
    ) -> impl Future<Output = anyhow::Result<Application>> {
        S::build(redis, options)
    }
}

/// What a client holds after login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// `sid=<value>`, as sent in `Cookie`.
    Cookie(String),
    Tokens {
        access: String,
        refresh: String,
    },
}

/// An answer, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text))
    }

    /// Asserts the contract's error shape and code.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "status; body: {}", self.text);
        let body = self.json();
        assert_eq!(body["error"], code, "error code; body: {}", self.text);
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "message; body: {}",
            self.text
        );
        assert_eq!(
            body.as_object().map(|o| o.len()),
            Some(2),
            "only error and message: {}",
            self.text
        );
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A `429`'s `Retry-After`, in seconds (panics without one: the contract requires it).
    pub fn retry_after_s(&self) -> u64 {
        self.header("retry-after")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("429 carries Retry-After in seconds: {:?}", self.headers))
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }
}

pub struct TestApp {
    pub kind: Kind,
    pub address: String,
    pub port: u16,
    pub redis: Arc<RedisProcess>,
    pub client: reqwest::Client,
    credential: Mutex<Option<Credential>>,
    handle: actix_web::dev::ServerHandle,
}

/// Every test request gives up after this long: a hang fails the test instead of stalling it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("a plain HTTP client builds")
}

impl TestApp {
    pub async fn spawn<S: Server>(options: Options) -> Self {
        let redis = Arc::new(match S::STORE {
            Store::Single => RedisProcess::start().await,
            Store::Cluster => RedisProcess::start_cluster().await,
        });
        Self::spawn_on::<S>(redis, options).await
    }

    /// A server over an existing Redis (the replica tests give several servers one Redis).
    pub async fn spawn_on<S: Server>(redis: Arc<RedisProcess>, options: Options) -> Self {
        let app = S::build(redis.target(), options)
            .await
            .expect("server builds");
        let port = app.port();
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());
        Self {
            kind: S::KIND,
            address: format!("http://127.0.0.1:{port}"),
            port,
            redis,
            client: client(),
            credential: Mutex::new(None),
            handle,
        }
    }

    pub fn credential(&self) -> Option<Credential> {
        self.credential.lock().unwrap().clone()
    }

    pub fn set_credential(&self, c: Option<Credential>) {
        *self.credential.lock().unwrap() = c;
    }

    pub async fn request(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.address));
        match self.credential() {
            Some(Credential::Cookie(c)) => req = req.header(COOKIE, c),
            Some(Credential::Tokens { access, .. }) => {
                req = req.header(AUTHORIZATION, format!("Bearer {access}"))
            }
            None => {}
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let reply = Self::read(req).await;
        self.remember(&reply);
        reply
    }

    /// Sends a prepared request as is (no credential added).
    pub async fn read(req: reqwest::RequestBuilder) -> Reply {
        let res = req.send().await.expect("the server answers");
        Reply {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            text: res.text().await.expect("the body is readable"),
        }
    }

    /// Keeps what the server handed out, as a browser or an app would.
    fn remember(&self, reply: &Reply) {
        match self.kind {
            Kind::Session => {
                if let Some(c) = session_cookie(reply) {
                    self.set_credential(c);
                }
            }
            Kind::Token => {
                let body = serde_json::from_str::<Value>(&reply.text).unwrap_or_default();
                if reply.status == 200 {
                    if let (Some(a), Some(r)) = (
                        body["access_token"].as_str(),
                        body["refresh_token"].as_str(),
                    ) {
                        self.set_credential(Some(Credential::Tokens {
                            access: a.into(),
                            refresh: r.into(),
                        }));
                    }
                }
            }
        }
    }

    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        Self::read(
            self.client
                .post(format!("{}{path}", self.address))
                .header("Content-Type", content_type)
                .body(body),
        )
        .await
    }

    pub async fn signup(&self, username: &str, password: &str) -> Reply {
        self.request(
            Method::POST,
            "/auth/signup",
            Some(json!({"username": username, "password": password})),
        )
        .await
    }

    pub async fn login(&self, username: &str, password: &str) -> Reply {
        self.request(
            Method::POST,
            "/auth/login",
            Some(json!({"username": username, "password": password})),
        )
        .await
    }

    /// Login asking for `scope` (`read`, `admin`, `read admin`).
    pub async fn login_with_scope(&self, username: &str, password: &str, scope: &str) -> Reply {
        self.request(
            Method::POST,
            "/auth/login",
            Some(json!({"username": username, "password": password, "scope": scope})),
        )
        .await
    }

    /// `PUT /api/admin/users/{username}/roles`.
    pub async fn set_roles(&self, username: &str, roles: &[&str]) -> Reply {
        self.request(
            Method::PUT,
            &format!("/api/admin/users/{username}/roles"),
            Some(json!({ "roles": roles })),
        )
        .await
    }

    pub async fn logout_all(&self) -> Reply {
        self.request(Method::POST, "/auth/logout-all", None).await
    }

    /// The credential's request header (`Cookie` or `Authorization`), for hand-made requests.
    pub fn credential_header(&self) -> Option<(&'static str, String)> {
        match self.credential()? {
            Credential::Cookie(c) => Some(("Cookie", c)),
            Credential::Tokens { access, .. } => {
                Some(("Authorization", format!("Bearer {access}")))
            }
        }
    }

    /// A request builder for `path` carrying the credential held.
    pub fn builder(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.address));
        if let Some((name, value)) = self.credential_header() {
            req = req.header(name, value);
        }
        req
    }

    /// Signs a fresh user up and logs them in; returns the username.
    pub async fn signed_in_user(&self) -> String {
        let username = random_username();
        assert_eq!(self.signup(&username, PASSWORD).await.status, 201);
        assert_eq!(self.login(&username, PASSWORD).await.status, 200);
        username
    }

    pub async fn me(&self) -> Reply {
        self.request(Method::GET, "/api/me", None).await
    }

    pub async fn items(&self) -> Reply {
        self.request(Method::GET, "/api/items", None).await
    }

    pub async fn public(&self) -> Reply {
        self.request(Method::GET, "/api/public", None).await
    }

    pub async fn admin_stats(&self) -> Reply {
        self.request(Method::GET, "/api/admin/stats", None).await
    }

    /// Session: no body. Token: the refresh token held.
    pub async fn refresh(&self) -> Reply {
        let body = self.refresh_body();
        self.request(Method::POST, "/auth/refresh", body).await
    }

    pub async fn logout(&self) -> Reply {
        let body = self.refresh_body();
        self.request(Method::POST, "/auth/logout", body).await
    }

    fn refresh_body(&self) -> Option<Value> {
        match (self.kind, self.credential()) {
            (Kind::Token, Some(Credential::Tokens { refresh, .. })) => {
                Some(json!({"refresh_token": refresh}))
            }
            (Kind::Token, _) => Some(json!({"refresh_token": "none"})),
            (Kind::Session, _) => None,
        }
    }

    pub async fn healthz(&self) -> Reply {
        self.request(Method::GET, "/healthz", None).await
    }

    pub async fn readyz(&self) -> Reply {
        self.request(Method::GET, "/readyz", None).await
    }

    pub async fn metrics(&self) -> Reply {
        self.request(Method::GET, "/metrics", None).await
    }

    pub async fn jwks(&self) -> Reply {
        self.request(Method::GET, "/.well-known/jwks.json", None)
            .await
    }

    /// `redis_commands_total` from `/metrics`.
    pub async fn redis_commands(&self) -> u64 {
        let text = self.metrics().await.text;
        text.lines()
            .find(|l| l.starts_with("redis_commands_total"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .expect("/metrics has redis_commands_total")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        // Best effort: the runtime may already be going away at the end of a test.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { handle.stop(false).await });
        }
    }
}

/// The session cookie a reply sets: `Some(Some(c))` handed out, `Some(None)` cleared,
/// `None` untouched. Either cookie name (`sid`, `__Host-sid`).
pub fn session_cookie(reply: &Reply) -> Option<Option<Credential>> {
    let mut out = None;
    for c in reply.set_cookies() {
        let pair = c.split(';').next().unwrap_or_default().trim().to_owned();
        let Some((name, value)) = pair.split_once('=') else {
            continue;
        };
        if name == "sid" || name == "__Host-sid" {
            let cleared = c.contains("Max-Age=0") || value.is_empty();
            out = Some((!cleared).then_some(Credential::Cookie(pair)));
        }
    }
    out
}

pub const PASSWORD: &str = "correct-horse-battery";

pub fn random_username() -> String {
    format!("u{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}
