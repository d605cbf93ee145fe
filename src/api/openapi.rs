//! The OpenAPI 3.1 document of the JSON API, served at `GET /openapi.json`. The
//! response shapes come from the response types themselves (`#[derive(ToSchema)]`
//! beside their `Serialize`); the endpoints are listed once below, in router order.
//! A unit test compares this list with the routes in `api/mod.rs` both ways, and the
//! fuzzer in CI (`tests/fuzz/run.sh`) checks the server against it.
//!
//! To document a new endpoint: add an `Endpoint` to `endpoints()` (method, path,
//! summary, the scopes that open it, parameters, body, success answer, error statuses),
//! and derive `utoipa::ToSchema` on its response type and register it in `components()`.

use std::sync::OnceLock;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{ResponseBuilder, ResponsesBuilder};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, RefOr,
    Required, Schema,
};
use utoipa::ToSchema;

use super::api_error::Body as ErrorBody;
use super::automation_tokens::{PageMeta, Paged};
use super::customer_endpoints::CustomerJson;
use super::event_feed::Document as EventPage;
use super::invitations::{Created as InvitationCreated, Listed as InvitationList};
use super::service_endpoints::{ServiceDetailJson, ServiceJson, Status as PurgeStatus};
use super::token_json::TokenJson;
use super::token_sudo::SudoJson;
use super::token_verify::Verified;
use super::user_endpoints::UserJson;

const JSON: &str = "application/json";
const JSON_API: &str = "application/vnd.api+json";
const FORM: &str = "application/x-www-form-urlencoded";

/// Who may call an endpoint.
#[derive(Clone, Copy)]
enum Auth {
    /// A token in `Fastly-Key` with one of these scopes.
    Key(&'static [&'static str]),
    /// A token, or the owner's username and password (body or HTTP Basic).
    KeyOrPassword(&'static [&'static str]),
    /// Anyone.
    Public,
}

const READ: &[&str] = &["global", "global:read"];
const WRITE: &[&str] = &["global"];

/// One documented operation.
struct Endpoint {
    method: HttpMethod,
    path: &'static str,
    summary: &'static str,
    auth: Auth,
    query: Vec<(&'static str, Value, &'static str)>,
    headers: Vec<(&'static str, &'static str)>,
    /// Body fields as one object schema, sent as a form or JSON (or JSON:API).
    body: Option<(Value, &'static [&'static str])>,
    /// Success status, media type and schema (None: no body).
    ok: (u16, Option<(&'static str, Value)>),
    errors: &'static [u16],
}

impl Endpoint {
    fn new(method: HttpMethod, path: &'static str, summary: &'static str, auth: Auth) -> Self {
        Endpoint {
            method,
            path,
            summary,
            auth,
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
            ok: (200, None),
            errors: &[401, 403],
        }
    }

    fn get(path: &'static str, summary: &'static str, auth: Auth) -> Self {
        Endpoint::new(HttpMethod::Get, path, summary, auth)
    }

    fn post(path: &'static str, summary: &'static str, auth: Auth) -> Self {
        Endpoint::new(HttpMethod::Post, path, summary, auth)
    }

    fn delete(path: &'static str, summary: &'static str, auth: Auth) -> Self {
        Endpoint::new(HttpMethod::Delete, path, summary, auth).ok_empty(204)
    }

    fn ok(mut self, status: u16, schema: Value) -> Self {
        self.ok = (status, Some((JSON, schema)));
        self
    }

    fn ok_json_api(mut self, status: u16, schema: Value) -> Self {
        self.ok = (status, Some((JSON_API, schema)));
        self
    }

    fn ok_empty(mut self, status: u16) -> Self {
        self.ok = (status, None);
        self
    }

    fn errors(mut self, errors: &'static [u16]) -> Self {
        self.errors = errors;
        self
    }

    fn query(mut self, name: &'static str, schema: Value, description: &'static str) -> Self {
        self.query.push((name, schema, description));
        self
    }

    fn paged(self) -> Self {
        self.query(
            "page",
            json!({"type": "integer", "minimum": 1}),
            "Page number, from 1",
        )
        .query(
            "per_page",
            json!({"type": "integer", "minimum": 1, "maximum": 1000}),
            "Rows per page (100 by default, 1,000 at most)",
        )
    }

    fn header(mut self, name: &'static str, description: &'static str) -> Self {
        self.headers.push((name, description));
        self
    }

    fn body(mut self, schema: Value, media: &'static [&'static str]) -> Self {
        self.body = Some((schema, media));
        self
    }
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn array_of(name: &str) -> Value {
    json!({"type": "array", "items": schema_ref(name)})
}

fn string() -> Value {
    json!({"type": "string"})
}

/// The fields of a new token (`POST /tokens`, `POST /automation-tokens`).
fn token_fields(automation: bool) -> Value {
    let mut properties = json!({
        "name": {"type": "string", "description": "Shown in lists; \"API token\" when left out"},
        "scope": {"type": "string", "description": "Space-separated scopes: global, global:read, purge_select, purge_all"},
        "services": {"type": "array", "items": {"type": "string"}, "description": "Service ids the token is limited to; empty or absent: all services"},
        "expires_at": {"type": "string", "description": "RFC 3339 time, up to 9999-12-31; absent: never"},
        "description": {"type": "string", "description": "What the token is for"},
        "allowed_cidrs": {"type": "array", "items": {"type": "string"}, "description": "Addresses or CIDR ranges the token may be used from; absent: anywhere"},
    });
    if automation {
        properties["role"] = json!({"type": "string", "enum": ["user", "billing", "engineer"]});
        properties["tls_access"] = json!({"type": "boolean"});
    } else {
        properties["username"] = json!({"type": "string", "description": "The owner's email, with `password`, instead of a token in sudo mode"});
        properties["password"] = json!({"type": "string", "format": "password"});
    }
    json!({"type": "object", "properties": properties})
}

/// The body of a roll.
fn rotate_fields() -> Value {
    json!({"type": "object", "properties": {
        "overlap_seconds": {"type": "integer", "minimum": 0, "maximum": 604800,
            "description": "How long the old secret keeps working (0 by default)"}
    }})
}

/// Every endpoint, in the order of `api::router`.
fn endpoints() -> Vec<Endpoint> {
    use Auth::*;
    vec![
        Endpoint::get("/tokens", "List the tokens of the key's owner", Key(READ))
            .ok(200, array_of("TokenJson")),
        Endpoint::post(
            "/tokens",
            "Create a user token: with the owner's username and password (body or HTTP Basic), or a token of theirs in sudo mode or with their password; a Fastly-OTP header when they use two-factor authentication",
            KeyOrPassword(WRITE),
        )
        .header("Fastly-OTP", "The owner's current two-factor code, when they use two-factor authentication")
        .body(token_fields(false), &[FORM, JSON])
        .ok(200, schema_ref("TokenJson"))
        .errors(&[400, 401, 403, 422, 429, 503]),
        Endpoint::delete("/tokens", "Revoke several tokens of the account (JSON:API body)", Key(WRITE))
            .body(
                json!({"type": "object", "required": ["data"], "properties": {"data": {"type": "array", "items": {
                    "type": "object", "required": ["id"],
                    "properties": {"type": {"type": "string", "enum": ["token"]}, "id": {"type": "string"}}
                }}}}),
                &["application/vnd.api+json; ext=bulk"],
            )
            .errors(&[400, 401, 403, 404]),
        Endpoint::get("/tokens/self", "The token in Fastly-Key", Key(&[])).ok(200, schema_ref("TokenJson")),
        Endpoint::delete("/tokens/self", "Revoke the token in Fastly-Key", Key(&[])),
        Endpoint::get("/tokens/{id}", "One token of the account", Key(READ))
            .ok(200, schema_ref("TokenJson"))
            .errors(&[401, 403, 404]),
        Endpoint::delete("/tokens/{id}", "Revoke one token", Key(WRITE)).errors(&[401, 403, 404]),
        Endpoint::post(
            "/tokens/revoke-leaked",
            "Report leaked token strings (no authentication): every live one is revoked and its owner told; the answer is the same whatever was reported",
            Public,
        )
        .body(
            json!({"type": "object", "required": ["tokens"], "properties": {
                "tokens": {"type": "array", "maxItems": 1000, "items": {"type": "string"}},
                "url": {"type": "string", "maxLength": 2048, "description": "Where the strings were found"}
            }}),
            &[JSON],
        )
        .ok(202, schema_ref("Error"))
        .errors(&[400, 429]),
        Endpoint::post(
            "/tokens/self/rotate",
            "Roll the token in Fastly-Key: a new secret, the old one working for overlap_seconds more",
            Key(WRITE),
        )
        .body(rotate_fields(), &[FORM, JSON])
        .ok(200, schema_ref("TokenJson"))
        .errors(&[401, 403, 409, 422]),
        Endpoint::post(
            "/tokens/{id}/rotate",
            "Roll a token (its owner in sudo mode, or a superuser for an automation token)",
            Key(WRITE),
        )
        .body(rotate_fields(), &[FORM, JSON])
        .ok(200, schema_ref("TokenJson"))
        .errors(&[401, 403, 404, 409, 422]),
        Endpoint::get("/customer/{customer_id}/tokens", "The account's tokens (superusers)", Key(READ))
            .paged()
            .ok(200, array_of("TokenJson"))
            .errors(&[400, 401, 403, 404]),
        Endpoint::post("/sudo", "Put the token in sudo mode with its owner's password", Key(WRITE))
            .header("Fastly-OTP", "The owner's current two-factor code, when they use two-factor authentication")
            .body(
                json!({"type": "object", "properties": {
                    "username": {"type": "string"},
                    "password": {"type": "string", "format": "password"},
                    "expiry_time": {"type": "string", "description": "RFC 3339 time sudo mode should end (at most the configured duration)"}
                }}),
                &[FORM, JSON],
            )
            .ok(200, schema_ref("SudoJson"))
            .errors(&[400, 401, 403, 429, 503]),
        Endpoint::get("/automation-tokens", "The account's automation tokens: an array, or with page/per_page and no Accept: application/json the paged document", Key(READ))
            .paged()
            .ok(200, json!({"oneOf": [array_of("TokenJson"), schema_ref("Paged")]}))
            .errors(&[400, 401, 403]),
        Endpoint::post("/automation-tokens", "Create an automation token (sudo mode)", Key(WRITE))
            .body(token_fields(true), &[FORM, JSON])
            .ok(200, schema_ref("TokenJson"))
            .errors(&[400, 401, 403, 422, 429]),
        Endpoint::get("/automation-tokens/{id}", "One automation token", Key(READ))
            .ok(200, schema_ref("TokenJson"))
            .errors(&[401, 403, 404]),
        Endpoint::delete("/automation-tokens/{id}", "Revoke an automation token", Key(WRITE))
            .errors(&[401, 403, 404]),
        Endpoint::get("/verify", "The token, its account, owner and services", Key(READ))
            .ok(200, schema_ref("Verified")),
        Endpoint::get("/current_user", "The token's owner", Key(READ)).ok(200, schema_ref("UserJson")),
        Endpoint::get("/user/{id}", "A member of the account", Key(READ))
            .ok(200, schema_ref("UserJson"))
            .errors(&[401, 403, 404]),
        Endpoint::get("/customer/{customer_id}", "The token's account", Key(READ))
            .ok(200, schema_ref("CustomerJson"))
            .errors(&[401, 403, 404]),
        Endpoint::get("/customer/{customer_id}/users", "The account's members", Key(READ))
            .ok(200, array_of("UserJson"))
            .errors(&[401, 403, 404]),
        Endpoint::get("/service", "The services the token may read", Key(READ))
            .ok(200, array_of("ServiceJson")),
        Endpoint::get("/service/{id}", "One service", Key(READ))
            .ok(200, schema_ref("ServiceJson"))
            .errors(&[401, 403, 404]),
        Endpoint::get("/service/{id}/details", "One service with its (empty) versions", Key(READ))
            .ok(200, schema_ref("ServiceDetailJson"))
            .errors(&[401, 403, 404]),
        Endpoint::post("/service/{id}/purge_all", "Purge everything of a service", Key(&["global", "purge_all"]))
            .header("Fastly-Soft-Purge", "1: mark stale instead of removing")
            .ok(200, schema_ref("PurgeStatus"))
            .errors(&[401, 403, 404, 429]),
        Endpoint::post("/service/{id}/purge/{key}", "Purge one surrogate key", Key(&["global", "purge_select"]))
            .header("Fastly-Soft-Purge", "1: mark stale instead of removing")
            .ok(200, schema_ref("PurgeStatus"))
            .errors(&[400, 401, 403, 404, 429]),
        Endpoint::post("/service/{id}/purge", "Purge several surrogate keys (Surrogate-Key header, or surrogate_keys)", Key(&["global", "purge_select"]))
            .header("Surrogate-Key", "Space-separated surrogate keys")
            .header("Fastly-Soft-Purge", "1: mark stale instead of removing")
            .body(
                json!({"type": "object", "properties": {"surrogate_keys": {"type": "array", "items": {"type": "string"}}}}),
                &[JSON, FORM],
            )
            .ok(200, json!({"type": "object", "additionalProperties": {"type": "string"}, "description": "Purge id per key"}))
            .errors(&[400, 401, 403, 404, 429]),
        Endpoint::get("/events", "The account's event log, as the token may see it", Key(READ))
            .query("filter[event_type]", string(), "One event type")
            .query("filter[user_id]", string(), "Events by this user")
            .query("filter[token_id]", string(), "Events by or about this token")
            .query("filter[service_id]", string(), "Events about this service")
            .query("filter[created_at][gte]", string(), "RFC 3339 time")
            .query("filter[created_at][gt]", string(), "RFC 3339 time")
            .query("filter[created_at][lte]", string(), "RFC 3339 time")
            .query("filter[created_at][lt]", string(), "RFC 3339 time")
            .query("sort", json!({"type": "string", "enum": ["created_at", "-created_at"]}), "Oldest or newest first")
            .query("page[number]", json!({"type": "integer", "minimum": 1}), "Page number")
            .query("page[size]", json!({"type": "integer", "minimum": 1, "maximum": 100}), "Events per page")
            .ok(200, schema_ref("EventPage"))
            .errors(&[400, 401, 403]),
        Endpoint::get("/invitations", "Pending invitations (superusers, global scope)", Key(WRITE))
            .ok_json_api(200, schema_ref("InvitationList")),
        Endpoint::post("/invitations", "Invite someone into the account; the answer carries the one-time link", Key(WRITE))
            .body(
                json!({"type": "object", "required": ["data"], "properties": {"data": {"type": "object", "properties": {
                    "type": {"type": "string", "enum": ["invitation"]},
                    "attributes": {"type": "object", "properties": {
                        "email": {"type": "string"},
                        "role": {"type": "string", "enum": ["user", "billing", "engineer", "superuser"]}
                    }}
                }}}}),
                &[JSON_API, JSON],
            )
            .ok_json_api(201, schema_ref("InvitationCreated"))
            .errors(&[400, 401, 403, 409, 422, 429]),
        Endpoint::delete("/invitations/{invitation_id}", "Revoke a pending invitation", Key(WRITE))
            .errors(&[401, 403, 404]),
        Endpoint::get("/openapi.json", "This document", Public)
            .ok(200, json!({"type": "object"}))
            .errors(&[]),
    ]
}

/// The response shapes, from their types.
fn components() -> ComponentsBuilder {
    let mut schemas: Vec<(String, RefOr<Schema>)> = Vec::new();
    fn add<T: ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((T::name().into_owned(), T::schema()));
        T::schemas(schemas);
    }
    add::<ErrorBody>(&mut schemas);
    add::<TokenJson>(&mut schemas);
    add::<Paged<TokenJson>>(&mut schemas);
    add::<PageMeta>(&mut schemas);
    add::<SudoJson>(&mut schemas);
    add::<Verified>(&mut schemas);
    add::<UserJson>(&mut schemas);
    add::<CustomerJson>(&mut schemas);
    add::<ServiceJson>(&mut schemas);
    add::<ServiceDetailJson>(&mut schemas);
    add::<PurgeStatus>(&mut schemas);
    add::<EventPage>(&mut schemas);
    add::<InvitationList>(&mut schemas);
    add::<InvitationCreated>(&mut schemas);
    let mut builder = ComponentsBuilder::new();
    for (name, schema) in schemas {
        builder = builder.schema(name, schema);
    }
    builder
        .security_scheme(
            "fastly_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Fastly-Key",
                "An API token. The scopes listed per operation are the token scopes that open it; the owner's role and service access apply on top.",
            ))),
        )
        .security_scheme("basic", SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)))
}

fn from_json<T: serde::de::DeserializeOwned>(value: Value) -> T {
    // The values are literals above; a mistake there fails the unit tests.
    serde_json::from_value(value).unwrap_or_else(|e| panic!("bad OpenAPI literal: {e}"))
}

fn status_text(status: u16) -> &'static str {
    StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error")
}

fn error_response(status: u16) -> utoipa::openapi::Response {
    let description = match status {
        401 => "No token, or one that is malformed, unknown, revoked or expired",
        403 => "The token's scopes, the owner's role or service access do not allow this",
        415 => "The body's media type is not one the operation reads",
        429 => "Throttled: the hourly write budget, too many wrong passwords or codes, or too many unknown keys from this address (Retry-After says when to try again)",
        503 => "Too many password checks at once (Retry-After)",
        _ => status_text(status),
    };
    ResponseBuilder::new()
        .description(description)
        .content(
            JSON,
            ContentBuilder::new()
                .schema(Some(from_json::<RefOr<Schema>>(schema_ref("Error"))))
                .build(),
        )
        .build()
}

/// The endpoint's own error statuses, and those every endpoint of its kind can give:
/// 401 without a valid token and 429 after too many unknown keys from one address,
/// 400/413/415 for a body that cannot be read, 429 past the hourly write budget.
fn errors_of(endpoint: &Endpoint) -> std::collections::BTreeSet<u16> {
    let mut errors: std::collections::BTreeSet<u16> = endpoint.errors.iter().copied().collect();
    if matches!(endpoint.auth, Auth::Key(_) | Auth::KeyOrPassword(_)) {
        // 429: an address that presented too many unknown keys (`ops::token_cache`).
        errors.extend([401, 429]);
    }
    if endpoint.body.is_some() {
        errors.extend([400, 413, 415]);
    }
    if !endpoint.query.is_empty() {
        errors.insert(400);
    }
    if !matches!(endpoint.method, HttpMethod::Get) {
        errors.insert(429);
    }
    errors
}

fn build() -> OpenApi {
    let mut paths = PathsBuilder::new();
    for endpoint in endpoints() {
        let errors = errors_of(&endpoint);
        let mut op = OperationBuilder::new().summary(Some(endpoint.summary));
        for segment in endpoint.path.split('/') {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                op = op.parameter(
                    ParameterBuilder::new()
                        .name(name)
                        .parameter_in(ParameterIn::Path)
                        .required(Required::True)
                        .schema(Some(from_json::<RefOr<Schema>>(string()))),
                );
            }
        }
        for (name, schema, description) in endpoint.query {
            op = op.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Query)
                    .required(Required::False)
                    .description(Some(description))
                    .schema(Some(from_json::<RefOr<Schema>>(schema))),
            );
        }
        for (name, description) in endpoint.headers {
            op = op.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Header)
                    .required(Required::False)
                    .description(Some(description))
                    .schema(Some(from_json::<RefOr<Schema>>(string()))),
            );
        }
        if let Some((schema, media)) = endpoint.body {
            let mut body = RequestBodyBuilder::new().required(Some(Required::False));
            for media in media {
                body = body.content(
                    *media,
                    ContentBuilder::new()
                        .schema(Some(from_json::<RefOr<Schema>>(schema.clone())))
                        .build(),
                );
            }
            op = op.request_body(Some(body.build()));
        }
        let (status, content) = endpoint.ok;
        let mut ok = ResponseBuilder::new().description(status_text(status));
        if let Some((media, schema)) = content {
            ok = ok.content(
                media,
                ContentBuilder::new()
                    .schema(Some(from_json::<RefOr<Schema>>(schema)))
                    .build(),
            );
        }
        let mut responses = ResponsesBuilder::new().response(status.to_string(), ok.build());
        for error in errors {
            responses = responses.response(error.to_string(), error_response(error));
        }
        op = op.responses(responses.build());
        op = match endpoint.auth {
            Auth::Key(scopes) => op.security(SecurityRequirement::new(
                "fastly_key",
                scopes.iter().copied(),
            )),
            Auth::KeyOrPassword(scopes) => op
                .security(SecurityRequirement::new(
                    "fastly_key",
                    scopes.iter().copied(),
                ))
                .security(SecurityRequirement::new("basic", Vec::<String>::new()))
                .security(SecurityRequirement::default()),
            Auth::Public => op.security(SecurityRequirement::default()),
        };
        paths = paths.path(
            endpoint.path,
            utoipa::openapi::PathItem::new(endpoint.method, op.build()),
        );
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("tokenpanel")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The JSON API of tokenpanel, compatible with Fastly's token endpoints. Errors are {\"msg\", \"detail\"} JSON.",
                ))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components().build()))
        .build()
}

/// The document as JSON text, built once.
pub fn document() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| build().to_json().unwrap_or_else(|_| "{}".to_owned()))
}

pub async fn serve() -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        document(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// (METHOD, path) of every route in `api::router`, read from its source: the routes
    /// are `.route("PATH", get(…).post(…))` calls.
    fn routed() -> BTreeSet<(String, String)> {
        let source = include_str!("mod.rs");
        let router = &source[source.find("pub fn router()").expect("the router")..];
        let router = &router[..router.find("\n}\n").expect("its end")];
        let mut out = BTreeSet::new();
        for piece in router.split(".route(").skip(1) {
            let path = piece.split('"').nth(1).expect("a path literal");
            // The method routers of this one call, up to the closing parenthesis of
            // `.route(`.
            let mut depth = 1;
            let mut end = piece.len();
            for (i, c) in piece.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let call = &piece[..end];
            for method in ["get", "post", "put", "patch", "delete"] {
                let called = call.match_indices(&format!("{method}(")).any(|(i, _)| {
                    i == 0 || !call[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
                });
                if called {
                    out.insert((method.to_uppercase(), path.to_owned()));
                }
            }
        }
        out
    }

    fn documented() -> BTreeSet<(String, String)> {
        let doc: Value = serde_json::from_str(document()).unwrap();
        let mut out = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                    out.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        out
    }

    #[test]
    fn every_route_is_documented_and_nothing_else() {
        let routed = routed();
        assert!(routed.len() > 20, "the router was read: {routed:?}");
        assert!(routed.contains(&("DELETE".into(), "/invitations/{invitation_id}".into())));
        let documented = documented();
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&routed).collect();
        assert!(
            undocumented.is_empty(),
            "routes missing from the OpenAPI document: {undocumented:?}"
        );
        assert!(extra.is_empty(), "documented but not routed: {extra:?}");
    }

    #[test]
    fn the_document_is_openapi_3_1_with_the_key_scheme_and_every_reference_resolves() {
        let doc: Value = serde_json::from_str(document()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        assert_eq!(
            doc["components"]["securitySchemes"]["fastly_key"]["name"],
            "Fastly-Key"
        );
        assert_eq!(
            doc["paths"]["/service/{id}/purge_all"]["post"]["security"][0]["fastly_key"],
            json!(["global", "purge_all"])
        );
        let text = document();
        for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = piece.split('"').next().unwrap();
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "{name} is referenced but not defined"
            );
        }
        let token = &doc["components"]["schemas"]["TokenJson"];
        assert!(token["properties"]["access_token"].is_object(), "{token}");
        assert!(token["required"].as_array().unwrap().contains(&json!("id")));
    }
}
