//! One error type for every page handler, presented as an HTML page with the right
//! status. Internal errors are logged with their cause and shown as a plain message.

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::page::Layout;
use crate::domain::password::{HashError, BUSY_RETRY_SECONDS};
use crate::ops::authentication::AuthError;

#[derive(Debug)]
pub enum WebError {
    NotFound,
    Forbidden(String),
    BadRequest(String),
    /// Not signed in: send the person to the sign-in page, then back to `next`.
    SignInRequired {
        next: Option<String>,
    },
    /// The account requires two-factor authentication and the user has none yet.
    EnrolmentRequired,
    /// The action needs sudo mode: re-authenticate, then come back to `next`.
    SudoRequired {
        next: String,
    },
    /// Too much work at once (password checks): come back in a moment.
    Busy,
    /// Something failed on our side: logged once, with its source, when answered.
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl WebError {
    pub fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        WebError::Internal(e.into())
    }
}

impl From<sqlx::Error> for WebError {
    fn from(e: sqlx::Error) -> Self {
        WebError::internal(e)
    }
}

impl From<tower_sessions::session::Error> for WebError {
    fn from(e: tower_sessions::session::Error) -> Self {
        WebError::internal(e)
    }
}

impl From<HashError> for WebError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => WebError::Busy,
            e => WebError::internal(e),
        }
    }
}

impl From<AuthError> for WebError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Hash(HashError::Busy) => WebError::Busy,
            e => WebError::internal(e),
        }
    }
}

impl From<askama::Error> for WebError {
    fn from(e: askama::Error) -> Self {
        WebError::internal(e)
    }
}

impl From<crate::domain::access::Denied> for WebError {
    fn from(denied: crate::domain::access::Denied) -> Self {
        WebError::Forbidden(denied.message().to_owned())
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub layout: Layout,
    pub message: String,
}

pub fn error_page(status: StatusCode, message: &str) -> Response {
    let page = ErrorPage {
        layout: Layout::anonymous(status.canonical_reason().unwrap_or("Error")),
        message: message.to_owned(),
    };
    let body = page.render().unwrap_or_else(|_| message.to_owned());
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::NotFound => {
                error_page(StatusCode::NOT_FOUND, "There is nothing at this address.")
            }
            WebError::Forbidden(msg) => error_page(StatusCode::FORBIDDEN, &msg),
            WebError::BadRequest(msg) => error_page(StatusCode::BAD_REQUEST, &msg),
            WebError::SignInRequired { next } => {
                let to = match next.as_deref().and_then(super::page::safe_next) {
                    Some(next) => format!("/login?next={}", super::page::url_encode(next)),
                    None => "/login".to_owned(),
                };
                Redirect::to(&to).into_response()
            }
            WebError::EnrolmentRequired => {
                Redirect::to(super::session::ENROLMENT_PATH).into_response()
            }
            WebError::SudoRequired { next } => super::sudo::prompt(&next),
            WebError::Busy => {
                let mut page = error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Too many sign-ins at once. Try again in a moment.",
                );
                page.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(BUSY_RETRY_SECONDS));
                page
            }
            WebError::Internal(cause) => {
                tracing::error!(error = %crate::http::error_chain(cause.as_ref()), "request failed");
                error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong on our side. Please try again.",
                )
            }
        }
    }
}
