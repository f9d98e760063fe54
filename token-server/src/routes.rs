//! The routes whose behaviour depends on tokens: login, refresh, logout, the protected
//! reads and the JWKS.

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use auth_core::contract::{
    Credentials, Items, RefreshRequest, TokenResponse, UserView, ADMIN_ROLE,
};
use auth_core::http::{admin_stats, client_addr, resource};
use auth_core::{ApiError, Core};

use crate::auth::{verify_request, AuthUser};
use crate::denylist::Denylist;
use crate::refresh_tokens::{RefreshTokens, Rotation};
use crate::tokens::TokenCodec;

type Codec = web::Data<Arc<TokenCodec>>;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/auth/login").route(web::post().to(login)))
        .service(resource("/auth/refresh").route(web::post().to(refresh)))
        .service(resource("/auth/logout").route(web::post().to(logout)))
        .service(resource("/api/me").route(web::get().to(me)))
        .service(resource("/api/items").route(web::get().to(items)))
        .service(resource("/api/admin/stats").route(web::get().to(admin)))
        .service(resource("/.well-known/jwks.json").route(web::get().to(jwks)));
}

fn token_response(
    codec: &TokenCodec,
    user: UserView,
    refresh_token: String,
) -> Result<HttpResponse, ApiError> {
    let (access_token, _) = codec.issue_access(&user).map_err(ApiError::Internal)?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(TokenResponse {
            user,
            token_type: "Bearer".into(),
            access_token,
            expires_in: codec.access_ttl().as_secs(),
            refresh_token,
            refresh_expires_in: codec.refresh_ttl().as_secs(),
        }))
}

#[tracing::instrument(name = "login", skip_all, fields(username = %body.username))]
async fn login(
    core: web::Data<Core>,
    codec: Codec,
    refresh_tokens: web::Data<RefreshTokens>,
    req: HttpRequest,
    body: web::Json<Credentials>,
) -> Result<HttpResponse, ApiError> {
    let user = core
        .authenticate(body.into_inner(), &client_addr(&req))
        .await?
        .view();
    let family = uuid::Uuid::new_v4().to_string();
    let (refresh_token, claims) = codec.issue_refresh(&family).map_err(ApiError::Internal)?;
    refresh_tokens.start_family(&claims, &user).await?;
    token_response(&codec, user, refresh_token)
}

fn refused(e: impl std::fmt::Display) -> ApiError {
    tracing::debug!(error = %e, "refresh token refused");
    ApiError::InvalidToken
}

async fn refresh(
    codec: Codec,
    refresh_tokens: web::Data<RefreshTokens>,
    body: web::Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let old = codec.verify_refresh(&body.refresh_token).map_err(refused)?;
    let (refresh_token, new) = codec.issue_refresh(&old.fam).map_err(ApiError::Internal)?;
    match refresh_tokens.rotate(&old, &new).await? {
        Rotation::Rotated(user) => token_response(&codec, user, refresh_token),
        Rotation::Reused | Rotation::Revoked => Err(ApiError::InvalidToken),
    }
}

async fn logout(
    codec: Codec,
    refresh_tokens: web::Data<RefreshTokens>,
    denylist: Option<web::Data<Denylist>>,
    req: HttpRequest,
    body: web::Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let claims = codec.verify_refresh(&body.refresh_token).map_err(refused)?;
    refresh_tokens.revoke_family(&claims.fam).await?;
    if let Some(denylist) = denylist {
        // Only a token that still verifies needs denying; anything else is refused anyway.
        if let Ok(access) = verify_request(&req, &codec, None).await {
            denylist.deny(&access).await?;
        }
    }
    Ok(HttpResponse::NoContent().finish())
}

async fn me(caller: AuthUser) -> HttpResponse {
    HttpResponse::Ok().json(caller.claims.user_ref())
}

async fn items(caller: AuthUser) -> HttpResponse {
    HttpResponse::Ok().json(Items::for_user(&caller.claims.sub))
}

async fn admin(core: web::Data<Core>, caller: AuthUser) -> Result<HttpResponse, ApiError> {
    if !caller.claims.roles.iter().any(|r| r == ADMIN_ROLE) {
        return Err(ApiError::Forbidden(ADMIN_ROLE));
    }
    Ok(admin_stats(&core, &caller.claims.user()))
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
