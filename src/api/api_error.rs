//! One error type for every API handler, presented as Fastly does:
//! `{"msg": "...", "detail": "..."}` with the right status. Internal errors are logged
//! with their cause and answered with a plain message.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::access::Denied;
use crate::domain::password::{HashError, BUSY_RETRY_SECONDS};
use crate::ops::authentication::AuthError;

/// Fastly's wording for a missing, unknown or revoked token.
pub const INVALID_CREDENTIALS: &str = "Provided credentials are missing or invalid";
/// Fastly's wording when sudo mode is needed.
pub const SUDO_REQUIRED: &str = "You must POST /sudo to access this endpoint";
/// Fastly's answer when a second factor is needed and missing or wrong.
pub const TWO_FACTOR: &str = "2fa.verify";

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub msg: String,
    pub detail: Option<String>,
    /// Seconds, for 429 answers.
    pub retry_after: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub(super) struct Body<'a> {
    msg: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
}

impl ApiError {
    pub fn new(status: StatusCode, msg: impl Into<String>) -> Self {
        ApiError {
            status,
            msg: msg.into(),
            detail: None,
            retry_after: None,
        }
    }

    pub fn with_msg(mut self, msg: impl Into<String>) -> Self {
        self.msg = msg.into();
        self
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, INVALID_CREDENTIALS)
    }

    pub fn forbidden(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, msg)
    }

    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, msg)
    }

    pub fn unprocessable(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, msg)
    }

    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, msg)
    }

    pub fn two_factor() -> Self {
        Self::bad_request(TWO_FACTOR)
    }

    pub fn sudo_required() -> Self {
        Self::forbidden(SUDO_REQUIRED)
    }

    pub fn throttled(retry_after: i64) -> Self {
        ApiError {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                crate::ops::authentication::throttled_message(retry_after),
            )
        }
    }

    /// Logs the cause, with its sources; the client sees a plain message.
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        let cause: Box<dyn std::error::Error + Send + Sync> = cause.into();
        tracing::error!(error = %crate::http::error_chain(cause.as_ref()), "API request failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
    }
}

impl From<Denied> for ApiError {
    fn from(denied: Denied) -> Self {
        ApiError::forbidden(denied.message())
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::internal(e)
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Hash(HashError::Busy) => ApiError {
                retry_after: Some(BUSY_RETRY_SECONDS),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Too many password checks at once. Try again in a moment.",
                )
            },
            e => ApiError::internal(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&Body {
            msg: &self.msg,
            detail: self.detail.as_deref(),
        })
        .unwrap_or_else(|_| br#"{"msg":"Internal server error"}"#.to_vec());
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
        if let Some(seconds) = self.retry_after {
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
