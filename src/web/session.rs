//! Who is signed in. The session (server side, in the database) holds the user id, the
//! current account, the CSRF token and the sudo deadline; nothing else about the user.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tower_sessions::Session;

use super::error::WebError;
use super::page::{Layout, Nav, Opens, Section};
use crate::db::member_store::{self, Member};
use crate::domain::access::{Action, Principal};
use crate::domain::ids::{AccountId, UserId};
use crate::domain::roles::Role;
use crate::state::AppState;

const USER_ID: &str = "user_id";
const ACCOUNT_ID: &str = "account_id";
const SUDO_UNTIL: &str = "sudo_until";
/// The second sign-in step: who passed the password, until when, and where to go next.
const PENDING_USER_ID: &str = "pending_user_id";
const PENDING_UNTIL: &str = "pending_until";
const PENDING_NEXT: &str = "pending_next";
/// How long the second sign-in step waits for a code.
pub const PENDING_SECONDS: i64 = 5 * 60;
/// Where a user must go while their account requires two-factor authentication and
/// they have none; nothing else answers until they have enrolled.
pub const ENROLMENT_PATH: &str = "/account/security/two-factor";

/// Starts a signed-in session under a new id, so a session id seen before sign-in is
/// worth nothing after it.
pub async fn sign_in(
    session: &Session,
    user_id: &UserId,
    account_id: &AccountId,
) -> Result<(), WebError> {
    session.cycle_id().await?;
    session.remove::<i64>(SUDO_UNTIL).await?;
    clear_pending(session).await?;
    session.insert(USER_ID, user_id).await?;
    session.insert(ACCOUNT_ID, account_id).await?;
    super::csrf::rotate(session).await?;
    Ok(())
}

/// After a right password for a user with two-factor authentication: a pending state
/// that grants nothing but the code page, for a few minutes, under a new session id.
pub async fn begin_second_step(
    session: &Session,
    user_id: &UserId,
    until: i64,
    next: &str,
) -> Result<(), WebError> {
    session.cycle_id().await?;
    session.insert(PENDING_USER_ID, user_id).await?;
    session.insert(PENDING_UNTIL, until).await?;
    session.insert(PENDING_NEXT, next).await?;
    Ok(())
}

/// The user waiting for the second step, and where to go after it, while not expired.
pub async fn pending_second_step(
    session: &Session,
    now: i64,
) -> Result<Option<(UserId, String)>, WebError> {
    let until = session.get::<i64>(PENDING_UNTIL).await?;
    if until.is_none_or(|until| until <= now) {
        return Ok(None);
    }
    let user_id = session.get::<UserId>(PENDING_USER_ID).await?;
    let next = session
        .get::<String>(PENDING_NEXT)
        .await?
        .unwrap_or_default();
    Ok(user_id.map(|id| (id, next)))
}

pub async fn clear_pending(session: &Session) -> Result<(), WebError> {
    session.remove::<UserId>(PENDING_USER_ID).await?;
    session.remove::<i64>(PENDING_UNTIL).await?;
    session.remove::<String>(PENDING_NEXT).await?;
    Ok(())
}

/// The (user id, account id) of a signed-in session, without loading either.
pub async fn current_ids(session: &Session) -> Result<Option<(UserId, AccountId)>, WebError> {
    let user_id = session.get::<UserId>(USER_ID).await?;
    let account_id = session.get::<AccountId>(ACCOUNT_ID).await?;
    Ok(user_id.zip(account_id))
}

/// Makes another of the user's accounts the current one, when they are a member of it:
/// their role there, or None (and nothing changes) when they are not. Sudo mode ends: it
/// was granted for work in the account the user was in.
pub async fn switch_account(
    state: &AppState,
    session: &Session,
    user_id: &UserId,
    account_id: &AccountId,
) -> Result<Option<Role>, WebError> {
    let Some(role) = member_store::role_of(&state.db.pool, account_id, user_id).await? else {
        return Ok(None);
    };
    session.remove::<i64>(SUDO_UNTIL).await?;
    session.insert(ACCOUNT_ID, account_id).await?;
    Ok(Some(role))
}

pub async fn sign_out(session: &Session) -> Result<(), WebError> {
    session.flush().await?;
    Ok(())
}

/// The signed-in member for this request.
pub struct SignedIn {
    pub member: Member,
    pub session: Session,
    pub csrf: String,
    /// Every account the user belongs to, (id, name), for the account switcher.
    pub accounts: Vec<(AccountId, String)>,
    /// Who acts, for `domain::access`: the member's role and service access, no token.
    pub principal: Principal,
}

impl SignedIn {
    /// The layout of a signed-in page titled `title` in `section` of the navigation.
    pub fn layout(&self, title: impl Into<String>, section: Section) -> Layout {
        Layout {
            title: title.into(),
            nav: Some(self.nav(section)),
        }
    }

    fn nav(&self, section: Section) -> Nav {
        Nav {
            user_name: self.member.user.name.clone(),
            account_name: self.member.account.name.clone(),
            role: self.member.role,
            csrf: self.csrf.clone(),
            section,
            account_id: self.member.account.id.clone(),
            accounts: self.accounts.clone(),
            opens: Opens {
                account_tokens: self.may(Action::ViewAccountTokens),
                users: self.may(Action::ViewUsers),
                services: self.may(Action::ViewServices),
            },
        }
    }

    pub fn user_id(&self) -> &UserId {
        &self.member.user.id
    }

    pub fn account_id(&self) -> &AccountId {
        &self.member.account.id
    }

    /// The one authorisation check (`domain::access`); a refusal is a 403 page.
    pub fn require(&self, action: Action<'_>) -> Result<(), WebError> {
        Ok(self.principal.require(action)?)
    }

    pub fn may(&self, action: Action<'_>) -> bool {
        self.principal.may(action)
    }

    /// Seconds of sudo mode left, if any.
    pub async fn sudo_remaining(&self, now: i64) -> Result<Option<i64>, WebError> {
        let until = self.session.get::<i64>(SUDO_UNTIL).await?;
        Ok(until.filter(|until| *until > now).map(|until| until - now))
    }

    /// Enters sudo mode under a new session id.
    pub async fn elevate(&self, until: i64) -> Result<(), WebError> {
        self.session.cycle_id().await?;
        self.session.insert(SUDO_UNTIL, until).await?;
        Ok(())
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let next = Some(
            parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/")
                .to_owned(),
        )
        .filter(|_| parts.method == axum::http::Method::GET);
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|(_, msg)| WebError::internal(msg))?;
        let Some((user_id, account_id)) = current_ids(&session).await? else {
            return Err(WebError::SignInRequired { next });
        };
        let member = member_store::find(&state.db.pool, &account_id, &user_id).await?;
        let Some(member) = member.filter(|m| !m.user.is_locked()) else {
            // The user or the membership is gone, or the user was locked: end the session.
            session.flush().await?;
            return Err(WebError::SignInRequired { next });
        };
        if member.account.forces_2fa()
            && !member.user.has_two_factor()
            && !parts.uri.path().starts_with(ENROLMENT_PATH)
        {
            return Err(WebError::EnrolmentRequired);
        }
        let csrf = super::csrf::token(&session).await?;
        let accounts = member_store::accounts_of(&state.db.pool, &user_id).await?;
        let services =
            member_store::service_access(&state.db.pool, &account_id, &user_id, member.role)
                .await?;
        let principal = Principal {
            account_id,
            role: member.role,
            user_id: Some(user_id),
            token: None,
            services,
        };
        Ok(SignedIn {
            member,
            session,
            csrf,
            accounts,
            principal,
        })
    }
}
