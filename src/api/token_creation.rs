//! Creating user tokens: by password (form, JSON or HTTP Basic), or with a token whose
//! owner re-authenticates or is in sudo mode. The checks shared with automation tokens
//! (`wanted`, `check_grant`) live here too.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine as _;

use super::api_error::{ApiError, ApiResult};
use super::caller::{self, second_factor, Caller, MaybeCaller};
use super::fields::Fields;
use super::token_reads::one_token;
use super::{json_no_store, parse_time};
use crate::db::token_store;
use crate::db::user_store::{self, User};
use crate::db::{member_store, service_store};
use crate::domain::access::{self, Action, ServiceAccess};
use crate::domain::cidr::Allowlist;
use crate::domain::grant::{self, GrantError, ServiceRef};
use crate::domain::ids::{AccountId, ServiceId, TokenId};
use crate::domain::password::Password;
use crate::domain::roles::{Role, ScopeSet};
use crate::domain::secret::TokenKind;
use crate::domain::validate;
use crate::http::ClientIp;
use crate::ops::authentication::{self, Outcome};
use crate::ops::token_lifecycle::{self, IssueError, TokenRequest};
use crate::ops::Context;
use crate::state::AppState;

const DEFAULT_NAME: &str = "API token";
const DEFAULT_SCOPE: &str = "global";

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
    account_id: AccountId,
    role: Role,
    services: ServiceAccess,
}

pub fn same_login(username: &str, user: &User) -> bool {
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
    let otp = caller::otp(headers);
    if let Some(caller) = caller {
        let user_id = caller.require_user()?;
        caller.require(Action::ManageOwnTokens)?;
        let user = user_store::find(&state.db.pool, user_id)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        caller::two_factor_required(&caller::account(state, caller.account_id()).await?, &user)?;
        match fields.text("password").filter(|p| !p.is_empty()) {
            Some(password) => {
                if fields
                    .text("username")
                    .is_some_and(|u| !u.is_empty() && !same_login(u, &user))
                {
                    return Err(ApiError::unauthorized());
                }
                caller::reauthenticate(state, caller, &user, password, otp, ApiError::unauthorized)
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
            account_id: caller.account_id().clone(),
            role: caller.role(),
            services: caller.principal.services.clone(),
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
    let user = match authentication::sign_in(state, &email, &Password::new(password), ip).await? {
        Outcome::Accepted(user) => *user,
        Outcome::Rejected | Outcome::WrongCode => return Err(ApiError::unauthorized()),
        Outcome::Throttled(wait) => return Err(ApiError::throttled(wait)),
    };
    second_factor(state, &user, otp).await?;
    let no_account = || ApiError::forbidden("Your user does not belong to any account.");
    let account_id = authentication::default_account(state, &user.id)
        .await?
        .ok_or_else(no_account)?;
    let role = member_store::role_of(&state.db.pool, &account_id, &user.id)
        .await?
        .ok_or_else(no_account)?;
    caller::two_factor_required(&caller::account(state, &account_id).await?, &user)?;
    let services =
        member_store::service_access(&state.db.pool, &account_id, &user.id, role).await?;
    Ok(Creator {
        user,
        account_id,
        role,
        services,
    })
}

/// The contents asked for a new token.
pub struct Wanted {
    pub name: String,
    pub scopes: ScopeSet,
    /// Empty: all services.
    pub services: Vec<ServiceId>,
    pub expires_at: Option<i64>,
    pub description: Option<String>,
    pub allowed_cidrs: Option<Allowlist>,
}

pub fn wanted(fields: &Fields, now: i64) -> ApiResult<Wanted> {
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
    let mut services: Vec<ServiceId> = fields
        .list("services")
        .unwrap_or_default()
        .into_iter()
        .map(ServiceId::from_raw)
        .collect();
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
            let at = validate::expiry(at, now).map_err(|e| {
                ApiError::unprocessable(format!("expires_at: {e}")).with_detail(raw.to_owned())
            })?;
            Some(at)
        }
    };
    let description = validate::description(fields.text("description").unwrap_or(""))
        .map_err(|e| ApiError::unprocessable(format!("description: {e}")))?;
    let cidrs = fields.list("allowed_cidrs").unwrap_or_default();
    let allowed_cidrs = Allowlist::parse_input(cidrs.iter().map(String::as_str))
        .map_err(|e| ApiError::unprocessable(format!("allowed_cidrs: {e}")))?;
    Ok(Wanted {
        name,
        scopes,
        services,
        expires_at,
        description,
        allowed_cidrs,
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
/// `limited_to` is the creating member's service list when they are limited.
pub async fn check_grant(
    ctx: &Context,
    account_id: &AccountId,
    role: Role,
    limited_to: Option<Vec<ServiceId>>,
    wanted: &Wanted,
    via: Option<&Caller>,
) -> ApiResult<()> {
    let all = service_store::list(&ctx.db.pool, account_id).await?;
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
    if let Some(token) = via.and_then(|c| c.principal.token.as_ref()) {
        if !access::scopes_within(&token.scopes, &wanted.scopes) {
            return Err(ApiError::forbidden(
                "A token cannot create a token with scopes beyond its own.",
            ));
        }
        if !access::services_within(&token.services, &wanted.services) {
            return Err(ApiError::forbidden(
                "A token cannot create a token with access to services beyond its own.",
            ));
        }
    }
    Ok(())
}

pub fn issue_error(e: IssueError) -> ApiError {
    match e {
        IssueError::LimitReached(limit) => {
            ApiError::unprocessable(IssueError::limit_message(limit))
        }
        IssueError::NotMember => ApiError::forbidden(IssueError::NOT_MEMBER),
        IssueError::ServiceGone => ApiError::unprocessable(IssueError::SERVICE_GONE),
        IssueError::Policy(rule) => ApiError::unprocessable(rule.message()),
        IssueError::NotRollable => ApiError::new(StatusCode::CONFLICT, IssueError::NOT_ROLLABLE),
        IssueError::Database(e) => e.into(),
    }
}

/// The answer to a creation: the new token, with its secret this once.
pub async fn created(ctx: &Context, id: &TokenId, secret: &str) -> ApiResult<Response> {
    let token = token_store::find_by_id(&ctx.db.pool, id)
        .await?
        .ok_or_else(|| ApiError::internal("the new token is gone"))?;
    let mut body = one_token(ctx, &token).await?;
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
    check_grant(
        &state,
        &creator.account_id,
        creator.role,
        creator.services.limited_to(),
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
        description: wanted.description.as_deref(),
        allowed_cidrs: wanted.allowed_cidrs.as_ref(),
        rolled: None,
        ip: Some(&ip),
    };
    let issued = token_lifecycle::issue(&state, &request)
        .await
        .map_err(issue_error)?;
    created(&state, &issued.id, issued.secret.expose()).await
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
}
