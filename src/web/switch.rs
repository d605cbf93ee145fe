//! The account switcher in the header: a user who belongs to several accounts makes
//! another one current. No new sign-in; every page then follows the new account.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::Router;

use super::error::WebError;
use super::session::{self, SignedIn};
use crate::domain::access::{Action, Principal, ServiceAccess};
use crate::domain::ids::AccountId;
use crate::http::Form;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/account/switch", post(switch))
}

pub async fn switch(
    State(state): State<AppState>,
    signed_in: SignedIn,
    form: Form,
) -> Result<Response, WebError> {
    let target = AccountId::from_raw(form.text("account_id"));
    let Some(role) =
        session::switch_account(&state, &signed_in.session, signed_in.user_id(), &target).await?
    else {
        return Err(WebError::Forbidden(
            "You are not a member of that account.".into(),
        ));
    };
    // Stay in the same part of the panel when the new role may open it there (which
    // depends on the role alone).
    let actor = Principal {
        account_id: target.clone(),
        role,
        user_id: Some(signed_in.user_id().clone()),
        token: None,
        services: ServiceAccess::All,
    };
    let next = match form.text("next") {
        "/account/account-tokens" if actor.may(Action::ViewAccountTokens) => {
            "/account/account-tokens"
        }
        "/account/users" if actor.may(Action::ViewUsers) => "/account/users",
        "/account/services" if actor.may(Action::ViewServices) => "/account/services",
        _ => "/account/tokens",
    };
    Ok(Redirect::to(next).into_response())
}
