//! Revoking account tokens: one or several, after a confirmation; all or nothing.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::{row, AccountTokenRow, MAX_SELECTED, PATH};
use crate::db::account_token_list::{self as list};
use crate::db::token_store::DeleteScope;
use crate::domain::access::Action;
use crate::domain::ids::TokenId;
use crate::domain::random;
use crate::http::{is_htmx, ClientIp, Form};
use crate::ops::token_lifecycle::{self, Revocation, RevokeError};
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::page::{render, render_with, safe_next};
use crate::web::page::{Layout, Section};
use crate::web::session::SignedIn;
use crate::web::sudo::Sudo;

/// The token ids of a revoke request, and where to go afterwards (a list URL only).
fn selection(form: &Form) -> Result<(Vec<TokenId>, String), WebError> {
    let mut ids: Vec<TokenId> = Vec::new();
    for id in form.all("token") {
        if id.is_empty() || id.len() > 64 || !random::is_base62(id) {
            return Err(WebError::NotFound);
        }
        if !ids.iter().any(|i| *i == *id) {
            ids.push(TokenId::from_raw(id));
        }
    }
    if ids.is_empty() {
        return Err(WebError::BadRequest(
            "Select at least one token to delete.".into(),
        ));
    }
    if ids.len() > MAX_SELECTED {
        return Err(WebError::BadRequest(format!(
            "Select at most {MAX_SELECTED} tokens at a time."
        )));
    }
    let back = safe_next(form.text("back"))
        .filter(|b| {
            *b == PATH
                || *b == super::policy_breaches::PATH
                || b.starts_with("/account/account-tokens?")
        })
        .unwrap_or(PATH)
        .to_owned();
    Ok((ids, back))
}

#[derive(Template)]
#[template(path = "account_tokens/confirm_revoke.html")]
struct ConfirmPage {
    layout: Layout,
    tokens: Vec<AccountTokenRow>,
    back: String,
    csrf: String,
    /// Always None on the page: without htmx a bad selection is an error page. The field
    /// is here because the dialog block, shared with the fragment, reads it.
    refusal: Option<String>,
    /// Another user's (or an automation) token is selected and sudo mode is off: the
    /// form asks for the password (and code).
    reauth: bool,
    needs_code: bool,
    /// Why the last re-authentication failed.
    reauth_error: Option<String>,
}

#[derive(Template)]
#[template(path = "account_tokens/confirm_revoke.html", block = "dialog")]
struct ConfirmFragment<'a> {
    tokens: &'a [AccountTokenRow],
    back: &'a str,
    csrf: &'a str,
    /// Why there is nothing to confirm, shown in the dialog's place.
    refusal: Option<&'a str>,
    reauth: bool,
    needs_code: bool,
    reauth_error: Option<String>,
}

/// Whether revoking these tokens needs sudo mode: any of them is not the member's own
/// user token.
fn needs_sudo(signed_in: &SignedIn, tokens: &[list::Row]) -> bool {
    tokens
        .iter()
        .any(|t| t.token.user_id.as_ref() != Some(signed_in.user_id()))
}

pub async fn confirm_revoke(
    State(state): State<AppState>,
    signed_in: SignedIn,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    signed_in.require(Action::RevokeAccountTokens)?;
    let form = Form::from_query(raw.as_deref()).map_err(WebError::BadRequest)?;
    let (ids, back) = match selection(&form) {
        Ok(selected) => selected,
        // htmx does not swap an error response: answer the dialog with the reason.
        Err(WebError::BadRequest(message)) if is_htmx(&headers) => {
            return render(&ConfirmFragment {
                tokens: &[],
                back: PATH,
                csrf: &signed_in.csrf,
                refusal: Some(message.as_str()),
                reauth: false,
                needs_code: false,
                reauth_error: None,
            })
        }
        Err(e) => return Err(e),
    };
    let found = list::rows(&state.db.pool, signed_in.account_id(), &ids).await?;
    // All or nothing, as the deletion itself: an id of another account, or of a token
    // already gone, makes the whole request unknown.
    if found.len() != ids.len() {
        return Err(WebError::NotFound);
    }
    let reauth = needs_sudo(&signed_in, &found) && signed_in.sudo_left.is_none();
    let tokens = rows_of(&state, &found, &ids).await?;
    if is_htmx(&headers) {
        return render(&ConfirmFragment {
            tokens: &tokens,
            back: &back,
            csrf: &signed_in.csrf,
            refusal: None,
            reauth,
            needs_code: signed_in.member.user.has_two_factor(),
            reauth_error: None,
        });
    }
    confirm_page(&signed_in, tokens, back, reauth, None)
}

async fn rows_of(
    state: &AppState,
    found: &[list::Row],
    ids: &[TokenId],
) -> Result<Vec<AccountTokenRow>, WebError> {
    let now = state.clock.unix();
    let services = list::services_of(&state.db.pool, ids).await?;
    Ok(found
        .iter()
        .map(|t| row(t, services.get(&t.token.id), now))
        .collect())
}

fn confirm_page(
    signed_in: &SignedIn,
    tokens: Vec<AccountTokenRow>,
    back: String,
    reauth: bool,
    reauth_error: Option<String>,
) -> Result<Response, WebError> {
    let title = if tokens.len() == 1 {
        "Delete token".to_owned()
    } else {
        format!("Delete {} tokens", tokens.len())
    };
    let page = ConfirmPage {
        layout: signed_in.layout(title, Section::AccountTokens),
        refusal: None,
        tokens,
        back,
        csrf: signed_in.csrf.clone(),
        reauth,
        needs_code: signed_in.member.user.has_two_factor(),
        reauth_error: reauth_error.clone(),
    };
    if reauth_error.is_some() {
        return render_with(StatusCode::UNAUTHORIZED, &page);
    }
    render(&page)
}

pub async fn revoke(
    State(state): State<AppState>,
    sudo: Sudo,
    ClientIp(ip): ClientIp,
    form: Form,
) -> Result<Response, WebError> {
    sudo.signed_in().require(Action::RevokeAccountTokens)?;
    let (ids, back) = selection(&form)?;
    let found = list::rows(&state.db.pool, sudo.signed_in().account_id(), &ids).await?;
    // Revoking someone else's token needs sudo mode; the dialog asked for the password
    // when it was off. Unknown ids fall through to the all-or-nothing refusal below.
    let signed_in: SignedIn = if found.len() == ids.len() && needs_sudo(sudo.signed_in(), &found) {
        match sudo.inline(&state, &form, &ip).await? {
            Ok(elevated) => elevated.into_signed_in(),
            Err(refused) => {
                let tokens = rows_of(&state, &found, &ids).await?;
                return confirm_page(
                    &refused.signed_in,
                    tokens,
                    back,
                    true,
                    Some(refused.message),
                );
            }
        }
    } else {
        sudo.into_signed_in()
    };
    let revocation = Revocation {
        scope: DeleteScope {
            account_id: signed_in.account_id(),
            owner: None,
            kind: None,
        },
        actor_id: Some(signed_in.user_id()),
        via_token: None,
        reason: if ids.len() == 1 { "superuser" } else { "bulk" },
        ip: Some(&ip),
    };
    match token_lifecycle::revoke(&state, &ids, &revocation).await {
        Ok(()) => {
            let n = ids.len();
            let sep = if back.contains('?') { '&' } else { '?' };
            Ok(Redirect::to(&format!("{back}{sep}deleted={n}")).into_response())
        }
        Err(RevokeError::NotFound(_)) => Ok(crate::web::error::error_page(
            StatusCode::NOT_FOUND,
            "Nothing was deleted: at least one of the selected tokens is not a token of this account, or was deleted already. Go back, reload the list and try again.",
        )),
        Err(RevokeError::Database(e)) => Err(e.into()),
    }
}
