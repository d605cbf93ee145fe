//! The Users page: every member of the account.

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::{member_row, MemberRow};
use crate::db::service_store;
use crate::db::{invitation_store, member_store};
use crate::domain::access::Action;
use crate::domain::ids::InvitationId;
use crate::http::Form;
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::page::{date_time, render, Layout, Section};
use crate::web::session::SignedIn;

/// A pending invitation as the Users page lists it.
pub struct InvitationRow {
    pub id: InvitationId,
    pub email: String,
    pub role: &'static str,
    /// The inviting superuser's name, while they are a member.
    pub invited_by: String,
    pub expires: String,
    pub expired: bool,
    /// The count of links made, posted back by the re-issue form.
    pub issued: i64,
}

#[derive(Template)]
#[template(path = "users/list.html")]
struct ListPage {
    layout: Layout,
    members: Vec<MemberRow>,
    invitations: Vec<InvitationRow>,
    notice: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    signed_in: SignedIn,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<Response, WebError> {
    signed_in.require(Action::ViewUsers)?;
    let account_id = signed_in.account_id();
    let names = service_store::list(&state.db.pool, account_id).await?;
    let mut limits =
        member_store::service_permissions_in_account(&state.db.pool, account_id).await?;
    let summaries = member_store::summaries(&state.db.pool, account_id).await?;
    let now = state.clock.unix();
    let invitations = invitation_store::list(&state.db.pool, account_id)
        .await?
        .into_iter()
        .map(|i| InvitationRow {
            invited_by: i
                .invited_by
                .as_ref()
                .and_then(|by| summaries.iter().find(|m| m.user_id == *by))
                .map(|m| m.name.clone())
                .unwrap_or_else(|| "A former member".to_owned()),
            id: i.id,
            email: i.email,
            role: i.role.label(),
            expires: date_time(i.expires_at),
            expired: i.expires_at <= now,
            issued: i.issued,
        })
        .collect();
    let rows = summaries
        .iter()
        .map(|m| {
            let theirs = limits.remove(&m.user_id).unwrap_or_default();
            member_row(m, signed_in.user_id(), &names, theirs)
        })
        .collect();
    let notice = Form::from_query(raw.as_deref())
        .ok()
        .and_then(|f| match f.text("done") {
            "removed" => Some("The member was removed from this account.".to_owned()),
            "deleted" => Some("The user was deleted.".to_owned()),
            "revoked" => Some("The invitation was revoked.".to_owned()),
            _ => None,
        });
    render(&ListPage {
        layout: signed_in.layout("Users", Section::Users),
        members: rows,
        invitations,
        notice,
    })
}
