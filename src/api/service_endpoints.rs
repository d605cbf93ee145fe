//! Services and purging: the endpoints that exercise scopes and per-service
//! permissions. There is no cache behind the purges; each records an event.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;

use super::api_error::{ApiError, ApiResult};
use super::caller::Caller;
use super::fields::Fields;
use super::{json, timestamp};
use crate::db::service_store::{self, Service};
use crate::domain::access::Action;
use crate::domain::event_type::EventType;
use crate::domain::ids::{AccountId, ServiceId};
use crate::domain::random;
use crate::ops::service_catalog::{self, Purge};
use crate::state::AppState;

/// Surrogate keys one batch purge may name, as Fastly allows.
pub const MAX_KEYS: usize = 256;
const MAX_KEY_BYTES: usize = 1024;

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct ServiceJson {
    id: ServiceId,
    name: String,
    customer_id: AccountId,
    created_at: String,
}

fn service_json(s: &Service) -> ServiceJson {
    ServiceJson {
        id: s.id.clone(),
        name: s.name.clone(),
        customer_id: s.account_id.clone(),
        created_at: timestamp(s.created_at),
    }
}

/// The services the token may read, limited to its own services and, for a limited
/// engineer, to theirs.
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.require(Action::ReadAccount)?;
    let all = service_store::list(&state.db.pool, caller.account_id()).await?;
    let visible: Vec<ServiceJson> = all
        .iter()
        .filter(|s| caller.principal.may(Action::ReadService(&s.id)))
        .map(service_json)
        .collect();
    Ok(json(StatusCode::OK, &visible))
}

/// What a service endpoint does to its service.
#[derive(Debug, Clone, Copy)]
enum On {
    Read,
    PurgeAll,
    PurgeSelect,
}

impl On {
    fn action(self, service: &ServiceId) -> Action<'_> {
        match self {
            On::Read => Action::ReadService(service),
            On::PurgeAll => Action::PurgeAll(service),
            On::PurgeSelect => Action::PurgeSelect(service),
        }
    }
}

/// The service `id` of the caller's account, once `on` is allowed on it.
async fn authorized_service(
    state: &AppState,
    caller: &Caller,
    id: ServiceId,
    on: On,
) -> ApiResult<Service> {
    let service = service_store::find(&state.db.pool, caller.account_id(), &id)
        .await?
        .ok_or_else(|| ApiError::not_found("Record not found").with_detail(id.to_string()))?;
    caller.require(on.action(&service.id))?;
    Ok(service)
}

pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<ServiceId>,
) -> ApiResult<Response> {
    let service = authorized_service(&state, &caller, id, On::Read).await?;
    Ok(json(StatusCode::OK, &service_json(&service)))
}

/// A service with its versions, as `GET /service/{id}/details` shows it. The panel keeps
/// no configuration versions, so the list is empty and `version` / `active_version`
/// are left out (the clients read them as "none").
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct ServiceDetailJson {
    #[serde(flatten)]
    service: ServiceJson,
    /// Always empty: the panel keeps no configuration versions.
    #[schema(value_type = Vec<Object>)]
    versions: [(); 0],
}

pub async fn details(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<ServiceId>,
) -> ApiResult<Response> {
    let service = authorized_service(&state, &caller, id, On::Read).await?;
    Ok(json(
        StatusCode::OK,
        &ServiceDetailJson {
            service: service_json(&service),
            versions: [],
        },
    ))
}

fn soft(headers: &HeaderMap) -> bool {
    headers
        .get("fastly-soft-purge")
        .is_some_and(|v| v.as_bytes() == b"1")
}

async fn record(
    state: &AppState,
    caller: &Caller,
    service: &Service,
    event_type: EventType,
    description: String,
    metadata: serde_json::Value,
) -> ApiResult<()> {
    let purge = Purge {
        event_type,
        description,
        metadata,
        actor: caller.user_id(),
        token: &caller.token_id,
        ip: &caller.ip,
    };
    Ok(service_catalog::record_purge(state, service, purge).await?)
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = PurgeStatus)]
pub(super) struct Status {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
}

pub async fn purge_all(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<ServiceId>,
) -> ApiResult<Response> {
    let service = authorized_service(&state, &caller, id, On::PurgeAll).await?;
    record(
        &state,
        &caller,
        &service,
        EventType::ServicePurgeAll,
        format!("Purged all content of {}", service.name),
        serde_json::json!({ "soft": soft(&headers) }),
    )
    .await?;
    Ok(json(
        StatusCode::OK,
        &Status {
            status: "ok",
            id: None,
        },
    ))
}

/// Keys an event keeps of one purge, and the bytes it keeps of each: a purge may name
/// 256 keys of 1 KiB, which the event log need not hold.
const KEYS_RECORDED: usize = 20;
const KEY_BYTES_RECORDED: usize = 256;

/// `key`, cut to at most `KEY_BYTES_RECORDED` bytes on a character boundary.
fn recorded_key(key: &str) -> &str {
    let mut end = key.len().min(KEY_BYTES_RECORDED);
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    &key[..end]
}

/// What a purge event keeps of the keys: how many, and the first few (cut short) with
/// their purge ids.
fn keys_summary(ids: &BTreeMap<String, String>, soft: bool) -> serde_json::Value {
    let first: serde_json::Map<String, serde_json::Value> = ids
        .iter()
        .take(KEYS_RECORDED)
        .map(|(key, id)| (recorded_key(key).to_owned(), id.clone().into()))
        .collect();
    serde_json::json!({ "key_count": ids.len(), "purge_ids": first, "soft": soft })
}

fn check_key(key: &str) -> ApiResult<()> {
    if key.is_empty()
        || key.len() > MAX_KEY_BYTES
        || key.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ApiError::bad_request(format!(
            "A surrogate key is 1 to {MAX_KEY_BYTES} bytes without spaces."
        ))
        .with_detail(key.chars().take(64).collect::<String>()));
    }
    Ok(())
}

pub async fn purge_key(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((id, key)): Path<(ServiceId, String)>,
) -> ApiResult<Response> {
    let service = authorized_service(&state, &caller, id, On::PurgeSelect).await?;
    check_key(&key)?;
    let purge_id = random::id();
    let ids = BTreeMap::from([(key.clone(), purge_id.clone())]);
    record(
        &state,
        &caller,
        &service,
        EventType::ServicePurge,
        format!(
            "Purged surrogate key {:?} of {}",
            recorded_key(&key),
            service.name
        ),
        keys_summary(&ids, soft(&headers)),
    )
    .await?;
    Ok(json(
        StatusCode::OK,
        &Status {
            status: "ok",
            id: Some(purge_id),
        },
    ))
}

/// Keys from the `Surrogate-Key` header (space-separated), else `surrogate_keys`.
fn requested_keys(headers: &HeaderMap, fields: &Fields) -> ApiResult<Vec<String>> {
    let keys: Vec<String> = match headers.get("surrogate-key") {
        Some(value) => value
            .to_str()
            .map_err(|_| ApiError::bad_request("The Surrogate-Key header is not valid text."))?
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        None => fields.list("surrogate_keys").unwrap_or_default(),
    };
    if keys.is_empty() {
        return Err(ApiError::bad_request(
            "Send surrogate keys in the Surrogate-Key header or as surrogate_keys.",
        ));
    }
    if keys.len() > MAX_KEYS {
        return Err(ApiError::bad_request(format!(
            "At most {MAX_KEYS} surrogate keys may be purged at once."
        ))
        .with_detail(format!("{} keys sent", keys.len())));
    }
    for key in &keys {
        check_key(key)?;
    }
    Ok(keys)
}

pub async fn purge_keys(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<ServiceId>,
    fields: Fields,
) -> ApiResult<Response> {
    let service = authorized_service(&state, &caller, id, On::PurgeSelect).await?;
    let keys = requested_keys(&headers, &fields)?;
    let ids: BTreeMap<String, String> = keys.iter().map(|k| (k.clone(), random::id())).collect();
    record(
        &state,
        &caller,
        &service,
        EventType::ServicePurge,
        format!("Purged {} surrogate keys of {}", ids.len(), service.name),
        keys_summary(&ids, soft(&headers)),
    )
    .await?;
    Ok(json(StatusCode::OK, &ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_events_keep_a_bounded_summary() {
        let ids: BTreeMap<String, String> = (0..256)
            .map(|i| (format!("{i:03}{}", "é".repeat(600)), format!("id{i}")))
            .collect();
        let summary = keys_summary(&ids, false);
        assert_eq!(summary["key_count"], 256);
        let kept = summary["purge_ids"].as_object().unwrap();
        assert_eq!(kept.len(), KEYS_RECORDED);
        assert!(kept.keys().all(|k| k.len() <= KEY_BYTES_RECORDED));
        assert!(summary.to_string().len() < 8 * 1024);
        assert_eq!(recorded_key("short"), "short");
    }
}
