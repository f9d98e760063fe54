//! The one error type of the HTTP contract (`API.md`, "Errors") and its JSON body.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};

/// The body of every 4xx/5xx answer.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
}

/// Every failure a handler, extractor or middleware can answer with.
///
/// 5xx variants carry their cause for the log only: `error_response` never puts it in the body.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("authentication required")]
    Unauthorized,
    #[error("invalid or expired credentials")]
    InvalidToken,
    #[error("this route needs the role `{0}`")]
    Forbidden(&'static str),
    /// The session server's CSRF defence: a state-changing request from another site.
    #[error("cross-site request refused: the Origin is not this server's nor an allowed one")]
    CrossSite,
    #[error("this credential was issued without the scope `{0}`")]
    InsufficientScope(&'static str),
    #[error("no such route")]
    NotFound,
    #[error("no such user")]
    NoSuchUser,
    /// Carries the `Allow` header's value.
    #[error("method not allowed (allowed: {0})")]
    MethodNotAllowed(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than {} bytes", crate::MAX_BODY_BYTES)]
    PayloadTooLarge,
    #[error("expected Content-Type: application/json")]
    UnsupportedMediaType,
    /// Bodies are never decompressed: a decompression bomb costs nothing.
    #[error("request bodies must not be compressed (Content-Encoding: identity only)")]
    ContentEncoding,
    #[error("the request did not arrive within {} s", crate::http::BODY_TIMEOUT.as_secs())]
    RequestTimeout,
    #[error("the request head is too large")]
    HeadersTooLarge,
    #[error("too many attempts (failed logins or signups), retry in {retry_after_s} s")]
    RateLimited { retry_after_s: u64 },
    #[error("a dependency is unavailable, retry later")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// Stored in the response's extensions so outer middleware (the token server's
/// `WWW-Authenticate`) can see which contract error was answered without parsing the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode(pub &'static str);

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidRequest(_) => "invalid_request",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::Unauthorized => "unauthorized",
            ApiError::InvalidToken => "invalid_token",
            ApiError::Forbidden(_) | ApiError::CrossSite => "forbidden",
            ApiError::InsufficientScope(_) => "insufficient_scope",
            ApiError::NotFound | ApiError::NoSuchUser => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType | ApiError::ContentEncoding => "unsupported_media_type",
            ApiError::RequestTimeout => "request_timeout",
            ApiError::HeadersTooLarge => "headers_too_large",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<crate::redis_conn::RedisError> for ApiError {
    fn from(e: crate::redis_conn::RedisError) -> Self {
        ApiError::Unavailable(e.into())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::InvalidCredentials | ApiError::Unauthorized | ApiError::InvalidToken => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::Forbidden(_) | ApiError::CrossSite | ApiError::InsufficientScope(_) => {
                StatusCode::FORBIDDEN
            }
            ApiError::NotFound | ApiError::NoSuchUser => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType | ApiError::ContentEncoding => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Unavailable(cause) => {
                tracing::warn!(error.cause_chain = ?cause, "answering 503: dependency unavailable")
            }
            ApiError::Internal(cause) => {
                tracing::error!(error.cause_chain = ?cause, "answering 500: internal error")
            }
            _ => {}
        }
        let mut res = HttpResponse::build(self.status_code());
        match self {
            ApiError::RateLimited { retry_after_s } => {
                res.insert_header((header::RETRY_AFTER, retry_after_s.to_string()));
            }
            ApiError::Unavailable(_) => {
                res.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
            }
            ApiError::MethodNotAllowed(allow) => {
                res.insert_header((header::ALLOW, HeaderValue::from_static(allow)));
            }
            // The connection still holds the rest of a body nobody will read: close it.
            ApiError::RequestTimeout => {
                res.force_close();
            }
            _ => {}
        }
        let mut res = res.json(ErrorBody {
            error: self.code().to_owned(),
            message: self.to_string(),
        });
        res.extensions_mut().insert(ErrorCode(self.code()));
        res
    }
}
