//! Who is calling: the `AuthUser` extractor for `Authorization: Bearer <access token>`.

use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{web, FromRequest, HttpRequest};
use auth_core::contract::UserView;
use auth_core::ApiError;
use futures_util::future::LocalBoxFuture;

use crate::denylist::Denylist;
use crate::tokens::{AccessClaims, TokenCodec};

/// The bearer token of a request: `Ok(None)` when there is no `Authorization` header,
/// `Err` when there is one that is not a bearer token.
pub fn bearer(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ApiError::InvalidToken)?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim().to_owned()))
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
    let token = bearer(req)?.ok_or(ApiError::Unauthorized)?;
    let claims = codec.verify_access(&token).map_err(|e| {
        tracing::debug!(error = %e, "access token refused");
        ApiError::InvalidToken
    })?;
    if let Some(denylist) = denylist {
        if denylist.is_denied(&claims.jti).await? {
            return Err(ApiError::InvalidToken);
        }
    }
    Ok(claims)
}

/// A caller with a valid access token. Taking it as a handler argument is what makes a
/// route protected.
pub struct AuthUser {
    pub user: UserView,
    pub claims: AccessClaims,
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let codec = req
                .app_data::<web::Data<Arc<TokenCodec>>>()
                .ok_or_else(|| {
                    ApiError::Internal(anyhow::anyhow!("TokenCodec is not registered"))
                })?;
            let denylist = req.app_data::<web::Data<Denylist>>();
            let claims = verify_request(&req, codec, denylist.map(|d| d.get_ref())).await?;
            Ok(AuthUser {
                user: claims.user(),
                claims,
            })
        })
    }
}
