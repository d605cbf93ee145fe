//! The Users page: every member of the account.

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::{member_row, MemberRow};
use crate::db::member_store;
use crate::db::service_store;
use crate::domain::access::Action;
use crate::http::Form;
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::page::{render, Layout, Section};
use crate::web::session::SignedIn;

#[derive(Template)]
#[template(path = "users/list.html")]
struct ListPage {
    layout: Layout,
    members: Vec<MemberRow>,
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
    let rows = member_store::summaries(&state.db.pool, account_id)
        .await?
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
            "added" => Some("The user was added to this account.".to_owned()),
            _ => None,
        });
    render(&ListPage {
        layout: signed_in.layout("Users", Section::Users),
        members: rows,
        notice,
    })
}
