//! The goose scenarios. Each transaction is small and named, reads the whole response body
//! (so connections are reused rather than measured), names its requests by route template,
//! and counts any non-2xx as an error. The access token lives in goose's user session
//! data; the session cookie lives in the user's own cookie jar.

use std::sync::atomic::Ordering;
use std::sync::RwLock;
use std::time::Instant;

use auth_core::contract::TokenResponse;
use goose::goose::{GooseMethod, GooseRequest};
use goose::prelude::*;
use serde_json::json;

use crate::cli::{Scenario as Kind, ServerKind};
use crate::recorder::RECORDER;

/// What the transactions need to know about the run in progress.
#[derive(Debug, Clone, Copy)]
pub struct RunConfig {
    pub server: ServerKind,
    pub refresh_every: u32,
}

static CONFIG: RwLock<RunConfig> = RwLock::new(RunConfig {
    server: ServerKind::Token,
    refresh_every: 10,
});

pub fn configure(c: RunConfig) {
    *CONFIG.write().unwrap_or_else(|p| p.into_inner()) = c;
}

fn config() -> RunConfig {
    *CONFIG.read().unwrap_or_else(|p| p.into_inner())
}

/// Per-user state kept in goose's session data.
#[derive(Debug, Clone, Default)]
struct UserState {
    /// Sent as `X-Client-Id` on every request: what sticky routing hashes on, standing in
    /// for a real client's address.
    client_id: String,
    username: String,
    password: String,
    /// Token server only; the session server's cookie is in the user's jar.
    access: Option<String>,
    refresh: Option<String>,
    reads: u32,
}

pub fn build(kind: Kind) -> Scenario {
    let s = Scenario::new(kind.name());
    let s = match kind {
        Kind::Read => s
            .register_transaction(
                transaction!(sign_up_and_log_in)
                    .set_on_start()
                    .set_name("setup"),
            )
            .register_transaction(transaction!(get_me).set_name("me"))
            .register_transaction(transaction!(get_items).set_name("items")),
        Kind::Login => s
            .register_transaction(transaction!(sign_up).set_on_start().set_name("setup"))
            .register_transaction(transaction!(log_in_transaction).set_name("login")),
        Kind::Refresh => s
            .register_transaction(
                transaction!(sign_up_and_log_in)
                    .set_on_start()
                    .set_name("setup"),
            )
            .register_transaction(transaction!(read_or_refresh).set_name("read_or_refresh")),
        Kind::Public => s
            .register_transaction(transaction!(mark_ready).set_on_start().set_name("setup"))
            .register_transaction(transaction!(get_public).set_name("public")),
    };
    s
}

/// One request: sent with the user's credential, body read whole, recorded by route.
/// Returns the status (0 when no answer came) and the body.
async fn send(
    user: &mut GooseUser,
    method: GooseMethod,
    route: &'static str,
    body: Option<serde_json::Value>,
) -> Result<(u16, String), Box<TransactionError>> {
    let mut builder = user.get_request_builder(&method, route)?;
    if let Some(state) = user.get_session_data::<UserState>() {
        builder = builder.header("X-Client-Id", state.client_id.as_str());
        if let Some(access) = &state.access {
            builder = builder.bearer_auth(access);
        }
    }
    if let Some(body) = body {
        builder = builder.json(&body);
    }
    let request = GooseRequest::builder()
        .method(method)
        .path(route)
        .name(route)
        .set_request_builder(builder)
        .build();
    let start = Instant::now();
    let goose = user.request(request).await?;
    let (status, text) = match goose.response {
        Ok(response) => {
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        }
        Err(_) => (0, String::new()),
    };
    RECORDER.record(route, status, start.elapsed());
    Ok((status, text))
}

fn new_user() -> UserState {
    let id = uuid::Uuid::new_v4().simple().to_string();
    UserState {
        username: format!("lt{}", &id[..16]),
        client_id: id,
        password: "load-test-password".into(),
        ..UserState::default()
    }
}

async fn sign_up(user: &mut GooseUser) -> TransactionResult {
    let state = new_user();
    let body = json!({"username": state.username, "password": state.password});
    user.set_session_data(state);
    // A failed set-up is already counted as a failed request; the user then stays
    // unready, and the orchestrator reports it rather than measuring without it.
    let (status, _) = send(user, GooseMethod::Post, "/auth/signup", Some(body)).await?;
    if status == 201 {
        RECORDER.ready_users.fetch_add(1, Ordering::SeqCst);
    }
    Ok(())
}

async fn sign_up_and_log_in(user: &mut GooseUser) -> TransactionResult {
    let state = new_user();
    let body = json!({"username": state.username, "password": state.password});
    user.set_session_data(state);
    let (status, _) = send(user, GooseMethod::Post, "/auth/signup", Some(body)).await?;
    if status == 201 && log_in(user).await? {
        RECORDER.ready_users.fetch_add(1, Ordering::SeqCst);
    }
    Ok(())
}

async fn mark_ready(_user: &mut GooseUser) -> TransactionResult {
    RECORDER.ready_users.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

async fn log_in_transaction(user: &mut GooseUser) -> TransactionResult {
    log_in(user).await.map(|_| ())
}

/// Whether the login succeeded.
async fn log_in(user: &mut GooseUser) -> Result<bool, Box<TransactionError>> {
    let state = user
        .get_session_data::<UserState>()
        .cloned()
        .unwrap_or_default();
    let body = json!({"username": state.username, "password": state.password});
    // A login never carries the previous access token.
    if let Some(s) = user.get_session_data_mut::<UserState>() {
        s.access = None;
    }
    let (status, text) = send(user, GooseMethod::Post, "/auth/login", Some(body)).await?;
    if status == 200 {
        remember_tokens(user, &text);
    }
    Ok(status == 200)
}

/// Token server: keep the new pair. Session server: the cookie jar already did.
fn remember_tokens(user: &mut GooseUser, body: &str) {
    if config().server != ServerKind::Token {
        return;
    }
    if let Ok(t) = serde_json::from_str::<TokenResponse>(body) {
        if let Some(s) = user.get_session_data_mut::<UserState>() {
            s.access = Some(t.access_token);
            s.refresh = Some(t.refresh_token);
        }
    }
}

async fn get_me(user: &mut GooseUser) -> TransactionResult {
    send(user, GooseMethod::Get, "/api/me", None)
        .await
        .map(|_| ())
}

async fn get_items(user: &mut GooseUser) -> TransactionResult {
    send(user, GooseMethod::Get, "/api/items", None)
        .await
        .map(|_| ())
}

async fn get_public(user: &mut GooseUser) -> TransactionResult {
    send(user, GooseMethod::Get, "/api/public", None)
        .await
        .map(|_| ())
}

async fn read_or_refresh(user: &mut GooseUser) -> TransactionResult {
    let every = config().refresh_every;
    let due = match user.get_session_data_mut::<UserState>() {
        Some(s) => {
            s.reads += 1;
            s.reads % every == 0
        }
        None => false,
    };
    if !due {
        return get_me(user).await;
    }
    let body = match config().server {
        ServerKind::Token => {
            let refresh = user
                .get_session_data::<UserState>()
                .and_then(|s| s.refresh.clone())
                .unwrap_or_default();
            Some(json!({"refresh_token": refresh}))
        }
        _ => None,
    };
    let (status, text) = send(user, GooseMethod::Post, "/auth/refresh", body).await?;
    if status == 200 {
        remember_tokens(user, &text);
    }
    Ok(())
}
