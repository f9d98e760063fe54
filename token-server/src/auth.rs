//! Who is calling: the `AuthUser` extractor for `Authorization: Bearer <access token>`.

use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{web, FromRequest, HttpRequest};
use auth_core::contract::Scopes;
use auth_core::ApiError;
use futures_util::future::{ready, Either, LocalBoxFuture, Ready};

use crate::denylist::Denylist;
use crate::tokens::{AccessClaims, TokenCodec};

/// The bearer token of a request: `Ok(None)` when there is no `Authorization` header,
/// `Err` when there is one that is not a bearer token.
pub fn bearer(req: &HttpRequest) -> Result<Option<&str>, ApiError> {
    let Some(value) = req.headers().get(AUTHORIZATION) else {
        return Ok(None);
    };
    // `from_utf8` rather than `HeaderValue::to_str`, whose byte-by-byte check of a 450-byte
    // header was the largest single cost of a token read; anything but base64url and dots
    // fails verification anyway.
    let value = std::str::from_utf8(value.as_bytes()).map_err(|_| ApiError::InvalidToken)?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(ApiError::InvalidToken),
    }
}

/// Verifies the access token of `req` (and, with the denylist on, asks Redis).
pub async fn verify_request(
    req: &HttpRequest,
    codec: &TokenCodec,
    denylist: Option<&Denylist>,
) -> Result<AccessClaims, ApiError> {
    let claims = verify_now(req, codec)?;
    if let Some(denylist) = denylist {
        if denylist.is_denied(&claims).await? {
            return Err(ApiError::InvalidToken);
        }
    }
    Ok(claims)
}

/// A caller with a valid access token. Taking it as a handler argument is what makes a
/// route protected.
pub struct AuthUser {
    pub claims: AccessClaims,
}

impl AuthUser {
    /// `403 insufficient_scope` unless the credential carries `needed`.
    pub fn require_scope(&self, needed: Scopes) -> Result<(), ApiError> {
        self.claims.scope.require(needed)
    }

    /// The admin routes: the role first (`forbidden`), then the scope.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        self.claims.scope.require_admin(&self.claims.roles)
    }
}

/// The stateless check, for when no denylist is configured.
fn verify_now(req: &HttpRequest, codec: &TokenCodec) -> Result<AccessClaims, ApiError> {
    let token = bearer(req)?.ok_or(ApiError::Unauthorized)?;
    codec.verify_access(token).map_err(|e| {
        tracing::debug!(error = %e, "access token refused");
        ApiError::InvalidToken
    })
}

type AuthFuture =
    Either<Ready<Result<AuthUser, ApiError>>, LocalBoxFuture<'static, Result<AuthUser, ApiError>>>;

impl FromRequest for AuthUser {
    type Error = ApiError;
    /// Without a denylist nothing is awaited, so the common path allocates no future.
    type Future = AuthFuture;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(codec) = req.app_data::<web::Data<Arc<TokenCodec>>>() else {
            return Either::Left(ready(Err(ApiError::Internal(anyhow::anyhow!(
                "TokenCodec is not registered"
            )))));
        };
        let into_user = |claims: AccessClaims| AuthUser { claims };
        match req.app_data::<web::Data<Denylist>>() {
            None => Either::Left(ready(verify_now(req, codec).map(into_user))),
            Some(denylist) => {
                let (req, codec, denylist) = (req.clone(), codec.clone(), denylist.clone());
                Either::Right(Box::pin(async move {
                    verify_request(&req, &codec, Some(&denylist))
                        .await
                        .map(into_user)
                }))
            }
        }
    }
}
