//! Security > Token policy (superusers, sudo mode): the account's rules for new tokens
//! and its inactivity window. The rules themselves are `domain::token_policy`.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use super::error::WebError;
use super::page::{render, render_with, FieldErrors, Layout, Section};
use super::sudo::{Elevated, Sudo};
use crate::db::token_policy_store;
use crate::domain::access::Action;
use crate::domain::token_policy::{self, TokenPolicy, MAX_INACTIVITY_DAYS, MIN_INACTIVITY_DAYS};
use crate::http::{ClientIp, Form};
use crate::ops::account_security;
use crate::state::AppState;

pub const PAGE: &str = "/account/security/token-policy";

pub fn routes() -> Router<AppState> {
    Router::new().route(PAGE, get(page).post(save))
}

#[derive(Template)]
#[template(path = "security/token_policy.html")]
struct PolicyPage {
    layout: Layout,
    max_lifetime_days: String,
    require_expiry: bool,
    no_global_user_tokens: bool,
    automation_needs_allowlist: bool,
    inactivity_days: String,
    min_inactivity: String,
    inactivity_hint: String,
    errors: FieldErrors,
}

fn form(elevated: &Elevated, policy: &TokenPolicy, errors: FieldErrors) -> PolicyPage {
    PolicyPage {
        layout: elevated.layout("Token policy", Section::Security),
        max_lifetime_days: policy
            .max_lifetime_days
            .map(|d| d.to_string())
            .unwrap_or_default(),
        require_expiry: policy.require_expiry,
        no_global_user_tokens: policy.no_global_user_tokens,
        automation_needs_allowlist: policy.automation_needs_allowlist,
        inactivity_days: policy
            .inactivity_days
            .unwrap_or(MAX_INACTIVITY_DAYS)
            .to_string(),
        min_inactivity: MIN_INACTIVITY_DAYS.to_string(),
        inactivity_hint: format!(
            "From {MIN_INACTIVITY_DAYS} to {MAX_INACTIVITY_DAYS} days (two years, the default). Tokens unused that long are deleted, even those set never to expire."
        ),
        errors,
    }
}

pub async fn page(State(state): State<AppState>, sudo: Sudo) -> Result<Response, WebError> {
    let elevated = sudo.require(Action::ManageTokenPolicy, PAGE)?;
    let policy = token_policy_store::find(&state.db.pool, elevated.account_id()).await?;
    render(&form(&elevated, &policy, FieldErrors::default()))
}

pub async fn save(
    State(state): State<AppState>,
    sudo: Sudo,
    ClientIp(ip): ClientIp,
    form_data: Form,
) -> Result<Response, WebError> {
    let elevated = sudo.require(Action::ManageTokenPolicy, PAGE)?;
    let parsed = token_policy::parse_form(
        form_data.text("max_lifetime_days"),
        form_data.has("require_expiry"),
        form_data.has("no_global_user_tokens"),
        form_data.has("automation_needs_allowlist"),
        form_data.text("inactivity_days"),
    );
    let policy = match parsed {
        Ok(policy) => policy,
        Err(errors) => {
            // Show the form as typed, with its messages.
            let mut page = form(
                &elevated,
                &TokenPolicy::default(),
                errors.into_iter().collect(),
            );
            page.max_lifetime_days = form_data.text("max_lifetime_days").to_owned();
            page.require_expiry = form_data.has("require_expiry");
            page.no_global_user_tokens = form_data.has("no_global_user_tokens");
            page.automation_needs_allowlist = form_data.has("automation_needs_allowlist");
            page.inactivity_days = form_data.text("inactivity_days").to_owned();
            return render_with(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
    };
    account_security::update_token_policy(
        &state,
        elevated.account_id(),
        elevated.user_id(),
        &policy,
        &ip,
    )
    .await?;
    Ok(Redirect::to("/account/security?done=token-policy").into_response())
}
