//! The routes whose behaviour depends on sessions: login, refresh, logout, and the
//! protected reads.

use actix_session::Session;
use actix_web::{web, HttpRequest, HttpResponse};
use auth_core::contract::{Credentials, Items, UserEnvelope, ADMIN_ROLE};
use auth_core::http::{admin_stats, client_addr, resource};
use auth_core::{ApiError, Core};

use crate::auth::{AuthUser, SessionPolicy};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/auth/login").route(web::post().to(login)))
        .service(resource("/auth/refresh").route(web::post().to(refresh)))
        .service(resource("/auth/logout").route(web::post().to(logout)))
        .service(resource("/api/me").route(web::get().to(me)))
        .service(resource("/api/items").route(web::get().to(items)))
        .service(resource("/api/admin/stats").route(web::get().to(admin)));
}

#[tracing::instrument(name = "login", skip_all, fields(username = %body.username))]
async fn login(
    core: web::Data<Core>,
    policy: web::Data<SessionPolicy>,
    session: Session,
    req: HttpRequest,
    body: web::Json<Credentials>,
) -> Result<HttpResponse, ApiError> {
    let user = core
        .authenticate(body.into_inner(), &client_addr(&req))
        .await?
        .view();
    policy.start(&session, &user)?;
    Ok(HttpResponse::Ok().json(UserEnvelope { user }))
}

async fn refresh(
    policy: web::Data<SessionPolicy>,
    caller: AuthUser,
) -> Result<HttpResponse, ApiError> {
    policy.rotate(&caller.session)?;
    Ok(HttpResponse::Ok().json(UserEnvelope { user: caller.user }))
}

/// Deletes the session server-side (the middleware does it when the response leaves) and
/// clears the cookie. With no or a dead session there is nothing to delete: still 204.
async fn logout(session: Session) -> HttpResponse {
    session.purge();
    HttpResponse::NoContent().finish()
}

async fn me(caller: AuthUser) -> HttpResponse {
    HttpResponse::Ok().json(caller.user)
}

async fn items(caller: AuthUser) -> HttpResponse {
    HttpResponse::Ok().json(Items::for_user(&caller.user.id))
}

async fn admin(core: web::Data<Core>, caller: AuthUser) -> Result<HttpResponse, ApiError> {
    if !caller.user.roles.iter().any(|r| r == ADMIN_ROLE) {
        return Err(ApiError::Forbidden(ADMIN_ROLE));
    }
    Ok(admin_stats(&core, &caller.user))
}
