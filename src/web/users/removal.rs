//! Removing a member from the account, or deleting the user altogether.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::{
    acting, elevated_for_member, membership_failure, one_member_row, tokens_link, MemberRow,
};
use crate::db::member_store;
use crate::domain::ids::UserId;
use crate::domain::member_rules::MemberError;
use crate::http::{ClientIp, Form};
use crate::ops::membership::{self, MembershipError};
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::page::{render, render_with, Layout, Section};
use crate::web::session::SignedIn;
use crate::web::sudo::Sudo;

#[derive(Template)]
#[template(path = "users/confirm.html")]
struct ConfirmPage {
    layout: Layout,
    member: MemberRow,
    /// "remove" or "delete".
    action: &'static str,
    refusal: Option<String>,
    tokens_link: Option<String>,
}

async fn confirm(
    state: &AppState,
    signed_in: &SignedIn,
    id: &UserId,
    action: &'static str,
    refused: Option<MemberError>,
) -> Result<ConfirmPage, WebError> {
    let account_id = signed_in.account_id();
    let member = member_store::summary(&state.db.pool, account_id, id)
        .await?
        .ok_or(WebError::NotFound)?;
    let refused = match refused {
        Some(r) => Some(r),
        None => membership::refusal(state, account_id, &member, action == "delete").await?,
    };
    let tokens_link = matches!(refused, Some(MemberError::HasTokens(_))).then(|| tokens_link(id));
    let row = one_member_row(state, signed_in, &member).await?;
    Ok(ConfirmPage {
        layout: signed_in.layout(
            if action == "delete" {
                "Delete user"
            } else {
                "Remove from account"
            },
            Section::Users,
        ),
        member: row,
        action,
        refusal: refused.map(|r| r.message()),
        tokens_link,
    })
}

pub async fn confirm_remove(
    State(state): State<AppState>,
    sudo: Sudo,
    Path(id): Path<UserId>,
) -> Result<Response, WebError> {
    let signed_in =
        elevated_for_member(&state, sudo, &id, &format!("/account/users/{id}/remove")).await?;
    render(&confirm(&state, &signed_in, &id, "remove", None).await?)
}

pub async fn confirm_delete(
    State(state): State<AppState>,
    sudo: Sudo,
    Path(id): Path<UserId>,
) -> Result<Response, WebError> {
    let signed_in =
        elevated_for_member(&state, sudo, &id, &format!("/account/users/{id}/delete")).await?;
    render(&confirm(&state, &signed_in, &id, "delete", None).await?)
}

/// Removes the member from the account and, when `delete`, deletes the user as well.
async fn end_membership(
    state: &AppState,
    signed_in: &SignedIn,
    ip: &str,
    id: UserId,
    delete: bool,
) -> Result<Response, WebError> {
    match membership::end_membership(state, acting(signed_in, ip), &id, delete).await {
        Ok(()) => {
            let done = if delete { "deleted" } else { "removed" };
            Ok(Redirect::to(&format!("/account/users?done={done}")).into_response())
        }
        Err(MembershipError::Refused(refused)) => {
            let action = if delete { "delete" } else { "remove" };
            let page = confirm(state, signed_in, &id, action, Some(refused)).await?;
            render_with(StatusCode::CONFLICT, &page)
        }
        Err(e) => Err(membership_failure(e)),
    }
}

pub async fn remove(
    State(state): State<AppState>,
    sudo: Sudo,
    ClientIp(ip): ClientIp,
    Path(id): Path<UserId>,
    _form: Form,
) -> Result<Response, WebError> {
    let signed_in =
        elevated_for_member(&state, sudo, &id, &format!("/account/users/{id}/remove")).await?;
    end_membership(&state, &signed_in, &ip, id, false).await
}

pub async fn delete(
    State(state): State<AppState>,
    sudo: Sudo,
    ClientIp(ip): ClientIp,
    Path(id): Path<UserId>,
    _form: Form,
) -> Result<Response, WebError> {
    let signed_in =
        elevated_for_member(&state, sudo, &id, &format!("/account/users/{id}/delete")).await?;
    end_membership(&state, &signed_in, &ip, id, true).await
}
