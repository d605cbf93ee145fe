//! The page behind a one-time set-password link (no sign-in needed).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

use crate::domain::password::Password;
use crate::domain::validate;
use crate::http::{ClientIp, Form};
use crate::ops::membership::{self};
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::page::{render, render_with, Layout};

#[derive(Template)]
#[template(path = "users/set_password.html")]
struct SetPasswordPage {
    layout: Layout,
    csrf: String,
    /// The link's secret, posted back with the form.
    key: String,
    email: String,
    error: Option<String>,
}

fn link_gone() -> WebError {
    WebError::NotFound
}

pub async fn page(
    State(state): State<AppState>,
    session: Session,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<Response, WebError> {
    let query = Form::from_query(raw.as_deref()).map_err(|_| link_gone())?;
    let link = query.text("key").to_owned();
    let user = membership::password_link_user(&state, &link)
        .await?
        .ok_or_else(link_gone)?;
    render(&SetPasswordPage {
        layout: Layout::anonymous("Set your password"),
        csrf: crate::web::csrf::token(&session).await?,
        key: link,
        email: user.email,
        error: None,
    })
}

pub async fn set_password(
    State(state): State<AppState>,
    session: Session,
    ClientIp(ip): ClientIp,
    form: Form,
) -> Result<Response, WebError> {
    let link = form.text("key").to_owned();
    let user = membership::password_link_user(&state, &link)
        .await?
        .ok_or_else(link_gone)?;
    let password = form.text("password");
    if let Err(e) = validate::new_password(password, form.text("password_confirmation")) {
        return render_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            &SetPasswordPage {
                layout: Layout::anonymous("Set your password"),
                csrf: crate::web::csrf::token(&session).await?,
                key: link,
                email: user.email,
                error: Some(e),
            },
        );
    }
    let hash = state.passwords.hash(&Password::new(password)).await?;
    if !membership::set_password_with_link(&state, &link, &user, &hash, &ip).await? {
        return Err(link_gone());
    }
    Ok(Redirect::to("/login").into_response())
}
