//! The least a server can do per request for each auth model, with nothing else around it:
//!
//! - `bench-baseline jwt`: `GET /me` decodes and verifies an HS256 bearer token with
//!   jsonwebtoken (`POST /login` hands one out).
//! - `bench-baseline session`: `GET /me` reads the session through actix-session's own
//!   Redis store (`POST /login` creates one).
//!
//! `scripts/bench-servers.sh` measures the real servers against these. Configuration:
//! `LISTEN_ADDR`, `REDIS_URL`, `WORKERS` (default 1). Local benchmarking only.

use actix_session::storage::RedisSessionStore;
use actix_session::{Session, SessionMiddleware};
use actix_web::cookie::Key;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    roles: Vec<String>,
}

/// A throwaway key for a process that only ever serves a benchmark on loopback.
const SECRET: &[u8] = b"bench-baseline-local-only-secret";

fn me_body(sub: &str) -> serde_json::Value {
    serde_json::json!({"id": sub, "username": "bench", "roles": ["user"]})
}

async fn jwt_login() -> HttpResponse {
    let claims = Claims {
        sub: "00000000-0000-0000-0000-000000000000".into(),
        exp: 4_000_000_000,
        roles: vec!["user".into()],
    };
    let token = encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .expect("signs");
    HttpResponse::Ok().json(serde_json::json!({"access_token": token}))
}

async fn jwt_me(req: HttpRequest, key: web::Data<DecodingKey>) -> HttpResponse {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let claims =
        token.and_then(|t| decode::<Claims>(t, &key, &Validation::new(Algorithm::HS256)).ok());
    match claims {
        Some(c) => HttpResponse::Ok().json(me_body(&c.claims.sub)),
        None => HttpResponse::Unauthorized().finish(),
    }
}

async fn session_login(session: Session) -> HttpResponse {
    match session.insert("sub", "00000000-0000-0000-0000-000000000000") {
        Ok(()) => HttpResponse::Ok().finish(),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

async fn session_me(session: Session) -> HttpResponse {
    match session.get::<String>("sub") {
        Ok(Some(sub)) => HttpResponse::Ok().json(me_body(&sub)),
        _ => HttpResponse::Unauthorized().finish(),
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let addr = std::env::var("LISTEN_ADDR").unwrap_or_else(|_| "127.0.0.1:8090".into());
    let workers: usize = std::env::var("WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(1);
    match mode.as_str() {
        "jwt" => {
            let key = web::Data::new(DecodingKey::from_secret(SECRET));
            HttpServer::new(move || {
                App::new()
                    .app_data(key.clone())
                    .route("/login", web::post().to(jwt_login))
                    .route("/me", web::get().to(jwt_me))
            })
            .workers(workers)
            .bind(addr)?
            .run()
            .await
        }
        "session" => {
            let url =
                std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
            let store = RedisSessionStore::new(url)
                .await
                .map_err(|e| std::io::Error::other(format!("redis: {e}")))?;
            let key = Key::generate();
            HttpServer::new(move || {
                App::new()
                    .wrap(
                        SessionMiddleware::builder(store.clone(), key.clone())
                            .cookie_secure(false)
                            .build(),
                    )
                    .route("/login", web::post().to(session_login))
                    .route("/me", web::get().to(session_me))
            })
            .workers(workers)
            .bind(addr)?
            .run()
            .await
        }
        _ => {
            eprintln!("usage: bench-baseline jwt|session");
            std::process::exit(2);
        }
    }
}
