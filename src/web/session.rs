//! Who is signed in. The session (server side, in the database) holds the user id, the
//! current account, the CSRF token, the sudo deadline, and for the Sessions page when it
//! was signed in, when it was last active, from which address and browser; nothing
//! else about the user.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tower_sessions::Session;

use super::error::WebError;
use super::page::{ExpiringToken, Layout, Nav, NoticeView, Opens, Section, When};
use crate::db::exposure_store;
use crate::db::member_store::{self, Member};
use crate::db::session_store::{self, keys};
use crate::domain::access::{Action, Principal};
use crate::domain::ids::{AccountId, UserId};
use crate::domain::roles::Role;
use crate::http::ClientIp;
use crate::state::AppState;

const USER_ID: &str = keys::USER_ID;
const ACCOUNT_ID: &str = keys::ACCOUNT_ID;
const SUDO_UNTIL: &str = "sudo_until";
/// A session's last activity (and address and browser) is written at most this often,
/// so a busy browser does not write its session on every request.
const ACTIVITY_EVERY_SECONDS: i64 = 60;
/// User agents are kept to this many characters.
const USER_AGENT_MAX: usize = 512;
/// The second sign-in step: who passed the password, until when, and where to go next.
const PENDING_USER_ID: &str = "pending_user_id";
const PENDING_UNTIL: &str = "pending_until";
const PENDING_NEXT: &str = "pending_next";
/// How long the second sign-in step waits for a code.
pub const PENDING_SECONDS: i64 = 5 * 60;
/// Where a user must go while their account requires two-factor authentication and
/// they have none; nothing else answers until they have enrolled.
pub const ENROLMENT_PATH: &str = "/account/security/two-factor";

/// Where a request comes from: the client's address and its browser (user agent), for
/// the Sessions page.
pub struct Browser {
    pub ip: String,
    pub user_agent: String,
}

impl FromRequestParts<AppState> for Browser {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ClientIp(ip) = ClientIp::from_request_parts(parts, state).await?;
        let user_agent = parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .chars()
            .take(USER_AGENT_MAX)
            .collect();
        Ok(Browser { ip, user_agent })
    }
}

/// Starts a signed-in session under a new id, so a session id seen before sign-in is
/// worth nothing after it. `now` starts the session's absolute lifetime.
pub async fn sign_in(
    session: &Session,
    user_id: &UserId,
    account_id: &AccountId,
    browser: &Browser,
    now: i64,
) -> Result<(), WebError> {
    session.cycle_id().await?;
    session.remove::<i64>(SUDO_UNTIL).await?;
    clear_pending(session).await?;
    session.insert(USER_ID, user_id).await?;
    session.insert(ACCOUNT_ID, account_id).await?;
    session.insert(keys::SIGNED_IN_AT, now).await?;
    note_activity(session, browser, now).await?;
    super::csrf::rotate(session).await?;
    Ok(())
}

async fn note_activity(session: &Session, browser: &Browser, now: i64) -> Result<(), WebError> {
    session.insert(keys::LAST_ACTIVE_AT, now).await?;
    session.insert(keys::IP, &browser.ip).await?;
    session
        .insert(keys::USER_AGENT, &browser.user_agent)
        .await?;
    Ok(())
}

/// The digest the current session is stored under; None while it has no id yet (a new
/// session, or one whose id changes in this request).
pub fn current_digest(session: &Session) -> Option<String> {
    session.id().map(|id| session_store::id_digest(&id))
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
    /// Seconds of sudo mode left when the request came in, if any.
    pub sudo_left: Option<i64>,
    /// Tokens expiring within a week, for the banner: loaded for page views only (GET,
    /// not htmx), with the notices, in one query (`exposure_store::page_alerts`).
    pub expiring: Vec<ExpiringToken>,
    pub expiring_more: bool,
    /// The member's notices, for page views only.
    pub notices: Vec<NoticeView>,
    /// The path and query of this request (for a notice's Dismiss to return to).
    pub here: String,
}

/// Notices shown at most.
const NOTICES_SHOWN: i64 = 10;

/// The expiry banner covers this many days ahead.
const EXPIRY_BANNER_DAYS: i64 = 7;
/// The banner names at most this many tokens.
const EXPIRY_BANNER_TOKENS: usize = 5;

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
            sudo_minutes_left: self.sudo_left.map(|seconds| (seconds + 59) / 60),
            account_id: self.member.account.id.clone(),
            accounts: self.accounts.clone(),
            opens: Opens {
                account_tokens: self.may(Action::ViewAccountTokens),
                users: self.may(Action::ViewUsers),
                services: self.may(Action::ViewServices),
            },
            expiring: self.expiring.clone(),
            expiring_more: self.expiring_more,
            notices: self.notices.clone(),
            here: self.here.clone(),
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
        sudo_remaining(&self.session, now).await
    }

    /// Enters sudo mode under a new session id.
    pub async fn elevate(&self, until: i64) -> Result<(), WebError> {
        self.session.cycle_id().await?;
        self.session.insert(SUDO_UNTIL, until).await?;
        Ok(())
    }

    /// Leaves sudo mode.
    pub async fn end_sudo(&self) -> Result<(), WebError> {
        self.session.remove::<i64>(SUDO_UNTIL).await?;
        Ok(())
    }

    /// The digest of this session, to tell it apart on the Sessions page.
    pub fn session_digest(&self) -> Option<String> {
        current_digest(&self.session)
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
        let now = state.clock.unix();
        let signed_in_at = session.get::<i64>(keys::SIGNED_IN_AT).await?;
        if signed_in_at.is_none_or(|at| at + state.settings.session_max_seconds <= now) {
            // Past the absolute lifetime, however active the session has been.
            session.flush().await?;
            return Err(WebError::SignInRequired { next });
        }
        let found = member_store::find_with_access(&state.db.pool, &account_id, &user_id).await?;
        let Some((member, services)) = found.filter(|(m, _)| !m.user.is_locked()) else {
            // The user or the membership is gone, or the user was locked: end the session.
            session.flush().await?;
            return Err(WebError::SignInRequired { next });
        };
        // Enrolment needs sudo mode, so the re-authentication page stays open too.
        if member.account.forces_2fa()
            && !member.user.has_two_factor()
            && !parts.uri.path().starts_with(ENROLMENT_PATH)
            && !parts.uri.path().starts_with("/account/sudo")
        {
            return Err(WebError::EnrolmentRequired);
        }
        let last_active = session.get::<i64>(keys::LAST_ACTIVE_AT).await?;
        if last_active.is_none_or(|at| now - at >= ACTIVITY_EVERY_SECONDS || at > now) {
            let Ok(browser) = Browser::from_request_parts(parts, state).await;
            note_activity(&session, &browser, now).await?;
        }
        let sudo_left = sudo_remaining(&session, now).await?;
        let csrf = super::csrf::token(&session).await?;
        crate::http::RequestNotes::update(&parts.extensions, |n| n.user_id = Some(user_id.clone()));
        let page_view =
            parts.method == axum::http::Method::GET && !crate::http::is_htmx(&parts.headers);
        let principal = Principal {
            account_id: account_id.clone(),
            role: member.role,
            user_id: Some(user_id.clone()),
            token: None,
            services,
        };
        // The account switcher's list and what the page shows above its content are
        // independent reads: side by side, so that on PostgreSQL a page waits for one
        // round trip fewer.
        let accounts = member_store::accounts_of(&state.db.pool, &user_id);
        let alerts = async {
            // One query, for page views only.
            if !page_view {
                return Ok(Vec::new());
            }
            exposure_store::page_alerts(
                &state.db.pool,
                &principal.account_id,
                &member.user.id,
                principal.may(Action::ViewAccountTokens),
                now,
                now + EXPIRY_BANNER_DAYS * 86_400,
                EXPIRY_BANNER_TOKENS as i64 + 1,
                NOTICES_SHOWN,
            )
            .await
        };
        let (accounts, alerts) = tokio::try_join!(accounts, alerts)?;
        let mut expiring = Vec::new();
        let mut notices = Vec::new();
        for alert in alerts {
            if alert.source == "notice" {
                notices.push(NoticeView {
                    when: When::new(alert.at, now),
                    id: alert.detail,
                    message: alert.text,
                    link: alert.link,
                });
            } else {
                expiring.push(ExpiringToken {
                    name: alert.text,
                    automation: alert.detail
                        == crate::domain::secret::TokenKind::Automation.as_str(),
                    when: When::new(alert.at, now),
                });
            }
        }
        let expiring_more = expiring.len() > EXPIRY_BANNER_TOKENS;
        expiring.truncate(EXPIRY_BANNER_TOKENS);
        let here = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .to_owned();
        Ok(SignedIn {
            member,
            session,
            csrf,
            accounts,
            principal,
            sudo_left,
            expiring,
            expiring_more,
            notices,
            here,
        })
    }
}

async fn sudo_remaining(session: &Session, now: i64) -> Result<Option<i64>, WebError> {
    let until = session.get::<i64>(SUDO_UNTIL).await?;
    Ok(until.filter(|until| *until > now).map(|until| until - now))
}
