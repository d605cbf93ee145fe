//! Token endpoints: create (by password, HTTP Basic, or a token in sudo mode), list,
//! show, delete (one, self, bulk), sudo, automation tokens, and the current user.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::auth::{self, second_factor, Caller, MaybeCaller};
use super::body::{self, Fields};
use super::error::{ApiError, ApiResult};
use super::{json, json_no_store, no_content, parse_time, timestamp};
use crate::app::AppState;
use crate::auth::{self as passwords, Outcome};
use crate::db::tokens::{self as store, DeleteScope, Token};
use crate::db::{accounts, accounts::Account, users, users::User};
use crate::domain::grant::{self, GrantError, ServiceRef};
use crate::domain::password::Password;
use crate::domain::policy::{self, Action};
use crate::domain::roles::{Role, ScopeSet};
use crate::domain::secret::TokenKind;
use crate::domain::validate;
use crate::tokens::{self, IssueError, Revocation, RevokeError, TokenRequest};
use crate::web::session::ClientIp;

const DEFAULT_NAME: &str = "API token";
const DEFAULT_SCOPE: &str = "global";
const WRONG_CREDENTIALS: &str = "The supplied username/password combination is not correct.";
const NOT_FOUND: &str = "Token not found";
/// Tokens one bulk deletion may name.
const MAX_BULK: usize = 1000;

/// A token as the API shows it. Unset fields are left out, never `null`.
#[derive(Debug, Serialize)]
pub struct TokenJson {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    pub customer_id: String,
    pub name: String,
    pub scope: String,
    /// Empty: all services.
    pub services: Vec<String>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Automation tokens only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_access: Option<bool>,
    /// Only in the response that creates the token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
}

fn token_json(token: &Token, services: Vec<String>) -> TokenJson {
    let automation = token.kind == TokenKind::Automation.as_str();
    TokenJson {
        id: token.id.clone(),
        user_id: token.user_id.clone(),
        customer_id: token.account_id.clone(),
        name: token.name.clone(),
        scope: token.scope.clone(),
        services,
        created_at: timestamp(token.created_at),
        expires_at: token.expires_at.map(timestamp),
        last_used_at: token.last_used_at.map(timestamp),
        ip: token.last_used_ip.clone(),
        user_agent: token.last_used_agent.clone(),
        role: if automation { token.role.clone() } else { None },
        tls_access: automation.then_some(token.tls_access != 0),
        access_token: None,
    }
}

/// Tokens with their services, as a JSON list.
async fn token_list(
    state: &AppState,
    account_id: &str,
    tokens: Vec<Token>,
) -> ApiResult<Vec<TokenJson>> {
    let mut services = store::services_in_account(&state.db.pool, account_id).await?;
    Ok(tokens
        .iter()
        .map(|t| token_json(t, services.remove(&t.id).unwrap_or_default()))
        .collect())
}

pub async fn list_own(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.authorize(Action::Read)?;
    let user_id = caller.require_user()?;
    let owned = store::owned_by(&state.db.pool, caller.account_id(), user_id).await?;
    let services = store::services_of_owned(&state.db.pool, caller.account_id(), user_id).await?;
    let list: Vec<TokenJson> = owned
        .iter()
        .map(|t| {
            let ids = services
                .get(&t.id)
                .map(|l| l.iter().map(|(id, _)| id.clone()).collect())
                .unwrap_or_default();
            token_json(t, ids)
        })
        .collect();
    Ok(json_no_store(StatusCode::OK, &list))
}

/// Any valid token may look at itself, whatever its scope.
pub async fn show_self(caller: Caller) -> ApiResult<Response> {
    Ok(json_no_store(
        StatusCode::OK,
        &token_json(&caller.token, caller.services.clone()),
    ))
}

/// Whether the caller may see or delete `token`: their own user tokens, or any token
/// of the account for a superuser.
fn reaches(caller: &Caller, token: &Token) -> bool {
    caller.is_superuser()
        || (token.kind == TokenKind::User.as_str()
            && caller.user_id().is_some()
            && token.user_id.as_deref() == caller.user_id())
}

pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.authorize(Action::Read)?;
    let token = store::find_in_account(&state.db.pool, &id, caller.account_id())
        .await?
        .filter(|t| reaches(&caller, t))
        .ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
    let services = store::services_of(&state.db.pool, &token.id).await?;
    Ok(json_no_store(StatusCode::OK, &token_json(&token, services)))
}

pub async fn list_account(
    State(state): State<AppState>,
    caller: Caller,
    Path(customer_id): Path<String>,
) -> ApiResult<Response> {
    caller.authorize(Action::Read)?;
    if customer_id != caller.account_id() || !caller.is_superuser() {
        return Err(ApiError::forbidden(
            "Only superusers of this customer may list its tokens.",
        ));
    }
    let tokens = store::in_account(&state.db.pool, caller.account_id(), None).await?;
    let list = token_list(&state, caller.account_id(), tokens).await?;
    Ok(json_no_store(StatusCode::OK, &list))
}

/// How far the caller's deletions reach, and the reason recorded with them.
fn delete_scope<'a>(caller: &'a Caller, kind: Option<&'a str>) -> (DeleteScope<'a>, &'static str) {
    let owner = if caller.is_superuser() {
        None
    } else {
        // An automation token owns no user tokens: it can delete nothing but itself.
        Some(caller.user_id().unwrap_or(""))
    };
    let reason = if caller.is_superuser() {
        "superuser"
    } else {
        "owner"
    };
    (
        DeleteScope {
            account_id: caller.account_id(),
            owner,
            kind,
        },
        reason,
    )
}

async fn revoke(
    state: &AppState,
    caller: &Caller,
    ids: &[String],
    scope: DeleteScope<'_>,
    reason: &str,
) -> ApiResult<Response> {
    let revocation = Revocation {
        scope,
        actor_id: caller.user_id(),
        via_token: Some(&caller.token.id),
        reason,
        ip: Some(&caller.ip),
    };
    match tokens::revoke(state, ids, &revocation).await {
        Ok(()) => Ok(no_content()),
        Err(RevokeError::NotFound(id)) => Err(ApiError::not_found(NOT_FOUND).with_detail(id)),
        Err(RevokeError::Database(e)) => Err(e.into()),
    }
}

/// A token may always revoke itself, whatever its scope: nothing is gained by it, and a
/// leaked read-only or purge token must be easy to kill.
pub async fn delete_self(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    let scope = DeleteScope {
        account_id: caller.account_id(),
        owner: None,
        kind: None,
    };
    let ids = [caller.token.id.clone()];
    revoke(&state, &caller, &ids, scope, "self").await
}

pub async fn delete_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.authorize(Action::ManageTokens)?;
    let (scope, reason) = delete_scope(&caller, None);
    revoke(&state, &caller, &[id], scope, reason).await
}

#[derive(Deserialize)]
struct BulkBody {
    data: Vec<BulkItem>,
}

#[derive(Deserialize)]
struct BulkItem {
    #[serde(rename = "type")]
    kind: String,
    id: String,
}

/// `DELETE /tokens` with `{"data":[{"type":"token","id":"…"}]}`: all or nothing.
pub async fn delete_bulk(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> ApiResult<Response> {
    caller.authorize(Action::ManageTokens)?;
    if !body::media_type(&headers).is_some_and(|m| body::is_json(&m)) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Send the tokens as application/vnd.api+json; ext=bulk.",
        ));
    }
    let parsed: BulkBody = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request("Invalid JSON:API body").with_detail(e.to_string()))?;
    if parsed.data.is_empty() {
        return Err(ApiError::bad_request("Name at least one token in data."));
    }
    if parsed.data.len() > MAX_BULK {
        return Err(ApiError::bad_request(format!(
            "At most {MAX_BULK} tokens may be deleted at once."
        )));
    }
    if let Some(item) = parsed.data.iter().find(|i| i.kind != "token") {
        return Err(
            ApiError::bad_request("Every item must have type \"token\".")
                .with_detail(item.kind.clone()),
        );
    }
    let mut ids: Vec<String> = parsed.data.into_iter().map(|i| i.id).collect();
    ids.sort();
    ids.dedup();
    let (scope, reason) = delete_scope(&caller, None);
    revoke(&state, &caller, &ids, scope, reason).await
}

/// Credentials from `Authorization: Basic …`. The empty `Basic Og==` (":") that some
/// clients always send counts as absent.
fn basic_credentials(headers: &HeaderMap) -> ApiResult<Option<(String, String)>> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ApiError::unauthorized())?;
    let Some(encoded) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    else {
        return Ok(None);
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(ApiError::unauthorized)?;
    let (username, password) = decoded.split_once(':').ok_or_else(ApiError::unauthorized)?;
    if username.is_empty() && password.is_empty() {
        return Ok(None);
    }
    Ok(Some((username.to_owned(), password.to_owned())))
}

/// The person creating a token, in the account the token will belong to.
struct Creator {
    user: User,
    account_id: String,
    role: Role,
}

async fn account(state: &AppState, id: &str) -> ApiResult<Account> {
    accounts::find(&state.db.pool, id)
        .await?
        .ok_or_else(ApiError::unauthorized)
}

fn same_login(username: &str, user: &User) -> bool {
    username.trim().to_lowercase() == user.email
}

/// Who creates a token with this request: the owner of the `Fastly-Key` (with their
/// password, or in sudo mode), or whoever the username and password (form, JSON or
/// HTTP Basic) belong to.
async fn creator(
    state: &AppState,
    caller: Option<&Caller>,
    headers: &HeaderMap,
    fields: &Fields,
    ip: &str,
) -> ApiResult<Creator> {
    let otp = auth::otp(headers);
    if let Some(caller) = caller {
        let user_id = caller.require_user()?;
        caller.authorize(Action::ManageTokens)?;
        let user = users::find(&state.db.pool, user_id)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        auth::two_factor_required(&account(state, caller.account_id()).await?, &user)?;
        match fields.text("password").filter(|p| !p.is_empty()) {
            Some(password) => {
                if fields
                    .text("username")
                    .is_some_and(|u| !u.is_empty() && !same_login(u, &user))
                {
                    return Err(ApiError::unauthorized());
                }
                auth::reauthenticate(state, caller, &user, password, otp, ApiError::unauthorized)
                    .await?;
            }
            None if caller.in_sudo(state.clock.unix()) => {}
            None => {
                return Err(ApiError::sudo_required()
                    .with_detail("Send your password with the request, or POST /sudo first."))
            }
        }
        return Ok(Creator {
            user,
            account_id: caller.account_id().to_owned(),
            role: caller.role,
        });
    }
    let (username, password) = match basic_credentials(headers)? {
        Some(pair) => pair,
        None => (
            fields.text("username").unwrap_or("").to_owned(),
            fields.text("password").unwrap_or("").to_owned(),
        ),
    };
    if username.trim().is_empty() || password.is_empty() {
        return Err(ApiError::unauthorized());
    }
    let email = username.trim().to_lowercase();
    let user = match passwords::sign_in(state, &email, &Password::new(password), ip).await? {
        Outcome::Accepted(user) => *user,
        Outcome::Rejected | Outcome::WrongCode => return Err(ApiError::unauthorized()),
        Outcome::Throttled(wait) => return Err(ApiError::throttled(wait)),
    };
    second_factor(state, &user, otp).await?;
    let Some((account_id, _)) = accounts::memberships_of(&state.db.pool, &user.id)
        .await?
        .into_iter()
        .next()
    else {
        return Err(ApiError::forbidden(
            "Your user does not belong to any account.",
        ));
    };
    let role = accounts::role_of(&state.db.pool, &account_id, &user.id)
        .await?
        .and_then(|r| r.parse().ok())
        .ok_or_else(|| ApiError::forbidden("Your user does not belong to any account."))?;
    auth::two_factor_required(&account(state, &account_id).await?, &user)?;
    Ok(Creator {
        user,
        account_id,
        role,
    })
}

/// The contents asked for a new token.
struct Wanted {
    name: String,
    scopes: ScopeSet,
    /// Empty: all services.
    services: Vec<String>,
    expires_at: Option<i64>,
}

fn wanted(fields: &Fields, now: i64) -> ApiResult<Wanted> {
    let name = validate::name(fields.text("name").unwrap_or(DEFAULT_NAME), "name")
        .map_err(ApiError::unprocessable)?;
    let scope = fields
        .text("scope")
        .filter(|s| !s.trim().is_empty())
        .unwrap_or(DEFAULT_SCOPE);
    let scopes = ScopeSet::parse(scope).map_err(|e| {
        ApiError::unprocessable(
            "scope must be one or more of global, purge_all, purge_select, global:read",
        )
        .with_detail(e)
    })?;
    let mut services = fields.list("services").unwrap_or_default();
    services.sort();
    services.dedup();
    let expires_at = match fields.text("expires_at").filter(|s| !s.trim().is_empty()) {
        None => None,
        Some(raw) => {
            let at = parse_time(raw).ok_or_else(|| {
                ApiError::unprocessable(
                    "expires_at must be an RFC 3339 time, such as 2030-01-31T12:00:00Z",
                )
                .with_detail(raw.to_owned())
            })?;
            if at <= now {
                return Err(ApiError::unprocessable("expires_at must be in the future"));
            }
            Some(at)
        }
    };
    Ok(Wanted {
        name,
        scopes,
        services,
        expires_at,
    })
}

fn grant_error(e: GrantError) -> ApiError {
    match e {
        GrantError::NoScope | GrantError::UnknownService(_) | GrantError::NoService => {
            ApiError::unprocessable(e.message())
        }
        GrantError::ScopeNotAllowed(_)
        | GrantError::ServiceNotAllowed(_)
        | GrantError::AllServicesNotAllowed => ApiError::forbidden(e.message()),
    }
}

/// The UI's rules (`grant::check`), plus: a token never creates one beyond itself.
async fn check_grant(
    state: &AppState,
    account_id: &str,
    role: Role,
    limited_to: Option<Vec<String>>,
    wanted: &Wanted,
    via: Option<&Caller>,
) -> ApiResult<()> {
    let all = accounts::services(&state.db.pool, account_id).await?;
    let refs: Vec<ServiceRef> = all
        .iter()
        .map(|s| ServiceRef {
            id: &s.id,
            name: &s.name,
        })
        .collect();
    grant::check(
        role,
        &wanted.scopes,
        wanted.services.is_empty(),
        &wanted.services,
        &refs,
        limited_to.as_deref(),
    )
    .map_err(grant_error)?;
    if let Some(caller) = via {
        if !policy::scopes_within(&caller.scopes, &wanted.scopes) {
            return Err(ApiError::forbidden(
                "A token cannot create a token with scopes beyond its own.",
            ));
        }
        if !policy::services_within(&caller.services, &wanted.services) {
            return Err(ApiError::forbidden(
                "A token cannot create a token with access to services beyond its own.",
            ));
        }
    }
    Ok(())
}

/// An engineer's service list when they are limited to some services.
async fn limited_to(
    state: &AppState,
    account_id: &str,
    user: &User,
    role: Role,
) -> ApiResult<Option<Vec<String>>> {
    if role != Role::Engineer {
        return Ok(None);
    }
    let rows = accounts::service_permissions(&state.db.pool, account_id, &user.id).await?;
    Ok((!rows.is_empty()).then(|| rows.into_iter().map(|(id, _)| id).collect()))
}

fn issue_error(e: IssueError) -> ApiError {
    match e {
        IssueError::LimitReached(limit) => {
            ApiError::unprocessable(IssueError::limit_message(limit))
        }
        IssueError::NotMember => ApiError::forbidden(IssueError::NOT_MEMBER),
        IssueError::ServiceGone => ApiError::unprocessable(IssueError::SERVICE_GONE),
        IssueError::Database(e) => e.into(),
    }
}

async fn created(state: &AppState, id: &str, secret: &str) -> ApiResult<Response> {
    let token = store::find_by_id(&state.db.pool, id)
        .await?
        .ok_or_else(|| ApiError::internal("the new token is gone"))?;
    let services = store::services_of(&state.db.pool, id).await?;
    let mut body = token_json(&token, services);
    body.access_token = Some(secret.to_owned());
    Ok(json_no_store(StatusCode::OK, &body))
}

pub async fn create(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    fields: Fields,
) -> ApiResult<Response> {
    let creator = creator(&state, caller.as_ref(), &headers, &fields, &ip).await?;
    let wanted = wanted(&fields, state.clock.unix())?;
    let limited = limited_to(&state, &creator.account_id, &creator.user, creator.role).await?;
    check_grant(
        &state,
        &creator.account_id,
        creator.role,
        limited,
        &wanted,
        caller.as_ref(),
    )
    .await?;
    let request = TokenRequest {
        kind: TokenKind::User,
        account_id: &creator.account_id,
        actor_id: &creator.user.id,
        name: &wanted.name,
        scopes: &wanted.scopes,
        services: &wanted.services,
        role: None,
        tls_access: false,
        expires_at: wanted.expires_at,
        ip: Some(&ip),
    };
    let issued = tokens::issue(&state, &request).await.map_err(issue_error)?;
    created(&state, &issued.id, issued.secret.expose()).await
}

#[derive(Serialize)]
struct SudoJson {
    expiry_time: String,
}

/// `POST /sudo`: re-authenticates the owner of the `Fastly-Key` and puts that token in
/// sudo mode for a few minutes (or until an earlier `expiry_time`).
pub async fn sudo(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    fields: Fields,
) -> ApiResult<Response> {
    let user_id = caller.require_user()?;
    caller.authorize(Action::ManageTokens)?;
    let (Some(username), Some(password)) = (
        fields.text("username").filter(|u| !u.trim().is_empty()),
        fields.text("password").filter(|p| !p.is_empty()),
    ) else {
        return Err(ApiError::bad_request("Send username and password."));
    };
    let user = users::find(&state.db.pool, user_id)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    if !same_login(username, &user) {
        return Err(ApiError::forbidden(WRONG_CREDENTIALS));
    }
    auth::two_factor_required(&account(&state, caller.account_id()).await?, &user)?;
    auth::reauthenticate(
        &state,
        &caller,
        &user,
        password,
        auth::otp(&headers),
        || ApiError::forbidden(WRONG_CREDENTIALS),
    )
    .await?;
    let now = state.clock.unix();
    let longest = now + state.settings.sudo_seconds;
    let until = match fields.text("expiry_time").filter(|t| !t.trim().is_empty()) {
        None => longest,
        Some(raw) => {
            let at = parse_time(raw).filter(|at| *at > now).ok_or_else(|| {
                ApiError::unprocessable("expiry_time must be a future RFC 3339 time")
            })?;
            at.min(longest)
        }
    };
    tokens::elevate(
        &state,
        caller.account_id(),
        user_id,
        &caller.token.id,
        until,
        Some(&caller.ip),
    )
    .await?;
    let expiry_time = timestamp(until).replace('Z', "+00:00");
    Ok(json(StatusCode::OK, &SudoJson { expiry_time }))
}

fn superuser_only(caller: &Caller) -> ApiResult<()> {
    if caller.is_superuser() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "Only superusers may manage automation tokens.",
        ))
    }
}

pub async fn create_automation(
    State(state): State<AppState>,
    caller: Caller,
    fields: Fields,
) -> ApiResult<Response> {
    let user_id = caller.require_user()?.to_owned();
    caller.authorize(Action::ManageTokens)?;
    superuser_only(&caller)?;
    let account = account(&state, caller.account_id()).await?;
    if account.forces_sso() || account.forces_2fa() {
        return Err(ApiError::forbidden(
            "Automation tokens cannot be created through the API while the account forces SSO or two-factor authentication.",
        ));
    }
    let now = state.clock.unix();
    if !caller.in_sudo(now) {
        return Err(ApiError::sudo_required());
    }
    let role: Role = match fields.text("role").map(str::trim) {
        Some(r @ ("user" | "billing" | "engineer")) => {
            r.parse().map_err(ApiError::unprocessable)?
        }
        _ => {
            return Err(ApiError::unprocessable(
                "role must be one of user, billing, engineer",
            ))
        }
    };
    let tls_access = match fields.text("tls_access").map(str::trim) {
        None | Some("false" | "0" | "") => false,
        Some("true" | "1") => true,
        Some(other) => {
            return Err(ApiError::unprocessable("tls_access must be true or false")
                .with_detail(other.to_owned()))
        }
    };
    let wanted = wanted(&fields, now)?;
    // Automation tokens belong to no person, so no person's service list limits them;
    // the creating token's own limits still do.
    check_grant(&state, &account.id, role, None, &wanted, Some(&caller)).await?;
    let request = TokenRequest {
        kind: TokenKind::Automation,
        account_id: &account.id,
        actor_id: &user_id,
        name: &wanted.name,
        scopes: &wanted.scopes,
        services: &wanted.services,
        role: Some(role),
        tls_access,
        expires_at: wanted.expires_at,
        ip: Some(&caller.ip),
    };
    let issued = tokens::issue(&state, &request).await.map_err(issue_error)?;
    created(&state, &issued.id, issued.secret.expose()).await
}

pub async fn list_automation(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.authorize(Action::Read)?;
    superuser_only(&caller)?;
    let tokens = store::in_account(
        &state.db.pool,
        caller.account_id(),
        Some(TokenKind::Automation.as_str()),
    )
    .await?;
    let list = token_list(&state, caller.account_id(), tokens).await?;
    Ok(json_no_store(StatusCode::OK, &list))
}

pub async fn show_automation(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.authorize(Action::Read)?;
    superuser_only(&caller)?;
    let token = store::find_in_account(&state.db.pool, &id, caller.account_id())
        .await?
        .filter(|t| t.kind == TokenKind::Automation.as_str())
        .ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
    let services = store::services_of(&state.db.pool, &token.id).await?;
    Ok(json_no_store(StatusCode::OK, &token_json(&token, services)))
}

pub async fn delete_automation(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.authorize(Action::ManageTokens)?;
    superuser_only(&caller)?;
    let (scope, reason) = delete_scope(&caller, Some(TokenKind::Automation.as_str()));
    revoke(&state, &caller, &[id], scope, reason).await
}

#[derive(Serialize)]
struct UserJson {
    id: String,
    login: String,
    name: String,
    customer_id: String,
    role: String,
    two_factor_auth_enabled: bool,
    locked: bool,
    created_at: String,
}

pub async fn current_user(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.authorize(Action::Read)?;
    let user_id = caller.require_user()?;
    let user = users::find(&state.db.pool, user_id)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    Ok(json(
        StatusCode::OK,
        &UserJson {
            id: user.id.clone(),
            login: user.email.clone(),
            name: user.name.clone(),
            customer_id: caller.account_id().to_owned(),
            role: caller.role.as_str().to_owned(),
            two_factor_auth_enabled: user.has_two_factor(),
            locked: user.is_locked(),
            created_at: timestamp(user.created_at),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_auth(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn basic_credentials_are_read_and_the_empty_pair_ignored() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("ada@example.com:pw:x");
        assert_eq!(
            basic_credentials(&with_auth(&format!("Basic {encoded}"))).unwrap(),
            Some(("ada@example.com".into(), "pw:x".into()))
        );
        assert_eq!(basic_credentials(&with_auth("Basic Og==")).unwrap(), None);
        assert_eq!(basic_credentials(&HeaderMap::new()).unwrap(), None);
        assert_eq!(basic_credentials(&with_auth("Bearer abc")).unwrap(), None);
        assert!(basic_credentials(&with_auth("Basic !!!")).is_err());
    }

    #[test]
    fn unset_fields_are_left_out() {
        let token = Token {
            id: "t".into(),
            account_id: "a".into(),
            kind: "user".into(),
            user_id: Some("u".into()),
            created_by: Some("u".into()),
            name: "n".into(),
            scope: "global".into(),
            role: None,
            tls_access: 0,
            created_at: 1_800_000_000,
            expires_at: None,
            last_used_at: None,
            last_used_ip: None,
            last_used_agent: None,
        };
        let value = serde_json::to_value(token_json(&token, vec![])).unwrap();
        let object = value.as_object().unwrap();
        for absent in [
            "expires_at",
            "last_used_at",
            "ip",
            "user_agent",
            "role",
            "tls_access",
            "access_token",
        ] {
            assert!(!object.contains_key(absent), "{absent}");
        }
        assert_eq!(object["created_at"], "2027-01-15T08:00:00Z");
        assert!(!value.to_string().contains("null"));
    }
}
