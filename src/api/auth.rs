//! Who is calling: the token in `Fastly-Key`. A malformed key is refused by its
//! checksum before any database work; a well-formed one costs one indexed query
//! (token + owner's membership + services). Nothing is cached, so a revoked token is
//! refused at once by every node.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;

use super::error::{ApiError, ApiResult};
use super::timestamp;
use crate::app::AppState;
use crate::auth::{self, Outcome};
use crate::db::tokens::{self as store, Token};
use crate::db::{accounts, accounts::Account, users::User};
use crate::domain::password::Password;
use crate::domain::policy::{self, Action, Principal};
use crate::domain::roles::{Role, ScopeSet, ServicePermission};
use crate::domain::secret::{self, TokenKind};
use crate::web::session::ClientIp;

pub const KEY_HEADER: &str = "fastly-key";
pub const OTP_HEADER: &str = "fastly-otp";

/// The authenticated token of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token: Token,
    pub kind: TokenKind,
    /// The owner's role in the account (user tokens) or the token's role (automation).
    pub role: Role,
    pub scopes: ScopeSet,
    /// Empty: all services.
    pub services: Vec<String>,
    pub sudo_until: Option<i64>,
    pub ip: String,
}

impl Caller {
    pub fn account_id(&self) -> &str {
        &self.token.account_id
    }

    /// The owner of a user token.
    pub fn user_id(&self) -> Option<&str> {
        match self.kind {
            TokenKind::User => self.token.user_id.as_deref(),
            TokenKind::Automation => None,
        }
    }

    /// The owner, for endpoints that only make sense for a person's token.
    pub fn require_user(&self) -> ApiResult<&str> {
        self.user_id().ok_or_else(|| {
            ApiError::forbidden("This endpoint needs a user token; automation tokens have no user.")
        })
    }

    pub fn is_superuser(&self) -> bool {
        self.role.is_superuser()
    }

    pub fn in_sudo(&self, now: i64) -> bool {
        self.sudo_until.is_some_and(|until| until > now)
    }

    fn principal<'a>(&'a self, limits: Option<&'a [(String, ServicePermission)]>) -> Principal<'a> {
        Principal {
            role: self.role,
            scopes: &self.scopes,
            token_services: &self.services,
            service_limits: limits,
        }
    }

    /// Checks an action that concerns no particular service.
    pub fn authorize(&self, action: Action<'_>) -> ApiResult<()> {
        Ok(policy::authorize(&self.principal(None), action)?)
    }

    /// The services an engineer is limited to, with the permission on each; None when
    /// not limited (other roles, automation tokens, engineers without a list).
    pub async fn service_limits(
        &self,
        state: &AppState,
    ) -> ApiResult<Option<Vec<(String, ServicePermission)>>> {
        let Some(user_id) = self.user_id().filter(|_| self.role == Role::Engineer) else {
            return Ok(None);
        };
        let rows =
            accounts::service_permissions(&state.db.pool, self.account_id(), user_id).await?;
        if rows.is_empty() {
            return Ok(None);
        }
        // An unknown permission name grants nothing rather than failing the request.
        Ok(Some(
            rows.into_iter()
                .filter_map(|(id, p)| Some((id, p.parse().ok()?)))
                .collect(),
        ))
    }

    /// Checks an action on services, given `service_limits`.
    pub fn authorize_with(
        &self,
        limits: Option<&[(String, ServicePermission)]>,
        action: Action<'_>,
    ) -> Result<(), policy::Denied> {
        policy::authorize(&self.principal(limits), action)
    }
}

/// The key in `Fastly-Key`; an empty header counts as absent.
fn presented_key(headers: &HeaderMap) -> ApiResult<Option<&str>> {
    let Some(value) = headers.get(KEY_HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().map_err(|_| ApiError::unauthorized())?.trim();
    Ok((!key.is_empty()).then_some(key))
}

pub fn otp(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(OTP_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

async fn authenticate(parts: &mut Parts, state: &AppState, key: &str) -> ApiResult<Caller> {
    if secret::check_shape(key).is_err() {
        return Err(ApiError::unauthorized());
    }
    let Some(found) = store::authenticate(&state.db.pool, &secret::digest(key)).await? else {
        return Err(ApiError::unauthorized());
    };
    let now = state.clock.unix();
    if let Some(expired_at) = found.token.expires_at.filter(|at| *at <= now) {
        return Err(ApiError::unauthorized().with_msg(format!(
            "Token {} expired at {}",
            found.token.id,
            timestamp(expired_at)
        )));
    }
    let kind = TokenKind::parse(&found.token.kind).ok_or_else(ApiError::unauthorized)?;
    let role = match kind {
        // The owner left the account or was locked: the token is worth nothing.
        TokenKind::User if found.owner_locked => None,
        TokenKind::User => found.member_role.as_deref(),
        TokenKind::Automation => found.token.role.as_deref(),
    };
    let role: Role = role
        .and_then(|r| r.parse().ok())
        .ok_or_else(ApiError::unauthorized)?;
    let scopes = ScopeSet::parse(&found.token.scope).map_err(|_| ApiError::unauthorized())?;
    let ClientIp(ip) = ClientIp::from_request_parts(parts, state)
        .await
        .map_err(|_| ApiError::internal("no client address"))?;
    let agent = parts
        .headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    state.usage.note(&found.token.id, now, &ip, agent);
    Ok(Caller {
        token: found.token,
        kind,
        role,
        scopes,
        services: found.services,
        sudo_until: found.sudo_until,
        ip,
    })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        match presented_key(&parts.headers)? {
            Some(key) => {
                let key = key.to_owned();
                authenticate(parts, state, &key).await
            }
            None => Err(ApiError::unauthorized()),
        }
    }
}

/// A token when one is presented (for endpoints that also take a password); a key
/// that is presented but bad is still refused.
pub struct MaybeCaller(pub Option<Caller>);

impl FromRequestParts<AppState> for MaybeCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        match presented_key(&parts.headers)? {
            Some(key) => {
                let key = key.to_owned();
                Ok(MaybeCaller(Some(authenticate(parts, state, &key).await?)))
            }
            None => Ok(MaybeCaller(None)),
        }
    }
}

/// Checks the `Fastly-OTP` code of a user with two-factor authentication (and spends
/// it); users without it pass. Missing or wrong: 400 `2fa.verify`, as Fastly answers;
/// locked out after repeated wrong codes: 429.
pub async fn second_factor(state: &AppState, user: &User, code: Option<&str>) -> ApiResult<()> {
    if !user.has_two_factor() {
        return Ok(());
    }
    if let Some(wait) = auth::second_factor_locked(state, &user.id).await? {
        return Err(ApiError::throttled(wait));
    }
    let Some(code) = code else {
        return Err(ApiError::two_factor());
    };
    if auth::check_second_factor(state, user, code).await? {
        Ok(())
    } else {
        Err(ApiError::two_factor())
    }
}

/// Accounts that force two-factor authentication let no one without it mint
/// credentials through the API.
pub fn two_factor_required(account: &Account, user: &User) -> ApiResult<()> {
    if account.forces_2fa() && !user.has_two_factor() {
        return Err(ApiError::forbidden(
            "This account requires two-factor authentication: set it up in the panel first.",
        ));
    }
    Ok(())
}

/// Re-authenticates the owner of the presented token with their password and, when
/// they have two-factor authentication, the `Fastly-OTP` code. `wrong` is the answer to
/// a wrong password.
pub async fn reauthenticate(
    state: &AppState,
    caller: &Caller,
    user: &User,
    password: &str,
    otp: Option<&str>,
    wrong: impl Fn() -> ApiError,
) -> ApiResult<()> {
    let code = if user.has_two_factor() {
        if let Some(wait) = auth::second_factor_locked(state, &user.id).await? {
            return Err(ApiError::throttled(wait));
        }
        // The caller already holds the user's token: saying a code is needed tells
        // them nothing new, and spares a password check that could not succeed.
        Some(otp.ok_or_else(ApiError::two_factor)?)
    } else {
        None
    };
    let password = Password::new(password);
    let outcome = auth::reauthenticate(
        state,
        user,
        caller.account_id(),
        &password,
        code,
        &caller.ip,
    )
    .await?;
    match outcome {
        Outcome::Accepted(_) => Ok(()),
        // The password was right but the code was not.
        Outcome::WrongCode => Err(ApiError::two_factor()),
        Outcome::Rejected => Err(wrong()),
        Outcome::Throttled(wait) => Err(ApiError::throttled(wait)),
    }
}
