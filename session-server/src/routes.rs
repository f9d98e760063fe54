//! The routes whose behaviour depends on sessions: login, refresh, logout (one or every
//! login), role changes, and the protected reads.

use actix_web::{web, HttpRequest, HttpResponse};
use auth_core::contract::{Items, LoginRequest, RolesRequest, Scopes, UserEnvelope};
use auth_core::http::{admin_stats, get, post, put};
use auth_core::{ApiError, Core, Json};

use crate::auth::{AuthUser, SessionPolicy};

type Policy = web::Data<SessionPolicy>;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(post("/auth/login", login))
        .service(post("/auth/refresh", refresh))
        .service(post("/auth/logout", logout))
        .service(post("/auth/logout-all", logout_all))
        .service(get("/api/me", me))
        .service(get("/api/items", items))
        .service(get("/api/admin/stats", admin))
        .service(put("/api/admin/users/{username}/roles", set_roles));
}

#[tracing::instrument(name = "login", skip_all, fields(username = %body.credentials.username))]
async fn login(
    core: web::Data<Core>,
    policy: Policy,
    req: HttpRequest,
    body: Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let LoginRequest { credentials, scope } = body.into_inner();
    let user = core
        .authenticate(
            credentials,
            &core.client_of(&req),
            policy.device_credential(&req),
        )
        .await?
        .view();
    let scope = Scopes::grant(scope.as_deref(), &user.roles)?;
    let id = policy.start(&req, user.clone(), scope).await?;
    let username = user.username.clone();
    let mut res = HttpResponse::Ok().json(UserEnvelope { user, scope });
    // The session cookie first: clients that keep one `Set-Cookie` keep the session.
    policy.set_cookie(&mut res, &id);
    policy.set_device_cookie(&mut res, &core.device, &username);
    Ok(res)
}

async fn refresh(policy: Policy, caller: AuthUser) -> Result<HttpResponse, ApiError> {
    let id = policy.rotate(&caller).await?;
    let mut res = HttpResponse::Ok().json(UserEnvelope {
        user: caller.data.user,
        scope: caller.data.scope,
    });
    policy.set_cookie(&mut res, &id);
    Ok(res)
}

/// Deletes the session server-side (and its successor, for a just-replaced id) and clears
/// the cookie, whatever the cookie was: logging out never fails for the client.
async fn logout(policy: Policy, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    if let Some(id) = policy.session_id(&req) {
        policy.store.delete(&id).await?;
    }
    let mut res = HttpResponse::NoContent().finish();
    policy.clear_cookie(&mut res);
    Ok(res)
}

/// Every session of the caller, through the user's session index.
async fn logout_all(policy: Policy, caller: AuthUser) -> Result<HttpResponse, ApiError> {
    let ended = policy.store.delete_all_of(&caller.data.user).await?;
    tracing::info!(user = %caller.data.user.username, ended, "logged out everywhere");
    let mut res = HttpResponse::NoContent().finish();
    policy.clear_cookie(&mut res);
    Ok(res)
}

async fn me(policy: Policy, caller: AuthUser) -> Result<HttpResponse, ApiError> {
    caller.require_scope(Scopes::READ)?;
    Ok(caller.reply(&policy, HttpResponse::Ok().json(caller.user())))
}

async fn items(policy: Policy, caller: AuthUser) -> Result<HttpResponse, ApiError> {
    caller.require_scope(Scopes::READ)?;
    let body = Items::for_user(&caller.user().id);
    Ok(caller.reply(&policy, HttpResponse::Ok().json(body)))
}

async fn admin(
    core: web::Data<Core>,
    policy: Policy,
    caller: AuthUser,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    Ok(caller.reply(&policy, admin_stats(&core, caller.user())))
}

/// The new roles apply to every live session of the user at once (the session index).
async fn set_roles(
    core: web::Data<Core>,
    policy: Policy,
    caller: AuthUser,
    username: web::Path<String>,
    body: Json<RolesRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let user = core.change_roles(&username, &body).await?;
    let sessions = policy.store.set_roles(&user.view(), &user.roles).await?;
    tracing::info!(username = %user.username, sessions, "live sessions see the new roles");
    Ok(caller.reply(&policy, HttpResponse::Ok().json(user.view())))
}
