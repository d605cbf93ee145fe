//! Creating a token: the form (behind sudo mode), its Access search, and the page that
//! shows the new token string once.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use time::{OffsetDateTime, Time};

use crate::db::service_store::{self, Service};
use crate::db::token_policy_store;
use crate::domain::access::Action;
use crate::domain::cidr::Allowlist;
use crate::domain::grant::{self, ServiceRef};
use crate::domain::ids::ServiceId;
use crate::domain::random;
use crate::domain::roles::{Role, Scope, ScopeSet};
use crate::domain::secret::TokenKind;
use crate::domain::token_policy::TokenPolicy;
use crate::domain::validate;
use crate::http::{ClientIp, Form};
use crate::ops::token_lifecycle::{self, IssueError, TokenRequest};
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::page::{date, parse_date, render, render_with, FieldErrors, Layout, Section};
use crate::web::session::SignedIn;
use crate::web::sudo::{Elevated, Sudo};

const DEFAULT_EXPIRY_DAYS: i64 = 90;
/// Pending create-form nonces kept per session (one per open form, a few tabs' worth).
const MAX_NONCES: usize = 5;
const NONCES: &str = "token_form_nonces";

pub struct ScopeOption {
    pub value: &'static str,
    pub label: &'static str,
    pub checked: bool,
    pub disabled: bool,
    /// The automation roles that may use the scope, space-separated, for app.js to
    /// enable and disable the box as the Role changes.
    pub automation_roles: String,
    /// The account's token policy keeps it off user tokens (app.js disables it while
    /// the Type is "User token").
    pub not_on_user_tokens: bool,
}

pub struct RoleOption {
    pub value: &'static str,
    pub label: &'static str,
    pub checked: bool,
}

pub struct ServiceOption {
    pub id: ServiceId,
    pub name: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "tokens/new.html")]
struct NewTokenPage {
    layout: Layout,
    nonce: String,
    /// The Type, Role and TLS management controls are offered (superusers).
    offers_automation: bool,
    kind: String,
    roles: Vec<RoleOption>,
    tls: bool,
    name: String,
    description: String,
    /// The allowlist as typed, one entry a line.
    allowed_cidrs: String,
    /// The client's address, for "Add my current address".
    my_address: String,
    scopes: Vec<ScopeOption>,
    all_services: bool,
    limited: bool,
    services: Vec<ServiceOption>,
    expiration: String,
    expires_on: String,
    default_expiry: String,
    tomorrow: String,
    /// The expiry choices the token policy leaves: "90 days", "Never expire", and when
    /// the maximum lifetime is shorter than 90 days, that maximum instead.
    offers_default: bool,
    offers_never: bool,
    max_days: Option<i64>,
    /// The last day the date field accepts (empty: no limit).
    latest_date: String,
    /// Why the form offers less: one sentence per rule of the account's token policy.
    policy_notes: Vec<String>,
    errors: FieldErrors,
    /// Sudo mode ran out while the form was open: ask for the password inline.
    reauth: bool,
    needs_code: bool,
}

/// The services a member may give a token: all of the account's, or those a limited
/// engineer works on.
async fn pickable_services(
    state: &AppState,
    signed_in: &SignedIn,
) -> Result<Vec<Service>, WebError> {
    let all = service_store::list(&state.db.pool, signed_in.account_id()).await?;
    Ok(match signed_in.principal.services.limited_to() {
        Some(ids) => all.into_iter().filter(|s| ids.contains(&s.id)).collect(),
        None => all,
    })
}

/// The values of the create form, as typed.
struct Typed {
    /// "user" or "automation" (superusers only).
    kind: String,
    role: String,
    tls: bool,
    name: String,
    description: String,
    allowed_cidrs: String,
    /// The address the request came from (not a form field).
    my_address: String,
    scopes: Vec<String>,
    all_services: bool,
    services: Vec<ServiceId>,
    expiration: String,
    expires_on: String,
}

impl Typed {
    fn defaults() -> Self {
        Typed {
            kind: TokenKind::User.as_str().to_owned(),
            role: String::new(),
            tls: false,
            name: String::new(),
            description: String::new(),
            allowed_cidrs: String::new(),
            my_address: String::new(),
            scopes: vec![Scope::Global.as_str().to_owned()],
            all_services: true,
            services: Vec::new(),
            expiration: "90d".into(),
            expires_on: String::new(),
        }
    }

    fn from_form(form: &Form) -> Self {
        Typed {
            kind: form.text("type").to_owned(),
            role: form.text("role").to_owned(),
            tls: form.has("tls_access"),
            name: form.text("name").to_owned(),
            description: form.text("description").to_owned(),
            allowed_cidrs: form.text("allowed_cidrs").to_owned(),
            my_address: String::new(),
            scopes: form.all("scope").into_iter().map(str::to_owned).collect(),
            all_services: form.text("access") != "selected",
            services: form
                .all("services")
                .into_iter()
                .map(ServiceId::from_raw)
                .collect(),
            expiration: form.get("expiration").unwrap_or("90d").to_owned(),
            expires_on: form.text("expires_on").to_owned(),
        }
    }
}

async fn form_page(
    state: &AppState,
    signed_in: &SignedIn,
    typed: Typed,
    errors: FieldErrors,
    reauth: bool,
) -> Result<NewTokenPage, WebError> {
    let now = state.clock.now();
    let role = signed_in.member.role;
    let policy = token_policy_store::find(&state.db.pool, signed_in.account_id()).await?;
    let services = pickable_services(state, signed_in).await?;
    let limited = signed_in.principal.services.is_limited();
    let nonce = random::base62(24);
    let mut nonces: Vec<String> = signed_in.session.get(NONCES).await?.unwrap_or_default();
    nonces.push(nonce.clone());
    if nonces.len() > MAX_NONCES {
        nonces.remove(0);
    }
    signed_in.session.insert(NONCES, &nonces).await?;
    let offers_automation = signed_in.may(Action::CreateAutomationTokens);
    let automation = offers_automation && typed.kind == TokenKind::Automation.as_str();
    // The scopes on offer follow the automation token's role once one is chosen.
    let scope_role = match Role::for_automation(&typed.role) {
        Ok(chosen) if automation => chosen,
        _ => role,
    };
    let scopes = Scope::ALL
        .into_iter()
        .map(|scope| {
            let not_on_user_tokens = policy.no_global_user_tokens && scope == Scope::Global;
            // Who can only make user tokens never gets the box; a superuser's form
            // leaves it to app.js (and the server's check) as the Type changes.
            let refused = not_on_user_tokens && !offers_automation;
            ScopeOption {
                value: scope.as_str(),
                label: scope.label(),
                checked: typed.scopes.iter().any(|s| s == scope.as_str())
                    && scope_role.may_use(scope)
                    && !refused,
                disabled: !scope_role.may_use(scope) || refused,
                automation_roles: Role::AUTOMATION
                    .into_iter()
                    .filter(|r| r.may_use(scope))
                    .map(Role::as_str)
                    .collect::<Vec<_>>()
                    .join(" "),
                not_on_user_tokens,
            }
        })
        .collect();
    let roles = Role::AUTOMATION
        .into_iter()
        .map(|r| RoleOption {
            value: r.as_str(),
            label: r.label(),
            checked: typed.role == r.as_str(),
        })
        .collect();
    let services = services
        .into_iter()
        .map(|s| ServiceOption {
            selected: typed.services.contains(&s.id),
            id: s.id,
            name: s.name,
        })
        .collect();
    Ok(NewTokenPage {
        layout: signed_in.layout("Create a Token", Section::PersonalTokens),
        nonce,
        offers_automation,
        kind: if automation {
            TokenKind::Automation.as_str().to_owned()
        } else {
            TokenKind::User.as_str().to_owned()
        },
        roles,
        tls: typed.tls,
        name: typed.name,
        description: typed.description,
        allowed_cidrs: typed.allowed_cidrs,
        my_address: typed.my_address,
        scopes,
        all_services: typed.all_services && !limited,
        limited,
        services,
        expiration: typed.expiration,
        expires_on: typed.expires_on,
        default_expiry: date((now + time::Duration::days(DEFAULT_EXPIRY_DAYS)).unix_timestamp()),
        tomorrow: date((now + time::Duration::days(1)).unix_timestamp()),
        offers_default: offers_default(&policy),
        offers_never: policy.allows_never(),
        max_days: policy.max_lifetime_days,
        latest_date: policy
            .latest_expiry(now.unix_timestamp())
            .map(date)
            .unwrap_or_default(),
        policy_notes: policy_notes(&policy),
        errors,
        reauth,
        needs_code: signed_in.member.user.has_two_factor(),
    })
}

/// Whether the "90 days" choice fits the policy's maximum lifetime.
fn offers_default(policy: &TokenPolicy) -> bool {
    policy
        .max_lifetime_days
        .is_none_or(|max| max >= DEFAULT_EXPIRY_DAYS)
}

/// What the account's token policy asks, in the words the form shows above its fields.
fn policy_notes(policy: &TokenPolicy) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(days) = policy.max_lifetime_days {
        notes.push(format!(
            "Tokens last at most {days} {}.",
            if days == 1 { "day" } else { "days" }
        ));
    } else if policy.require_expiry {
        notes.push("Tokens must expire: \u{201c}Never expire\u{201d} is not offered.".to_owned());
    }
    if policy.no_global_user_tokens {
        notes.push("User tokens cannot have the global scope.".to_owned());
    }
    if policy.automation_needs_allowlist {
        notes.push("Automation tokens need an IP allowlist.".to_owned());
    }
    notes
}

pub async fn new_form(
    State(state): State<AppState>,
    elevated: Elevated,
    ClientIp(ip): ClientIp,
) -> Result<Response, WebError> {
    let policy = token_policy_store::find(&state.db.pool, elevated.account_id()).await?;
    let mut typed = Typed {
        my_address: ip,
        ..Typed::defaults()
    };
    if policy.no_global_user_tokens {
        typed.scopes = vec![Scope::GlobalRead.as_str().to_owned()];
    }
    if !offers_default(&policy) {
        typed.expiration = "max".into();
    }
    let page = form_page(&state, &elevated, typed, FieldErrors::default(), false).await?;
    render(&page)
}

/// The expiry chosen on the form, as Unix seconds (None: never). "max" is the token
/// policy's maximum lifetime, offered when it is shorter than 90 days.
fn expiry(typed: &Typed, now: OffsetDateTime, policy: &TokenPolicy) -> Result<Option<i64>, String> {
    match typed.expiration.as_str() {
        "90d" => Ok(Some(now.unix_timestamp() + DEFAULT_EXPIRY_DAYS * 86_400)),
        "max" => policy
            .latest_expiry(now.unix_timestamp())
            .map(Some)
            .ok_or_else(|| "Choose an expiration.".to_owned()),
        "never" => Ok(None),
        "date" => {
            let day =
                parse_date(&typed.expires_on).ok_or("Enter the expiration date as YYYY-MM-DD.")?;
            if day <= now.date() {
                return Err("The expiration date must be in the future.".into());
            }
            let at = day.with_time(Time::MIDNIGHT).assume_utc().unix_timestamp();
            validate::expiry(at, now.unix_timestamp())
                .map(Some)
                .map_err(|_| "The expiration date is too far in the future.".into())
        }
        _ => Err("Choose an expiration.".into()),
    }
}

#[derive(Template)]
#[template(path = "tokens/created.html")]
pub(super) struct CreatedPage {
    pub layout: Layout,
    /// Where Okay leads: the list the new token appears on.
    pub okay: &'static str,
    pub name: String,
    pub secret: String,
    pub expires: String,
    /// For a rolled token: what became of the old secret.
    pub rolled: Option<String>,
}

pub async fn create(
    State(state): State<AppState>,
    sudo: Sudo,
    ClientIp(ip): ClientIp,
    form: Form,
) -> Result<Response, WebError> {
    // A reload of the "token created" page re-posts the form: the nonce is spent, so no
    // second token is made and no secret is shown.
    let mut nonces: Vec<String> = sudo
        .signed_in()
        .session
        .get(NONCES)
        .await?
        .unwrap_or_default();
    let Some(position) = nonces.iter().position(|n| n == form.text("nonce")) else {
        return Ok(Redirect::to("/account/tokens").into_response());
    };
    let mut typed = Typed::from_form(&form);
    typed.my_address = ip.clone();
    let mut errors = FieldErrors::default();
    // "Add my current address" (a submit button, so it works without JavaScript): the
    // same form again, every field kept, with the client's address appended to the
    // allowlist. Nothing is created.
    if form.has("add_my_address") {
        let mut list = typed.allowed_cidrs.trim_end().to_owned();
        if !list.is_empty() {
            list.push('\n');
        }
        list.push_str(&ip);
        typed.allowed_cidrs = list;
        let page = form_page(&state, sudo.signed_in(), typed, errors, false).await?;
        return render(&page);
    }
    // Sudo mode may have run out while the form was open: the form then carries the
    // password, and keeps every field while asking for it.
    let signed_in = match sudo {
        Sudo::Active(elevated) => elevated,
        Sudo::Required(needs) => {
            let refused = match form.get("sudo_password") {
                Some(password) => {
                    match needs
                        .reauthenticate(&state, password, form.text("sudo_code"), &ip)
                        .await?
                    {
                        Ok(elevated) => Ok(elevated),
                        Err(refused) => Err((refused.signed_in, refused.message)),
                    }
                }
                None => Err((needs.into_signed_in(), "Your re-authentication has expired. Enter your password to re-authenticate your permissions.".to_owned())),
            };
            match refused {
                Ok(elevated) => elevated,
                Err((signed_in, message)) => {
                    errors.add("sudo", message);
                    let page = form_page(&state, &signed_in, typed, errors, true).await?;
                    return render_with(StatusCode::UNAUTHORIZED, &page);
                }
            }
        }
    };

    let name = validate::name(&typed.name, "Name")
        .map_err(|e| errors.add("name", e))
        .ok();
    let description = validate::description(&typed.description)
        .map_err(|e| errors.add("description", e))
        .ok();
    let allowed_cidrs = Allowlist::parse_input(typed.allowed_cidrs.lines())
        .map_err(|e| errors.add("allowed_cidrs", e))
        .ok();
    // Only those who may create automation tokens see (and may send) a Type.
    let kind = match form.get("type") {
        None => Some(TokenKind::User),
        Some(_) if !signed_in.may(Action::CreateAutomationTokens) => None,
        Some(t) => TokenKind::parse(t),
    };
    let Some(kind) = kind else {
        errors.add("type", "Choose a token type you may create.");
        let page = form_page(&state, &signed_in, typed, errors, false).await?;
        return render_with(StatusCode::UNPROCESSABLE_ENTITY, &page);
    };
    // An automation token carries the role chosen for it, and its own TLS flag; for a
    // user token the Role and TLS fields (visible without JavaScript) are ignored.
    let (grant_role, automation_role) = match kind {
        TokenKind::User => (signed_in.member.role, None),
        TokenKind::Automation => match Role::for_automation(&typed.role) {
            Ok(chosen) => (chosen, Some(chosen)),
            Err(e) => {
                errors.add("role", e);
                (signed_in.member.role, None)
            }
        },
    };
    let scopes = match ScopeSet::parse(&typed.scopes.join(" ")) {
        Ok(set) => Some(set),
        Err(_) => {
            errors.add("scope", "Choose scopes from the list.");
            None
        }
    };
    let limited = signed_in.principal.services.limited_to();
    let all_services = service_store::list(&state.db.pool, signed_in.account_id()).await?;
    if let Some(scopes) = &scopes {
        let refs: Vec<ServiceRef> = all_services
            .iter()
            .map(|s| ServiceRef {
                id: &s.id,
                name: &s.name,
            })
            .collect();
        if let Err(e) = grant::check(
            grant_role,
            scopes,
            typed.all_services,
            &typed.services,
            &refs,
            limited.as_deref(),
        ) {
            errors.add(e.field(), e.message());
        }
    }
    let policy = token_policy_store::find(&state.db.pool, signed_in.account_id()).await?;
    let expires_at = expiry(&typed, state.clock.now(), &policy)
        .map_err(|e| errors.add("expiration", e))
        .ok();

    let (Some(name), Some(description), Some(allowed_cidrs), Some(scopes), Some(expires_at), true) = (
        name,
        description,
        allowed_cidrs,
        scopes,
        expires_at,
        errors.is_empty(),
    ) else {
        let page = form_page(&state, &signed_in, typed, errors, false).await?;
        return render_with(StatusCode::UNPROCESSABLE_ENTITY, &page);
    };
    let chosen: Vec<ServiceId> = if typed.all_services {
        Vec::new()
    } else {
        typed.services.clone()
    };
    let request = TokenRequest {
        kind,
        account_id: signed_in.account_id(),
        actor_id: signed_in.user_id(),
        name: &name,
        scopes: &scopes,
        services: &chosen,
        role: automation_role,
        tls_access: kind == TokenKind::Automation && typed.tls,
        expires_at,
        description: description.as_deref(),
        allowed_cidrs: allowed_cidrs.as_ref(),
        rolled: None,
        ip: Some(&ip),
    };
    let issued = match token_lifecycle::issue(&state, &request).await {
        Ok(issued) => issued,
        Err(IssueError::LimitReached(limit)) => {
            errors.add("form", IssueError::limit_message(limit));
            let page = form_page(&state, &signed_in, typed, errors, false).await?;
            return render_with(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
        Err(IssueError::ServiceGone) => {
            errors.add("access", IssueError::SERVICE_GONE);
            let page = form_page(&state, &signed_in, typed, errors, false).await?;
            return render_with(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
        Err(IssueError::Policy(rule)) => {
            errors.add(rule.field(), rule.message());
            let page = form_page(&state, &signed_in, typed, errors, false).await?;
            return render_with(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
        Err(IssueError::NotMember) => {
            return Err(WebError::Forbidden(IssueError::NOT_MEMBER.into()))
        }
        Err(IssueError::NotRollable) => {
            return Err(WebError::internal("a new token cannot be unrollable"))
        }
        Err(IssueError::Database(e)) => return Err(e.into()),
    };
    nonces.remove(position);
    signed_in.session.insert(NONCES, &nonces).await?;
    let page = CreatedPage {
        layout: signed_in.layout("Token created", Section::PersonalTokens),
        okay: match kind {
            TokenKind::User => "/account/tokens",
            TokenKind::Automation => "/account/account-tokens",
        },
        name,
        secret: issued.secret.expose().to_owned(),
        expires: expires_at.map(date).unwrap_or_else(|| "Never".to_owned()),
        rolled: None,
    };
    render(&page)
}

#[derive(Template)]
#[template(path = "tokens/new.html", block = "service_options")]
struct ServiceOptions {
    services: Vec<ServiceOption>,
}

/// htmx search-as-you-type for the Access list: the matching services, plus the ones
/// already selected so a search never drops a choice.
pub async fn service_options(
    State(state): State<AppState>,
    signed_in: SignedIn,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let query = Form::from_query(query.as_deref()).map_err(WebError::BadRequest)?;
    let needle = query.text("q").trim().to_lowercase();
    let selected: Vec<&str> = query.all("services");
    let services = pickable_services(&state, &signed_in)
        .await?
        .into_iter()
        .filter(|s| selected.contains(&s.id.as_str()) || s.name.to_lowercase().contains(&needle))
        .map(|s| ServiceOption {
            selected: selected.contains(&s.id.as_str()),
            id: s.id,
            name: s.name,
        })
        .collect();
    render(&ServiceOptions { services })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::token_policy::DAY;

    #[test]
    fn expiry_choices() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let mut typed = Typed::defaults();
        let none = TokenPolicy::default();
        let expiry = |typed: &Typed, now| expiry(typed, now, &none);
        assert_eq!(expiry(&typed, now), Ok(Some(1_800_000_000 + 90 * 86_400)));
        typed.expiration = "never".into();
        assert_eq!(expiry(&typed, now), Ok(None));
        typed.expiration = "date".into();
        typed.expires_on = "2027-02-01".into();
        assert_eq!(expiry(&typed, now), Ok(Some(1_801_440_000)));
        typed.expires_on = "2027-01-15".into();
        assert!(expiry(&typed, now).is_err(), "today is not in the future");
        typed.expires_on = "2027-13-01".into();
        assert!(expiry(&typed, now).is_err());
        typed.expiration = "forever".into();
        assert!(expiry(&typed, now).is_err());
        typed.expiration = "max".into();
        assert!(expiry(&typed, now).is_err(), "no maximum, no such choice");
        let month = TokenPolicy {
            max_lifetime_days: Some(30),
            ..TokenPolicy::default()
        };
        assert_eq!(
            super::expiry(&typed, now, &month),
            Ok(Some(1_800_000_000 + 30 * DAY))
        );
        assert!(!offers_default(&month));
        assert_eq!(policy_notes(&month), vec!["Tokens last at most 30 days."]);
    }
}
