//! The goose scenarios. Goose schedules the simulated users and their transactions; each
//! transaction is small and named, and sends its requests with the user's own HTTP client
//! (one keep-alive connection pool per user, like separate browsers). What a run needs
//! (where to send, which model, the recorder) is captured in the transactions' closures.
//!
//! The load generator must cost less per request than what it measures, so the request
//! path is lean: goose's own request metrics are off (nothing reads them: the [`Recorder`]
//! keeps the run's histograms); requests go out on a plain hyper HTTP/1.1 client (reqwest
//! re-parses every URL and runs redirect and decompression layers, about a third of the
//! load generator's CPU per request); URIs are parsed once per run, credentials are kept as
//! ready-made header values, and answers are read as bytes (every body is read whole, so
//! connections are reused, not measured). Each user owns one HTTP/1.1 connection and drives
//! it in its own task ([`Conn`]), as oha does: a pooled client hands every request to a
//! separate connection task through a channel, and that hop (a wake-up on another thread
//! once the runtime has several) cost a third more CPU per request with 2 threads.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use auth_core::contract::TokenResponse;
use bytes::Bytes;
use goose::prelude::*;
use http::header::{
    HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, COOKIE, HOST, SET_COOKIE,
};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::pacing::Schedule;
use super::recorder::Recorder;
use crate::model::{Scenario as Kind, ServerKind};

/// The header sticky routing hashes on, standing in for a real client's address.
const CLIENT_ID: HeaderName = HeaderName::from_static("x-client-id");

/// The routes the scenarios use; each name is also the route template the recorder files
/// requests under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Signup,
    Login,
    Refresh,
    Me,
    Items,
    Public,
}

impl Route {
    const ALL: [Route; 6] = [
        Route::Signup,
        Route::Login,
        Route::Refresh,
        Route::Me,
        Route::Items,
        Route::Public,
    ];

    fn path(self) -> &'static str {
        match self {
            Route::Signup => "/auth/signup",
            Route::Login => "/auth/login",
            Route::Refresh => "/auth/refresh",
            Route::Me => "/api/me",
            Route::Items => "/api/items",
            Route::Public => "/api/public",
        }
    }

    fn method(self) -> Method {
        match self {
            Route::Signup | Route::Login | Route::Refresh => Method::POST,
            Route::Me | Route::Items | Route::Public => Method::GET,
        }
    }
}

/// When a user of the `refresh` scenario refreshes its credential.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RefreshPolicy {
    /// After every K reads.
    Every(u32),
    /// When 80% of the access token's lifetime has passed, as a client that watches
    /// `expires_in` does (experiment `access-token-lifetime`).
    BeforeExpiry,
}

/// What every transaction of one run shares.
pub struct RunContext {
    server: ServerKind,
    /// Simulated user i is `lt<prefix><i>` in every run of one `loadtest` process: signed up
    /// by the first run that needs it, only logged in by the later ones (a password hash
    /// saved per user and run).
    user_prefix: String,
    refresh: RefreshPolicy,
    request_timeout: Duration,
    /// `Route::ALL[i]`'s path (the origin form a request on an open connection carries).
    uris: Vec<Uri>,
    /// Where connections go (`host:port`), and the `Host` header they send.
    authority: String,
    host: HeaderValue,
    recorder: Arc<Recorder>,
    /// The open model: when each request should start. `None`: a closed loop.
    schedule: Option<Arc<Schedule>>,
}

impl RunContext {
    pub fn new(
        target: &str,
        server: ServerKind,
        user_prefix: &str,
        refresh: RefreshPolicy,
        request_timeout: Duration,
        recorder: Arc<Recorder>,
        schedule: Option<Arc<Schedule>>,
    ) -> anyhow::Result<Arc<Self>> {
        let not_base = |why: String| anyhow::anyhow!("`{target}` is not a base URL: {why}");
        let base = target
            .trim_end_matches('/')
            .parse::<Uri>()
            .map_err(|e| not_base(e.to_string()))?;
        if base.scheme_str() != Some("http") {
            return Err(not_base("the load generator speaks plain http://".into()));
        }
        let Some(authority) = base.authority() else {
            return Err(not_base("it names no host".into()));
        };
        let host =
            HeaderValue::from_str(authority.as_str()).map_err(|e| not_base(e.to_string()))?;
        let authority = format!(
            "{}:{}",
            authority.host(),
            authority.port_u16().unwrap_or(80)
        );
        let prefix = base.path().trim_end_matches('/');
        let uris = Route::ALL
            .iter()
            .map(|r| format!("{prefix}{}", r.path()).parse::<Uri>())
            .collect::<Result<_, _>>()
            .map_err(|e| not_base(e.to_string()))?;
        Ok(Arc::new(Self {
            server,
            user_prefix: user_prefix.to_owned(),
            refresh: match refresh {
                RefreshPolicy::Every(k) => RefreshPolicy::Every(k.max(1)),
                p => p,
            },
            request_timeout,
            uris,
            authority,
            host,
            recorder,
            schedule,
        }))
    }

    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    pub fn schedule(&self) -> Option<&Schedule> {
        self.schedule.as_deref()
    }

    /// On every request's path: an index, no search (`Route::ALL` lists the routes in
    /// declaration order, which the test below checks).
    fn uri(&self, route: Route) -> Uri {
        self.uris[route as usize].clone()
    }
}

/// Per-user state kept in goose's session data.
#[derive(Clone)]
struct UserState {
    /// The recorder's number for this user.
    id: usize,
    /// The user's connection, open between requests (shared only with goose's clones of
    /// the state, which never send).
    conn: Arc<std::sync::Mutex<Option<Conn>>>,
    client_id: HeaderValue,
    username: String,
    password: String,
    /// `Authorization: Bearer ...` (tokens) or `Cookie: sid=...` (sessions), once logged in.
    credential: Option<(HeaderName, HeaderValue)>,
    /// Token server only.
    refresh_token: Option<String>,
    /// When the access token should be refreshed (`RefreshPolicy::BeforeExpiry`).
    refresh_at: Option<Instant>,
    reads: u32,
    /// Open model: the slot the next request was scheduled for.
    slot: Option<Instant>,
}

/// How often a user asks again whether the schedule has started (it starts once every
/// user is set up).
const SCHEDULE_POLL: Duration = Duration::from_millis(5);

/// How often a user's set-up is tried, and the pause between tries (set-up happens in
/// the warm-up, which is not measured).
const SETUP_TRIES: u32 = 4;
const SETUP_RETRY_AFTER: Duration = Duration::from_millis(250);

/// One step a transaction takes.
#[derive(Debug, Clone, Copy)]
enum Step {
    SignUp,
    SignUpAndLogIn,
    MarkReady,
    LogIn,
    Get(Route),
    ReadOrRefresh,
}

pub fn build(kind: Kind, ctx: &Arc<RunContext>) -> Scenario {
    let t = |step: Step, name: &str| transaction(ctx, step).set_name(name);
    let s = Scenario::new(kind.name());
    match kind {
        Kind::Read => s
            .register_transaction(t(Step::SignUpAndLogIn, "setup").set_on_start())
            .register_transaction(t(Step::Get(Route::Me), "me"))
            .register_transaction(t(Step::Get(Route::Items), "items")),
        Kind::Login => s
            .register_transaction(t(Step::SignUp, "setup").set_on_start())
            .register_transaction(t(Step::LogIn, "login")),
        Kind::Refresh => s
            .register_transaction(t(Step::SignUpAndLogIn, "setup").set_on_start())
            .register_transaction(t(Step::ReadOrRefresh, "read_or_refresh")),
        Kind::Public => s
            .register_transaction(t(Step::MarkReady, "setup").set_on_start())
            .register_transaction(t(Step::Get(Route::Public), "public")),
    }
}

fn transaction(ctx: &Arc<RunContext>, step: Step) -> Transaction {
    let ctx = Arc::clone(ctx);
    Transaction::new(Arc::new(move |user| {
        let ctx = Arc::clone(&ctx);
        Box::pin(async move {
            step.run(&ctx, user).await;
            // Failures are the recorder's to count; goose itself has nothing to report.
            Ok(())
        })
    }))
}

impl Step {
    /// The measured steps: each sends one request, on the schedule when there is one.
    fn paced(self) -> bool {
        matches!(self, Step::LogIn | Step::Get(_) | Step::ReadOrRefresh)
    }

    async fn run(self, ctx: &RunContext, user: &mut GooseUser) {
        if let (true, Some(schedule)) = (self.paced(), &ctx.schedule) {
            let Some(slot) = schedule.next_slot() else {
                tokio::time::sleep(SCHEDULE_POLL).await;
                return;
            };
            tokio::time::sleep_until(slot.into()).await;
            if let Some(state) = user.get_session_data_mut::<UserState>() {
                state.slot = Some(slot);
            }
        }
        match self {
            // A set-up that fails is tried again, as a person would: the balancer answers
            // 502 to a POST it had sent to a replica that has just stopped (nginx does not
            // resend a POST), and one such answer must not cost the run a user. A user
            // still without an account after every try stays unready, and the orchestrator
            // reports it rather than measuring without it.
            Step::SignUp => {
                for _ in 0..SETUP_TRIES {
                    if sign_up(ctx, user).await {
                        ctx.recorder.user_ready();
                        return;
                    }
                    tokio::time::sleep(SETUP_RETRY_AFTER).await;
                }
            }
            Step::SignUpAndLogIn => {
                for _ in 0..SETUP_TRIES {
                    if sign_up(ctx, user).await && log_in(ctx, user).await {
                        ctx.recorder.user_ready();
                        return;
                    }
                    tokio::time::sleep(SETUP_RETRY_AFTER).await;
                }
            }
            Step::MarkReady => {
                user.set_session_data(new_user(ctx));
                ctx.recorder.user_ready();
            }
            Step::LogIn => {
                log_in(ctx, user).await;
            }
            Step::Get(route) => {
                send(ctx, user, route, None).await;
            }
            Step::ReadOrRefresh => read_or_refresh(ctx, user).await,
        }
    }
}

fn new_user(ctx: &RunContext) -> UserState {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let n = ctx.recorder.next_user();
    UserState {
        id: n,
        conn: Arc::default(),
        username: format!("lt{}{n}", ctx.user_prefix),
        client_id: HeaderValue::from_str(&id).unwrap_or(HeaderValue::from_static("lt")),
        password: "load-test-password".into(),
        credential: None,
        refresh_token: None,
        refresh_at: None,
        reads: 0,
        slot: None,
    }
}

fn credentials_body(s: &UserState) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"username": s.username, "password": s.password}))
        .unwrap_or_default()
}

/// One request: sent with the user's credential, body read whole, recorded by route.
/// Returns the status (0 when no answer came) and the body.
async fn send(
    ctx: &RunContext,
    user: &mut GooseUser,
    route: Route,
    body: Option<Vec<u8>>,
) -> (u16, Bytes) {
    let slot = user
        .get_session_data_mut::<UserState>()
        .and_then(|s| s.slot.take());
    let Some(state) = user.get_session_data::<UserState>() else {
        return (0, Bytes::new());
    };
    let mut request = Request::builder()
        .method(route.method())
        .uri(ctx.uri(route))
        .header(HOST, ctx.host.clone())
        .header(CLIENT_ID, state.client_id.clone());
    if let Some((name, value)) = &state.credential {
        request = request.header(name, value.clone());
    }
    let body = match body {
        Some(body) => {
            request = request.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Full::new(Bytes::from(body))
        }
        None => Full::default(),
    };
    let Ok(request) = request.body(body) else {
        return (0, Bytes::new());
    };
    let open = Arc::clone(&state.conn);
    let start = Instant::now();
    // No answer within the time limit counts as status 0, like a refused connection.
    let answer = tokio::time::timeout(ctx.request_timeout, exchange(ctx, &open, request)).await;
    let (status, body) = match answer {
        Ok(Some((status, cookie, body))) => {
            if let (Some(cookie), Some(state)) = (cookie, user.get_session_data_mut::<UserState>())
            {
                state.credential = Some((COOKIE, cookie));
            }
            (status, body)
        }
        _ => (0, Bytes::new()),
    };
    let late = slot.map(|slot| start.saturating_duration_since(slot));
    ctx.recorder
        .record(route.path(), status, start.elapsed(), late);
    // A credential refused on a route that needs one: the user would have to log in again.
    if status == 401 && matches!(route, Route::Me | Route::Items | Route::Refresh) {
        if let Some(s) = user.get_session_data::<UserState>() {
            ctx.recorder.logged_out(s.id);
        }
    }
    (status, body)
}

/// A user's HTTP/1.1 connection: the handle requests go through, and the connection itself,
/// polled by the user's task while a request is out (between requests nothing is due on it).
struct Conn {
    sender: SendRequest<Full<Bytes>>,
    driver: Pin<Box<Connection<TokioIo<TcpStream>, Full<Bytes>>>>,
}

impl Conn {
    async fn open(ctx: &RunContext) -> Option<Conn> {
        let stream = TcpStream::connect(ctx.authority.as_str()).await.ok()?;
        // One write per request: nothing for Nagle's algorithm to gather.
        stream.set_nodelay(true).ok()?;
        let (sender, driver) = http1::handshake(TokioIo::new(stream)).await.ok()?;
        Some(Conn {
            sender,
            driver: Box::pin(driver),
        })
    }

    /// Whether the peer closed the connection while it was idle: one poll of the connection
    /// reads the end of stream that is already there.
    async fn closed_while_idle(&mut self) -> bool {
        if self.sender.is_closed() {
            return true;
        }
        let driver = &mut self.driver;
        std::future::poll_fn(|cx| Poll::Ready(driver.as_mut().poll(cx).is_ready())).await
    }

    /// One request and its whole answer. `Err(Some(request))`: the request was never
    /// written (the connection had closed), so it can go out on another one.
    async fn send(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> Result<Answer, Option<Request<Full<Bytes>>>> {
        let Conn { sender, driver } = self;
        let request_and_answer = async {
            let response = sender
                .try_send_request(request)
                .await
                .map_err(|mut e| e.take_message())?;
            let status = response.status().as_u16();
            // The session server sets the cookie at login and refresh.
            let cookie = response
                .headers()
                .get(SET_COOKIE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(';').next())
                .and_then(|v| HeaderValue::from_str(v).ok());
            let body = response.into_body().collect().await.map_err(|_| None)?;
            Ok((status, cookie, body.to_bytes()))
        };
        tokio::select! {
            biased;
            answer = request_and_answer => answer,
            // The connection ended (closed by the peer, or an error) before the answer did.
            _ = driver.as_mut() => Err(None),
        }
    }
}

type Answer = (u16, Option<HeaderValue>, Bytes);

/// One request and its whole answer on the user's connection: opened first when there is
/// none or the peer closed it, and opened again once when a kept connection turns out to
/// have closed before the request went out (as a pooled client retries). The connection is
/// kept for the next request only when this one completed: an abandoned exchange (timed
/// out) leaves it mid-answer.
async fn exchange(
    ctx: &RunContext,
    open: &std::sync::Mutex<Option<Conn>>,
    mut request: Request<Full<Bytes>>,
) -> Option<Answer> {
    let mut kept = open.lock().ok()?.take();
    if let Some(c) = &mut kept {
        if c.closed_while_idle().await {
            kept = None;
        }
    }
    let mut reused = kept.is_some();
    let mut conn = match kept {
        Some(c) => c,
        None => Conn::open(ctx).await?,
    };
    loop {
        match conn.send(request).await {
            Ok(answer) => {
                if let Ok(mut slot) = open.lock() {
                    *slot = Some(conn);
                }
                return Some(answer);
            }
            Err(Some(unsent)) if reused => {
                request = unsent;
                reused = false;
                conn = Conn::open(ctx).await?;
            }
            Err(_) => return None,
        }
    }
}

async fn sign_up(ctx: &RunContext, user: &mut GooseUser) -> bool {
    let state = new_user(ctx);
    let body = credentials_body(&state);
    user.set_session_data(state);
    // 409: an earlier run of this process signed the user up already.
    let status = send(ctx, user, Route::Signup, Some(body)).await.0;
    note_throttled(ctx, status);
    matches!(status, 201 | 409)
}

/// A set-up request answered 429: said when the warm-up gives up (`measure::run_window`).
fn note_throttled(ctx: &RunContext, status: u16) {
    if status == 429 {
        ctx.recorder
            .setup_throttled
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Whether the login succeeded.
async fn log_in(ctx: &RunContext, user: &mut GooseUser) -> bool {
    let Some(state) = user.get_session_data_mut::<UserState>() else {
        return false;
    };
    let body = credentials_body(state);
    // A login never carries the previous credential.
    state.credential = None;
    let (status, text) = send(ctx, user, Route::Login, Some(body)).await;
    note_throttled(ctx, status);
    if status == 200 {
        remember_tokens(ctx, user, &text);
    }
    status == 200
}

/// Token server: keep the new pair. Session server: `send` already kept the cookie.
fn remember_tokens(ctx: &RunContext, user: &mut GooseUser, body: &[u8]) {
    if ctx.server != ServerKind::Token {
        return;
    }
    let (Ok(t), Some(s)) = (
        serde_json::from_slice::<TokenResponse>(body),
        user.get_session_data_mut::<UserState>(),
    ) else {
        return;
    };
    if let Ok(bearer) = HeaderValue::from_str(&format!("Bearer {}", t.access_token)) {
        s.credential = Some((AUTHORIZATION, bearer));
    }
    s.refresh_token = Some(t.refresh_token);
    s.refresh_at = Some(Instant::now() + Duration::from_secs(t.expires_in).mul_f64(0.8));
}

async fn read_or_refresh(ctx: &RunContext, user: &mut GooseUser) {
    let Some(state) = user.get_session_data_mut::<UserState>() else {
        return;
    };
    state.reads += 1;
    let due = match ctx.refresh {
        RefreshPolicy::Every(k) => state.reads % k == 0,
        RefreshPolicy::BeforeExpiry => state.refresh_at.is_some_and(|t| Instant::now() >= t),
    };
    if !due {
        send(ctx, user, Route::Me, None).await;
        return;
    }
    let body = match ctx.server {
        ServerKind::Token => Some(
            serde_json::to_vec(
                &serde_json::json!({"refresh_token": state.refresh_token.as_deref().unwrap_or_default()}),
            )
            .unwrap_or_default(),
        ),
        ServerKind::Session | ServerKind::Public => None,
    };
    let (status, text) = send(ctx, user, Route::Refresh, body).await;
    if status == 200 {
        remember_tokens(ctx, user, &text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_route_finds_its_own_uri() {
        for (i, route) in Route::ALL.iter().enumerate() {
            assert_eq!(*route as usize, i, "{route:?}");
        }
        let recorder = Arc::new(Recorder::default());
        let ctx = RunContext::new(
            "http://127.0.0.1:8080/",
            ServerKind::Token,
            "p",
            RefreshPolicy::Every(10),
            Duration::from_secs(1),
            recorder,
            None,
        )
        .unwrap();
        for route in Route::ALL {
            assert_eq!(ctx.uri(route).path(), route.path());
        }
        // Origin form on the user's own connection, which goes to the authority.
        assert_eq!(ctx.uri(Route::Me).to_string(), "/api/me");
        assert_eq!(ctx.authority, "127.0.0.1:8080");
        assert_eq!(ctx.host, "127.0.0.1:8080");
        let behind = |base: &str| {
            RunContext::new(
                base,
                ServerKind::Token,
                "p",
                RefreshPolicy::Every(10),
                Duration::from_secs(1),
                Arc::new(Recorder::default()),
                None,
            )
        };
        let prefixed = behind("http://lb/auth-demo/").unwrap();
        assert_eq!(prefixed.uri(Route::Me).to_string(), "/auth-demo/api/me");
        assert_eq!(prefixed.authority, "lb:80");
        let refused = behind("https://127.0.0.1:8443").err().unwrap().to_string();
        assert!(refused.contains("plain http://"), "{refused}");
        assert!(RunContext::new(
            "not a url",
            ServerKind::Token,
            "p",
            RefreshPolicy::Every(10),
            Duration::from_secs(1),
            Arc::new(Recorder::default()),
            None,
        )
        .is_err());
    }
}
