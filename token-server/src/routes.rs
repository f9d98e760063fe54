//! The routes whose behaviour depends on tokens: login, refresh, logout, the protected
//! reads and the JWKS.

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use auth_core::contract::{
    Items, LoginRequest, RefreshRequest, RolesRequest, Scopes, TokenResponse, UserView,
};
use auth_core::http::{admin_stats, get, post, put};
use auth_core::{ApiError, Core, Json};

use crate::auth::AuthUser;
use crate::refresh_tokens::{new_family, FamilyOwner, RefreshTokens, Rotation};
use crate::tokens::{now_s, TokenCodec};

type Codec = web::Data<Arc<TokenCodec>>;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(post("/auth/login", login))
        .service(post("/auth/refresh", refresh))
        .service(post("/auth/logout", logout))
        .service(post("/auth/logout-all", logout_all))
        .service(get("/api/me", me))
        .service(get("/api/items", items))
        .service(get("/api/admin/stats", admin))
        .service(put("/api/admin/users/{username}/roles", set_roles))
        .service(get("/.well-known/jwks.json", jwks));
}

fn token_response(
    codec: &TokenCodec,
    user: UserView,
    scope: Scopes,
    family: &str,
    refresh_token: String,
    device_token: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let (access_token, _) = codec
        .issue_access(&user, scope, family)
        .map_err(ApiError::Internal)?;
    Ok(HttpResponse::Ok().json(TokenResponse {
        user,
        scope,
        token_type: "Bearer".into(),
        access_token,
        expires_in: codec.access_ttl().as_secs(),
        refresh_token,
        refresh_expires_in: codec.refresh_ttl().as_secs(),
        device_token,
    }))
}

#[tracing::instrument(name = "login", skip_all, fields(username = %body.credentials.username))]
async fn login(
    core: web::Data<Core>,
    codec: Codec,
    refresh_tokens: web::Data<RefreshTokens>,
    req: HttpRequest,
    body: Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let LoginRequest { credentials, scope } = body.into_inner();
    let device = req
        .headers()
        .get(DEVICE_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok());
    let user = core
        .authenticate(credentials, &core.client_of(&req), device)
        .await?
        .view();
    let scope = Scopes::grant(scope.as_deref(), &user.roles)?;
    let family = new_family(&user.username);
    let (refresh_token, claims) = codec
        .issue_refresh(&family, now_s())
        .map_err(ApiError::Internal)?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("REFRESH_FAMILY_MAX_AGE is 0")))?;
    let owner = FamilyOwner {
        user_id: user.id.clone(),
        username: user.username.clone(),
        scope,
    };
    refresh_tokens.start_family(&claims, &owner).await?;
    let device_token = core.device.issue(&user.username);
    token_response(
        &codec,
        user,
        scope,
        &family,
        refresh_token,
        Some(device_token),
    )
}

/// Where a client sends back the `device_token` of an earlier login (`auth_core::device`).
pub const DEVICE_TOKEN_HEADER: &str = "device-token";

fn refused(e: impl std::fmt::Display) -> ApiError {
    tracing::debug!(error = %e, "refresh token refused");
    ApiError::InvalidToken
}

/// Rotates the refresh token and issues an access token with the user's roles as they are
/// now (a refresh always re-reads the user: this is when a role change reaches a token).
async fn refresh(
    codec: Codec,
    refresh_tokens: web::Data<RefreshTokens>,
    body: Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let old = codec.verify_refresh(&body.refresh_token).map_err(refused)?;
    let Some((new_token, new)) = codec
        .issue_refresh(&old.fam, old.auth_time)
        .map_err(ApiError::Internal)?
    else {
        // The family reached REFRESH_FAMILY_MAX_AGE: log in again.
        refresh_tokens.revoke_family(&old.fam).await?;
        return Err(ApiError::InvalidToken);
    };
    // One Redis call: the rotation and the user it reads in the same step. So a 503 means
    // the rotation did not happen (contract v3), never "it happened, then a read failed".
    let (refreshed, refresh_token) = match refresh_tokens.rotate(&old, &new, &new_token).await? {
        Rotation::Rotated(refreshed) => (refreshed, new_token),
        Rotation::Retry { owner, successor } => (owner, successor),
        Rotation::Reused | Rotation::Revoked => return Err(ApiError::InvalidToken),
    };
    let owner = refreshed.owner;
    let Some(user) = refreshed.user else {
        refresh_tokens.revoke_family(&old.fam).await?;
        return Err(ApiError::InvalidToken);
    };
    // A scope the user's roles no longer allow (a demoted admin's `admin`) is dropped.
    let allowed = Scopes::allowed_by(&user.roles);
    let scope = Scopes {
        read: owner.scope.read && allowed.read,
        admin: owner.scope.admin && allowed.admin,
    };
    token_response(&codec, user.view(), scope, &old.fam, refresh_token, None)
}

/// Revokes the refresh token's family. The access token, being stateless, stays valid
/// until it expires, unless the revocation check (`ACCESS_DENYLIST`) is on: it is then
/// refused at once, since its login (`sid`) has ended.
async fn logout(
    codec: Codec,
    refresh_tokens: web::Data<RefreshTokens>,
    body: Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let claims = codec.verify_refresh(&body.refresh_token).map_err(refused)?;
    refresh_tokens.revoke_family(&claims.fam).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Every refresh-token family of the caller, through the user's family index.
async fn logout_all(
    refresh_tokens: web::Data<RefreshTokens>,
    caller: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let ended = refresh_tokens
        .revoke_all_of(&caller.claims.preferred_username, &caller.claims.sub)
        .await?;
    tracing::info!(user = %caller.claims.preferred_username, ended, "logged out everywhere");
    Ok(HttpResponse::NoContent().finish())
}

async fn me(caller: AuthUser) -> Result<HttpResponse, ApiError> {
    caller.require_scope(Scopes::READ)?;
    Ok(HttpResponse::Ok().json(caller.claims.user_ref()))
}

async fn items(caller: AuthUser) -> Result<HttpResponse, ApiError> {
    caller.require_scope(Scopes::READ)?;
    Ok(HttpResponse::Ok().json(Items::for_user(&caller.claims.sub)))
}

async fn admin(core: web::Data<Core>, caller: AuthUser) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    Ok(admin_stats(&core, &caller.claims.user()))
}

/// Only the user record changes: access tokens already issued keep the roles they were
/// signed with until they expire; the next refresh carries the new ones.
async fn set_roles(
    core: web::Data<Core>,
    caller: AuthUser,
    username: web::Path<String>,
    body: Json<RolesRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let user = core.change_roles(&username, &body).await?;
    Ok(HttpResponse::Ok().json(user.view()))
}

/// The public keys, for services that verify tokens without holding the secret. With
/// HS256 there is nothing public to publish.
async fn jwks(codec: Codec) -> Result<HttpResponse, ApiError> {
    match &codec.keys().jwks {
        Some(set) => Ok(HttpResponse::Ok()
            .insert_header(("Cache-Control", "public, max-age=300"))
            .json(set)),
        None => Err(ApiError::NotFound),
    }
}
