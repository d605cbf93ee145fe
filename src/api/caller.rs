//! Who is calling: the token in `Fastly-Key`. A malformed key is refused by its
//! checksum before any database work; a well-formed one is looked up in the verified-
//! token cache (`ops::token_cache`: the token row with its owner's membership, its
//! services and the owner's service limits, kept fresh by every node's changes), which
//! reads the database only for a key it does not hold. Expiry and the owner's standing
//! are checked on every request against what the cache holds.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName};

use super::api_error::{ApiError, ApiResult};
use super::timestamp;
use super::token_json::TokenJson;
use crate::db::account_store::{self, Account};
use crate::db::token_store::Token;
use crate::db::user_store::User;
use crate::domain::access::{Action, Denied, Principal, ServiceAccess, TokenGrant};
use crate::domain::ids::{AccountId, TokenId, UserId};
use crate::domain::password::Password;
use crate::domain::roles::Role;
use crate::domain::secret::{self, TokenKind};
use crate::http::{ClientIp, RequestNotes};
use crate::ops::authentication::{self, CodeCheck, Outcome};
use crate::ops::token_cache::{Cached, LastUse, Lookup};
use crate::ops::token_lifecycle;
use crate::ops::Context;
use crate::state::AppState;
use crate::telemetry::metrics::TokenOutcome;
use crate::telemetry::Metrics;

pub const KEY_HEADER: &str = "fastly-key";
/// `KEY_HEADER` as a header name: looked up by name, not parsed from text, on every
/// API request.
pub const KEY_HEADER_NAME: HeaderName = HeaderName::from_static(KEY_HEADER);
pub const OTP_HEADER: &str = "fastly-otp";

/// The answer to a token used from outside its allowlist (403).
pub const ADDRESS_REFUSED: &str = "Token is not allowed from this address.";

/// 401 for a token past its expiry (or a rolled secret past its overlap).
fn expired(id: &str, at: i64) -> ApiError {
    ApiError::unauthorized().with_msg(format!("Token {id} expired at {}", timestamp(at)))
}

/// The authenticated token of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who acts: the account, the role (the owner's, or the automation token's), the
    /// owner, the token's scopes and services, the member's service access.
    pub principal: Principal,
    pub token_id: TokenId,
    /// The token as the verified-token cache holds it, and its last use before this
    /// request: what the token's answers show, read from the entry without copies.
    entry: Arc<Cached>,
    last_use: LastUse,
    pub sudo_until: Option<i64>,
    pub ip: String,
    /// Where a refusal for the token's scopes or services is counted.
    metrics: Arc<Metrics>,
}

impl Caller {
    pub fn account_id(&self) -> &AccountId {
        &self.principal.account_id
    }

    /// The owner of a user token.
    pub fn user_id(&self) -> Option<&UserId> {
        self.principal.user_id.as_ref()
    }

    pub fn role(&self) -> Role {
        self.principal.role
    }

    /// The owner, for endpoints that only make sense for a person's token.
    pub fn require_user(&self) -> ApiResult<&UserId> {
        self.user_id().ok_or_else(|| {
            ApiError::forbidden("This endpoint needs a user token; automation tokens have no user.")
        })
    }

    /// The one authorisation check (`domain::access`).
    pub fn require(&self, action: Action<'_>) -> ApiResult<()> {
        let checked = self.principal.require(action);
        if let Err(Denied::ReadOnly | Denied::Scope | Denied::TokenService) = checked {
            self.metrics.token_check(TokenOutcome::WrongScope);
        }
        Ok(checked?)
    }

    pub fn in_sudo(&self, now: i64) -> bool {
        self.sudo_until.is_some_and(|until| until > now)
    }

    /// The token as it stood before this request.
    pub fn token(&self) -> Token {
        self.entry.token_as_of(&self.last_use)
    }

    /// The token's JSON, as it stood before this request.
    pub fn token_json(&self) -> TokenJson<'_> {
        TokenJson::cached(&self.entry, &self.last_use)
    }
}

/// The key in `Fastly-Key`; an empty header counts as absent.
fn presented_key(headers: &HeaderMap) -> ApiResult<Option<&str>> {
    let Some(value) = headers.get(KEY_HEADER_NAME) else {
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

/// The digest of the key in `Fastly-Key` (what the cache and the database know it by);
/// None when there is none. A malformed key is refused here, before any other work.
fn presented_digest(parts: &Parts, state: &AppState) -> ApiResult<Option<[u8; 32]>> {
    let Some(key) = presented_key(&parts.headers)? else {
        return Ok(None);
    };
    if secret::check_shape(key).is_err() {
        state.metrics.token_check(TokenOutcome::Unknown);
        return Err(ApiError::unauthorized());
    }
    Ok(Some(secret::digest_bytes(key)))
}

/// Authenticates the key of `digest`; every outcome is counted
/// (`tokenpanel_token_verifications_total`).
async fn authenticate(parts: &mut Parts, state: &AppState, digest: [u8; 32]) -> ApiResult<Caller> {
    let count = |outcome| state.metrics.token_check(outcome);
    let Ok(ClientIp(ip)) = ClientIp::from_request_parts(parts, state).await;
    let now = state.clock.unix();
    let cached = match state.tokens.lookup(&state.db, &digest, now, &ip).await? {
        Lookup::Found(cached) => cached,
        Lookup::Unknown => {
            // A rolled secret whose token is gone: refused like an expired token, and
            // recorded (an attack signal).
            let hex = secret::hex(&digest);
            let retired = token_lifecycle::rotated_secret_used(state, &hex, &ip).await?;
            return Err(match retired {
                Some(retired) => {
                    count(TokenOutcome::Expired);
                    expired(retired.token_id.as_str(), retired.retired_at)
                }
                None => {
                    count(TokenOutcome::Unknown);
                    ApiError::unauthorized()
                }
            });
        }
        Lookup::Throttled(wait) => return Err(ApiError::throttled(wait)),
    };
    // Checked on every request, never remembered: the clock moves.
    if let Some(expired_at) = cached.expires_at().filter(|at| *at <= now) {
        if cached.is_replaced() {
            token_lifecycle::rotated_secret_used(state, &secret::hex(&digest), &ip).await?;
        }
        count(TokenOutcome::Expired);
        return Err(expired(cached.id(), expired_at));
    }
    // The allowlist is checked on every request, from the row just read.
    if !cached.allows_address(ip.parse().ok()) {
        token_lifecycle::address_refused(state, &cached.token(), &ip).await?;
        count(TokenOutcome::AddressRefused);
        return Err(ApiError::forbidden(ADDRESS_REFUSED));
    }
    let (role, owner) = match cached.kind() {
        // The owner left the account or was locked: the token is worth nothing.
        TokenKind::User if cached.owner_locked() => (None, None),
        TokenKind::User => (cached.member_role(), cached.user_id()),
        TokenKind::Automation => (cached.role(), None),
    };
    let Some(role) = role else {
        count(TokenOutcome::Unknown);
        return Err(ApiError::unauthorized());
    };
    super::expiry_header::note(parts, cached.expires_at());
    // Only engineers are ever limited to some services, and only as members: an
    // automation token belongs to no one.
    let services = match owner {
        Some(_) => cached.access(),
        None => ServiceAccess::All,
    };
    let owner = owner.map(UserId::from_raw);
    let agent = parts
        .headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let last_use = state.tokens.used(&cached, now, &ip, agent);
    state.usage.note(&cached);
    let token_id = TokenId::from_raw(cached.id());
    count(TokenOutcome::Ok);
    RequestNotes::update(&parts.extensions, |n| {
        n.user_id.clone_from(&owner);
        n.token_id = Some(token_id.clone());
    });
    let principal = Principal {
        account_id: AccountId::from_raw(cached.account_id()),
        role,
        user_id: owner,
        token: Some(TokenGrant {
            id: token_id.clone(),
            scopes: cached.scope(),
            services: cached.services().to_vec(),
        }),
        services,
    };
    super::write_limit::charge(state, parts, &principal).await?;
    Ok(Caller {
        principal,
        token_id,
        last_use,
        sudo_until: cached.sudo_until(),
        entry: cached,
        ip,
        metrics: state.metrics.clone(),
    })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        match presented_digest(parts, state)? {
            Some(digest) => authenticate(parts, state, digest).await,
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
        match presented_digest(parts, state)? {
            Some(digest) => Ok(MaybeCaller(Some(authenticate(parts, state, digest).await?))),
            None => Ok(MaybeCaller(None)),
        }
    }
}

/// The account, which must exist for a token or membership to be valid.
pub async fn account(ctx: &Context, id: &AccountId) -> ApiResult<Account> {
    account_store::find(&ctx.db.pool, id)
        .await?
        .ok_or_else(ApiError::unauthorized)
}

/// Checks the `Fastly-OTP` code of a user with two-factor authentication (and spends
/// it); users without it pass. Missing or wrong: 400 `2fa.verify`, as Fastly answers;
/// locked out after repeated wrong codes: 429.
pub async fn second_factor(ctx: &Context, user: &User, code: Option<&str>) -> ApiResult<()> {
    if !user.has_two_factor() {
        return Ok(());
    }
    if let Some(wait) = authentication::second_factor_locked(ctx, &user.id).await? {
        return Err(ApiError::throttled(wait));
    }
    let Some(code) = code else {
        return Err(ApiError::two_factor());
    };
    match authentication::check_second_factor(ctx, user, code).await? {
        CodeCheck::Accepted => Ok(()),
        CodeCheck::Wrong => Err(ApiError::two_factor()),
        CodeCheck::Locked(wait) => Err(ApiError::throttled(wait)),
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
    ctx: &Context,
    caller: &Caller,
    user: &User,
    password: &str,
    otp: Option<&str>,
    wrong: impl Fn() -> ApiError,
) -> ApiResult<()> {
    let code = if user.has_two_factor() {
        if let Some(wait) = authentication::second_factor_locked(ctx, &user.id).await? {
            return Err(ApiError::throttled(wait));
        }
        // The caller already holds the user's token: saying a code is needed tells
        // them nothing new, and spares a password check that could not succeed.
        Some(otp.ok_or_else(ApiError::two_factor)?)
    } else {
        None
    };
    let password = Password::new(password);
    let outcome =
        authentication::reauthenticate(ctx, user, caller.account_id(), &password, code, &caller.ip)
            .await?;
    match outcome {
        Outcome::Accepted(_) => Ok(()),
        // The password was right but the code was not.
        Outcome::WrongCode => Err(ApiError::two_factor()),
        Outcome::Rejected => Err(wrong()),
        Outcome::Throttled(wait) => Err(ApiError::throttled(wait)),
    }
}
