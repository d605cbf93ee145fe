//! Services: list, create, rename, delete. Superusers manage every service; engineers
//! see the services they may access and manage those where their permission is `full`
//! (every service, when they are not limited). Services are what token access and
//! purge scopes refer to.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use super::error::WebError;
use super::form::Form;
use super::page::{date, render, render_with, Layout, Section};
use super::session::{ClientIp, SignedIn};
use crate::app::AppState;
use crate::db::accounts::{self, Service};
use crate::db::events::{self, NewEvent};
use crate::db::is_unique_violation;
use crate::db::services as store;
use crate::domain::admin::Action;
use crate::domain::{random, validate};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/account/services", get(list).post(create))
        .route("/account/services/{id}", get(edit).post(rename))
        .route(
            "/account/services/{id}/delete",
            get(confirm_delete).post(delete),
        )
}

fn permission_label(signed_in: &SignedIn, service_id: &str) -> &'static str {
    use crate::domain::roles::ServicePermission as P;
    match signed_in.actor.services.permission(service_id) {
        Some(P::Full) => "Full access",
        Some(P::ReadOnly) => "Read only",
        Some(P::PurgeSelect) => "Purge select content",
        Some(P::PurgeAll) => "Purge full cache",
        None => "No access",
    }
}

pub struct ServiceRow {
    pub id: String,
    pub name: String,
    pub created: String,
    pub permission: &'static str,
    pub manageable: bool,
}

#[derive(Template)]
#[template(path = "services/list.html")]
struct ListPage {
    layout: Layout,
    services: Vec<ServiceRow>,
    /// Show each service's permission (a limited engineer's view).
    show_permission: bool,
    can_create: bool,
    name: String,
    error: Option<String>,
    notice: Option<String>,
}

async fn list_page(
    state: &AppState,
    signed_in: &SignedIn,
    name: String,
    error: Option<String>,
    notice: Option<String>,
) -> Result<ListPage, WebError> {
    let services = accounts::services(&state.db.pool, signed_in.account_id())
        .await?
        .into_iter()
        .filter(|s| signed_in.actor.may_see_service(&s.id))
        .map(|s| ServiceRow {
            permission: permission_label(signed_in, &s.id),
            manageable: signed_in.actor.may_manage_service(&s.id),
            created: date(s.created_at),
            id: s.id,
            name: s.name,
        })
        .collect();
    Ok(ListPage {
        layout: signed_in.layout("Services", Section::Services),
        services,
        show_permission: signed_in.actor.services.is_limited(),
        can_create: signed_in.actor.may(Action::CreateServices),
        name,
        error,
        notice,
    })
}

fn forbid(signed_in: &SignedIn, action: Action) -> Result<(), WebError> {
    signed_in
        .actor
        .check(action)
        .map_err(|d| WebError::Forbidden(d.message()))
}

pub async fn list(
    State(state): State<AppState>,
    signed_in: SignedIn,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    forbid(&signed_in, Action::ViewServices)?;
    let notice = Form::parse(raw.unwrap_or_default().as_bytes())
        .ok()
        .and_then(|f| match f.text("done") {
            "created" => Some("The service was created.".to_owned()),
            "renamed" => Some("The service was renamed.".to_owned()),
            "deleted" => Some("The service was deleted.".to_owned()),
            _ => None,
        });
    render(&list_page(&state, &signed_in, String::new(), None, notice).await?)
}

const NAME_TAKEN: &str = "A service with this name already exists in this account.";

pub async fn create(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ClientIp(ip): ClientIp,
    form: Form,
) -> Result<Response, WebError> {
    forbid(&signed_in, Action::CreateServices)?;
    let typed = form.text("name").to_owned();
    let name = match validate::name(&typed, "Name") {
        Ok(name) => name,
        Err(e) => {
            let page = list_page(&state, &signed_in, typed, Some(e), None).await?;
            return render_with(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
    };
    let account_id = signed_in.account_id();
    let id = random::id();
    let now = state.clock.unix();
    let mut tx = state.db.pool.begin().await?;
    if let Err(e) = accounts::create_service(&mut *tx, &id, account_id, &name, now).await {
        if is_unique_violation(&e) {
            tx.rollback().await?;
            let page = list_page(&state, &signed_in, typed, Some(NAME_TAKEN.into()), None).await?;
            return render_with(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
        return Err(e.into());
    }
    let event = NewEvent {
        account_id: Some(account_id),
        event_type: "service.create",
        actor_id: Some(signed_in.user_id()),
        service_id: Some(&id),
        ip: Some(&ip),
        description: format!("Created service {name:?}"),
        metadata: Some(serde_json::json!({ "name": name })),
        ..NewEvent::default()
    };
    events::record(&mut *tx, &event, now).await?;
    tx.commit().await?;
    Ok(Redirect::to("/account/services?done=created").into_response())
}

/// The service, when it is the account's (404 otherwise) and the member may manage it
/// (403 otherwise).
async fn manageable(state: &AppState, signed_in: &SignedIn, id: &str) -> Result<Service, WebError> {
    forbid(signed_in, Action::ViewServices)?;
    let service = store::find(&state.db.pool, signed_in.account_id(), id)
        .await?
        .ok_or(WebError::NotFound)?;
    if !signed_in.actor.may_manage_service(&service.id) {
        return Err(WebError::Forbidden(
            "You may not change this service: that needs full access to it.".into(),
        ));
    }
    Ok(service)
}

#[derive(Template)]
#[template(path = "services/edit.html")]
struct EditPage {
    layout: Layout,
    service: ServiceRow,
    name: String,
    error: Option<String>,
}

fn edit_page(
    signed_in: &SignedIn,
    service: Service,
    name: String,
    error: Option<String>,
) -> EditPage {
    EditPage {
        layout: signed_in.layout(format!("Service {}", service.name), Section::Services),
        service: ServiceRow {
            permission: permission_label(signed_in, &service.id),
            manageable: true,
            created: date(service.created_at),
            id: service.id,
            name: service.name,
        },
        name,
        error,
    }
}

pub async fn edit(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let service = manageable(&state, &signed_in, &id).await?;
    let name = service.name.clone();
    render(&edit_page(&signed_in, service, name, None))
}

pub async fn rename(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    form: Form,
) -> Result<Response, WebError> {
    let service = manageable(&state, &signed_in, &id).await?;
    let typed = form.text("name").to_owned();
    let name = match validate::name(&typed, "Name") {
        Ok(name) => name,
        Err(e) => {
            let page = edit_page(&signed_in, service, typed, Some(e));
            return render_with(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
    };
    if name == service.name {
        return Ok(Redirect::to("/account/services").into_response());
    }
    let account_id = signed_in.account_id();
    let now = state.clock.unix();
    let mut tx = state.db.pool.begin().await?;
    match store::rename(&mut *tx, account_id, &id, &name).await {
        Ok(true) => {}
        Ok(false) => return Err(WebError::NotFound),
        Err(e) if is_unique_violation(&e) => {
            tx.rollback().await?;
            let page = edit_page(&signed_in, service, typed, Some(NAME_TAKEN.into()));
            return render_with(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
        Err(e) => return Err(e.into()),
    }
    let event = NewEvent {
        account_id: Some(account_id),
        event_type: "service.update",
        actor_id: Some(signed_in.user_id()),
        service_id: Some(&id),
        ip: Some(&ip),
        description: format!("Renamed service {:?} to {name:?}", service.name),
        metadata: Some(serde_json::json!({ "name": { "from": service.name, "to": name } })),
        ..NewEvent::default()
    };
    events::record(&mut *tx, &event, now).await?;
    tx.commit().await?;
    Ok(Redirect::to("/account/services?done=renamed").into_response())
}

#[derive(Template)]
#[template(path = "services/confirm_delete.html")]
struct ConfirmPage {
    layout: Layout,
    service: ServiceRow,
    refusal: Option<String>,
}

/// Deleting a service must never widen a grant: a token or an engineer limited to this
/// service alone would, without it, be left with no service rows, which means "all
/// services". Such deletions are refused until those are changed.
fn refusal(tokens: i64, members: i64) -> Option<String> {
    let mut reasons = Vec::new();
    if tokens > 0 {
        let what = if tokens == 1 {
            "token is"
        } else {
            "tokens are"
        };
        reasons.push(format!(
            "{tokens} {what} limited to this service alone; delete them first (see Account tokens)"
        ));
    }
    if members > 0 {
        let what = if members == 1 {
            "engineer is"
        } else {
            "engineers are"
        };
        reasons.push(format!(
            "{members} {what} limited to this service alone; change their service access first (see Users)"
        ));
    }
    (!reasons.is_empty())
        .then(|| format!("This service cannot be deleted: {}.", reasons.join("; ")))
}

pub async fn confirm_delete(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let service = manageable(&state, &signed_in, &id).await?;
    let tokens = store::tokens_limited_to_only(&state.db.pool, &id).await?;
    let members = store::members_limited_to_only(&state.db.pool, &id).await?;
    let page = edit_page(&signed_in, service, String::new(), None);
    render(&ConfirmPage {
        layout: signed_in.layout("Delete service", Section::Services),
        service: page.service,
        refusal: refusal(tokens, members),
    })
}

pub async fn delete(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    _form: Form,
) -> Result<Response, WebError> {
    let service = manageable(&state, &signed_in, &id).await?;
    let account_id = signed_in.account_id();
    let now = state.clock.unix();
    let mut tx = state.db.pool.begin().await?;
    if !store::lock(&mut tx, state.db.backend, account_id, &id).await? {
        return Err(WebError::NotFound);
    }
    let tokens = store::tokens_limited_to_only(&mut *tx, &id).await?;
    let limited = store::members_limited_to_only(&mut *tx, &id).await?;
    if let Some(message) = refusal(tokens, limited) {
        tx.rollback().await?;
        let page = edit_page(&signed_in, service, String::new(), None);
        return render_with(
            StatusCode::CONFLICT,
            &ConfirmPage {
                layout: signed_in.layout("Delete service", Section::Services),
                service: page.service,
                refusal: Some(message),
            },
        );
    }
    store::delete(&mut *tx, account_id, &id).await?;
    let event = NewEvent {
        account_id: Some(account_id),
        event_type: "service.delete",
        actor_id: Some(signed_in.user_id()),
        service_id: Some(&id),
        ip: Some(&ip),
        description: format!("Deleted service {:?}", service.name),
        metadata: Some(serde_json::json!({ "name": service.name })),
        ..NewEvent::default()
    };
    events::record(&mut *tx, &event, now).await?;
    tx.commit().await?;
    Ok(Redirect::to("/account/services?done=deleted").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_what_blocks_deletion() {
        assert_eq!(refusal(0, 0), None);
        let both = refusal(2, 1).unwrap();
        assert!(both.contains("2 tokens are limited"));
        assert!(both.contains("1 engineer is limited"));
        assert!(refusal(1, 0).unwrap().contains("1 token is limited"));
    }
}
