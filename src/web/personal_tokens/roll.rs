//! Rolling a token (behind sudo mode): the choice of overlap, then the new secret,
//! shown once on the same page as a new token's. One's own tokens from Personal
//! tokens; automation tokens from Account tokens (superusers).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::create::CreatedPage;
use crate::db::token_store::{self, Token};
use crate::domain::access::Action;
use crate::domain::ids::TokenId;
use crate::domain::secret::TokenKind;
use crate::http::{ClientIp, Form};
use crate::ops::token_lifecycle::{self, IssueError, RollExpiry, RollRequest};
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::page::{date, date_time, render, render_with, Layout, Section};
use crate::web::session::SignedIn;
use crate::web::sudo::Sudo;

/// The overlaps on offer: (form value, label, seconds).
const OVERLAPS: [(&str, &str, i64); 4] = [
    ("none", "None: the old secret stops working now", 0),
    ("1h", "1 hour", 3600),
    ("24h", "24 hours", 86_400),
    ("7d", "7 days", 7 * 86_400),
];

pub struct OverlapOption {
    pub value: &'static str,
    pub label: &'static str,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "tokens/roll.html")]
struct RollPage {
    layout: Layout,
    id: TokenId,
    name: String,
    automation: bool,
    overlaps: Vec<OverlapOption>,
    new_expiry: String,
    back: &'static str,
    error: Option<String>,
}

fn back(token: &Token) -> (&'static str, Section) {
    match token.kind {
        TokenKind::User => ("/account/tokens", Section::PersonalTokens),
        TokenKind::Automation => ("/account/account-tokens", Section::AccountTokens),
    }
}

/// The token, when the member may roll it: 404 for what they may not even see, 403
/// for what they see but may not roll; then sudo mode.
async fn rollable(
    state: &AppState,
    sudo: Sudo,
    id: &TokenId,
) -> Result<(SignedIn, Token), WebError> {
    let signed_in = sudo.signed_in();
    let now = state.clock.unix();
    let token = token_store::find_in_account(&state.db.pool, signed_in.account_id(), id, now)
        .await?
        .filter(|t| signed_in.may(Action::ReadToken(t.facts())))
        .ok_or(WebError::NotFound)?;
    let elevated = sudo.require(
        Action::RollToken(token.facts()),
        &format!("/account/tokens/{id}/roll"),
    )?;
    Ok((elevated.into_signed_in(), token))
}

fn page(
    state: &AppState,
    signed_in: &SignedIn,
    token: &Token,
    chosen: &str,
    error: Option<String>,
) -> RollPage {
    let now = state.clock.unix();
    let (back, section) = back(token);
    RollPage {
        layout: signed_in.layout(format!("Roll {}", token.name), section),
        id: token.id.clone(),
        name: token.name.clone(),
        automation: token.kind == TokenKind::Automation,
        overlaps: OVERLAPS
            .iter()
            .map(|(value, label, _)| OverlapOption {
                value,
                label,
                checked: *value == chosen,
            })
            .collect(),
        new_expiry: RollExpiry::SameLifetime
            .apply(token.created_at, token.expires_at, now)
            .map(date)
            .unwrap_or_else(|| "Never".to_owned()),
        back,
        error,
    }
}

pub async fn form(
    State(state): State<AppState>,
    sudo: Sudo,
    Path(id): Path<TokenId>,
) -> Result<Response, WebError> {
    let (signed_in, token) = rollable(&state, sudo, &id).await?;
    let error = token
        .replaced_by
        .is_some()
        .then(|| IssueError::NOT_ROLLABLE.to_owned());
    render(&page(&state, &signed_in, &token, "1h", error))
}

pub async fn roll(
    State(state): State<AppState>,
    sudo: Sudo,
    ClientIp(ip): ClientIp,
    Path(id): Path<TokenId>,
    form: Form,
) -> Result<Response, WebError> {
    let (signed_in, token) = rollable(&state, sudo, &id).await?;
    let chosen = form.text("overlap");
    let Some((_, _, overlap)) = OVERLAPS.iter().find(|(value, _, _)| *value == chosen) else {
        let page = page(
            &state,
            &signed_in,
            &token,
            "1h",
            Some("Choose how long the old secret keeps working.".into()),
        );
        return render_with(StatusCode::UNPROCESSABLE_ENTITY, &page);
    };
    let request = RollRequest {
        account_id: signed_in.account_id(),
        token_id: &token.id,
        by: Some(signed_in.user_id()),
        via_token: None,
        overlap_seconds: *overlap,
        expiry: RollExpiry::SameLifetime,
        ip: Some(&ip),
    };
    let issued = match token_lifecycle::roll(&state, &request).await {
        Ok(issued) => issued,
        Err(IssueError::Database(e)) => return Err(e.into()),
        Err(IssueError::NotMember) => {
            return Err(WebError::Forbidden(IssueError::NOT_MEMBER.into()))
        }
        Err(e) => {
            let message = match e {
                IssueError::LimitReached(limit) => IssueError::limit_message(limit),
                IssueError::ServiceGone => IssueError::SERVICE_GONE.to_owned(),
                _ => IssueError::NOT_ROLLABLE.to_owned(),
            };
            let page = page(&state, &signed_in, &token, chosen, Some(message));
            return render_with(StatusCode::CONFLICT, &page);
        }
    };
    let now = state.clock.unix();
    let new = token_store::find_by_id(&state.db.pool, &issued.id).await?;
    let (okay, section) = back(&token);
    let overlap_note = if *overlap == 0 {
        "The old secret no longer works.".to_owned()
    } else {
        format!(
            "The old secret keeps working until {}.",
            date_time((now + overlap).min(token.expires_at.unwrap_or(i64::MAX)))
        )
    };
    let page = CreatedPage {
        layout: signed_in.layout("Token rolled", section),
        okay,
        name: token.name.clone(),
        secret: issued.secret.expose().to_owned(),
        expires: new
            .and_then(|t| t.expires_at)
            .map(date)
            .unwrap_or_else(|| "Never".to_owned()),
        rolled: Some(overlap_note),
    };
    render(&page)
}
