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
use super::page::{date, render, render_with, Layout, Section};
use super::session::SignedIn;
use super::sudo::Sudo;
use crate::db::service_store::{self, Service};
use crate::domain::access::Action;
use crate::domain::ids::ServiceId;
use crate::domain::validate;
use crate::http::{ClientIp, Form};
use crate::ops::service_catalog::{self, CatalogError};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/account/services", get(list).post(create))
        .route("/account/services/{id}", get(edit).post(rename))
        .route(
            "/account/services/{id}/delete",
            get(confirm_delete).post(delete),
        )
}

fn permission_label(signed_in: &SignedIn, service_id: &ServiceId) -> &'static str {
    signed_in
        .principal
        .services
        .permission(service_id)
        .map_or("No access", |p| p.label())
}

pub struct ServiceRow {
    pub id: ServiceId,
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
    let services = service_store::list(&state.db.pool, signed_in.account_id())
        .await?
        .into_iter()
        .filter(|s| signed_in.may(Action::ReadService(&s.id)))
        .map(|s| ServiceRow {
            permission: permission_label(signed_in, &s.id),
            manageable: signed_in.may(Action::ManageService(&s.id)),
            created: date(s.created_at),
            id: s.id,
            name: s.name,
        })
        .collect();
    Ok(ListPage {
        layout: signed_in.layout("Services", Section::Services),
        services,
        show_permission: signed_in.principal.services.is_limited(),
        can_create: signed_in.may(Action::CreateServices),
        name,
        error,
        notice,
    })
}

pub async fn list(
    State(state): State<AppState>,
    signed_in: SignedIn,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    signed_in.require(Action::ViewServices)?;
    let notice = Form::from_query(raw.as_deref())
        .ok()
        .and_then(|f| match f.text("done") {
            "created" => Some("The service was created.".to_owned()),
            "renamed" => Some("The service was renamed.".to_owned()),
            "deleted" => Some("The service was deleted.".to_owned()),
            _ => None,
        });
    render(&list_page(&state, &signed_in, String::new(), None, notice).await?)
}

pub async fn create(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ClientIp(ip): ClientIp,
    form: Form,
) -> Result<Response, WebError> {
    signed_in.require(Action::CreateServices)?;
    let typed = form.text("name").to_owned();
    let refused = match validate::name(&typed, "Name") {
        Err(e) => e,
        Ok(name) => {
            match service_catalog::create(
                &state,
                signed_in.account_id(),
                signed_in.user_id(),
                &name,
                &ip,
            )
            .await
            {
                Ok(_) => return Ok(Redirect::to("/account/services?done=created").into_response()),
                Err(CatalogError::NameTaken) => CatalogError::NAME_TAKEN.to_owned(),
                Err(e) => return Err(catalog_failure(e)),
            }
        }
    };
    let page = list_page(&state, &signed_in, typed, Some(refused), None).await?;
    render_with(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

/// The service, when it is the account's (404 otherwise) and the member may manage it
/// (403 otherwise).
async fn manageable(
    state: &AppState,
    signed_in: &SignedIn,
    id: ServiceId,
) -> Result<Service, WebError> {
    signed_in.require(Action::ViewServices)?;
    let service = service_store::find(&state.db.pool, signed_in.account_id(), &id)
        .await?
        .ok_or(WebError::NotFound)?;
    signed_in.require(Action::ManageService(&service.id))?;
    Ok(service)
}

/// What an operation's failure becomes when the page has no form to show it on.
fn catalog_failure(e: CatalogError) -> WebError {
    match e {
        CatalogError::Database(e) => e.into(),
        CatalogError::NotFound | CatalogError::NameTaken | CatalogError::InUse(_) => {
            WebError::NotFound
        }
    }
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
    Path(id): Path<ServiceId>,
) -> Result<Response, WebError> {
    let service = manageable(&state, &signed_in, id).await?;
    let name = service.name.clone();
    render(&edit_page(&signed_in, service, name, None))
}

pub async fn rename(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ClientIp(ip): ClientIp,
    Path(id): Path<ServiceId>,
    form: Form,
) -> Result<Response, WebError> {
    let service = manageable(&state, &signed_in, id).await?;
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
    match service_catalog::rename(&state, &service, signed_in.user_id(), &name, &ip).await {
        Ok(()) => Ok(Redirect::to("/account/services?done=renamed").into_response()),
        Err(CatalogError::NameTaken) => {
            let page = edit_page(
                &signed_in,
                service,
                typed,
                Some(CatalogError::NAME_TAKEN.into()),
            );
            render_with(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Err(e) => Err(catalog_failure(e)),
    }
}

#[derive(Template)]
#[template(path = "services/confirm_delete.html")]
struct ConfirmPage {
    layout: Layout,
    service: ServiceRow,
    refusal: Option<String>,
}

pub async fn confirm_delete(
    State(state): State<AppState>,
    sudo: Sudo,
    Path(id): Path<ServiceId>,
) -> Result<Response, WebError> {
    // Who may not manage the service is refused before sudo mode is asked for.
    let service = manageable(&state, sudo.signed_in(), id).await?;
    let signed_in = sudo.elevated(&format!("/account/services/{}/delete", service.id))?;
    let in_use = service_catalog::in_use(&state, &service.id).await?;
    let page = edit_page(&signed_in, service, String::new(), None);
    render(&ConfirmPage {
        layout: signed_in.layout("Delete service", Section::Services),
        service: page.service,
        refusal: in_use.refusal(),
    })
}

pub async fn delete(
    State(state): State<AppState>,
    sudo: Sudo,
    ClientIp(ip): ClientIp,
    Path(id): Path<ServiceId>,
    _form: Form,
) -> Result<Response, WebError> {
    let service = manageable(&state, sudo.signed_in(), id).await?;
    let signed_in = sudo.elevated(&format!("/account/services/{}/delete", service.id))?;
    match service_catalog::delete(&state, &service, signed_in.user_id(), &ip).await {
        Ok(()) => Ok(Redirect::to("/account/services?done=deleted").into_response()),
        Err(CatalogError::InUse(in_use)) => {
            let page = edit_page(&signed_in, service, String::new(), None);
            render_with(
                StatusCode::CONFLICT,
                &ConfirmPage {
                    layout: signed_in.layout("Delete service", Section::Services),
                    service: page.service,
                    refusal: in_use.refusal(),
                },
            )
        }
        Err(e) => Err(catalog_failure(e)),
    }
}
