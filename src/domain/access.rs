//! Who may do what: one `Principal` (who is acting, in which account, with which role,
//! through which token) and one `Action` vocabulary, decided by `Principal::require` for
//! the pages and the API alike. Pure rules, each answer tested below.
//!
//! A token's permission is its role (the owner's role in the account, or an automation
//! token's own role) ∩ its scopes ∩ its services ∩, for an engineer limited to some
//! services, the permission on each. A signed-in browser session acts with the member's
//! whole role: no token, so no scope or token-service limit applies.

use super::ids::{AccountId, ServiceId, TokenId, UserId};
use super::roles::{Role, Scope, ScopeSet, ServicePermission};
use super::secret::TokenKind;

/// Which services a member works on: all of the account's, or some with a permission
/// each. Only engineers are ever limited (see `ServiceAccess::of`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceAccess {
    All,
    Limited(Vec<(ServiceId, ServicePermission)>),
}

impl ServiceAccess {
    /// A member's access from their role and their `service_permissions` rows: an
    /// engineer without rows works on every service, and other roles are never limited.
    pub fn of(role: Role, rows: Vec<(ServiceId, ServicePermission)>) -> ServiceAccess {
        if role != Role::Engineer || rows.is_empty() {
            ServiceAccess::All
        } else {
            ServiceAccess::Limited(rows)
        }
    }

    /// The permission on one service; None when the member has no access to it.
    pub fn permission(&self, service: &ServiceId) -> Option<ServicePermission> {
        match self {
            ServiceAccess::All => Some(ServicePermission::Full),
            ServiceAccess::Limited(list) => {
                list.iter().find(|(id, _)| id == service).map(|(_, p)| *p)
            }
        }
    }

    pub fn is_limited(&self) -> bool {
        matches!(self, ServiceAccess::Limited(_))
    }

    /// The services a limited member may use; None when not limited.
    pub fn limited_to(&self) -> Option<Vec<ServiceId>> {
        match self {
            ServiceAccess::All => None,
            ServiceAccess::Limited(list) => Some(list.iter().map(|(id, _)| id.clone()).collect()),
        }
    }
}

/// The token a request came with, as far as authorisation is concerned.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    pub id: TokenId,
    pub scopes: ScopeSet,
    /// Empty: every service of the account.
    pub services: Vec<ServiceId>,
}

/// Who is acting. Built once per request: by the page extractor for a signed-in member,
/// by the API extractor for a token, each with the member's service access loaded then.
#[derive(Debug, Clone)]
pub struct Principal {
    pub account_id: AccountId,
    /// The member's role, or an automation token's own role.
    pub role: Role,
    /// The person acting: the signed-in user, or the owner of a user token. None for an
    /// automation token, which belongs to no one.
    pub user_id: Option<UserId>,
    /// The token of an API request; None for a browser session.
    pub token: Option<TokenGrant>,
    pub services: ServiceAccess,
}

/// A token as the rules about reaching other tokens see it.
#[derive(Debug, Clone, Copy)]
pub struct TokenFacts<'a> {
    pub kind: TokenKind,
    pub owner: Option<&'a UserId>,
}

/// Everything a principal may be asked to do.
#[derive(Debug, Clone, Copy)]
pub enum Action<'a> {
    /// Account-level reads: the current user, the event log, one's own tokens, the list
    /// of services.
    ReadAccount,
    /// Create, delete or elevate one's own tokens.
    ManageOwnTokens,
    /// See one token: one's own user tokens, or any token of the account for a superuser.
    ReadToken(TokenFacts<'a>),
    /// Roll one token (a new secret with the same settings): one's own user tokens;
    /// automation tokens for a superuser. Nobody rolls another person's user token,
    /// since the new secret would be shown to them. Sudo mode is required on top.
    RollToken(TokenFacts<'a>),
    /// A token rolls itself (`POST /tokens/self/rotate`), whatever its scope: the new
    /// token has the same rights and no later expiry.
    RollSelf,
    /// See every token of the account (Account tokens, automation token lists).
    ViewAccountTokens,
    /// Revoke any token of the account, whoever owns it.
    RevokeAccountTokens,
    /// Create automation tokens (sudo mode is required on top, as for every token).
    CreateAutomationTokens,
    /// See the members of the account.
    ViewUsers,
    /// See one member: oneself, or anyone of the account for a superuser (who sees
    /// them all on the Users page).
    ReadUser(&'a UserId),
    /// Change roles and service limits, remove and delete users.
    ManageUsers,
    /// Invite people into the account, re-issue and revoke invitations, and (API) list
    /// them: superusers, and only with a `global` token, even to list.
    ManageInvitations,
    /// Open the Services page (which lists only the services the member may see).
    ViewServices,
    /// Create a service.
    CreateServices,
    /// Change the account's security settings (require two-factor, SSO).
    ManageAccountSettings,
    /// Change the account's token policy (Security > Token policy).
    ManageTokenPolicy,
    /// Read one service.
    ReadService(&'a ServiceId),
    /// Rename or delete one service.
    ManageService(&'a ServiceId),
    /// Purge a whole service.
    PurgeAll(&'a ServiceId),
    /// Purge by surrogate key or URL.
    PurgeSelect(&'a ServiceId),
}

impl<'a> Action<'a> {
    /// The scopes that open the action to a token.
    fn scopes(self) -> &'static [Scope] {
        use Scope::*;
        match self {
            Action::ReadAccount
            | Action::ReadToken(_)
            | Action::ViewAccountTokens
            | Action::ViewUsers
            | Action::ReadUser(_)
            | Action::ViewServices
            | Action::ReadService(_) => &[Global, GlobalRead],
            Action::RollSelf => &[Global, GlobalRead, PurgeAll, PurgeSelect],
            Action::ManageOwnTokens
            | Action::RollToken(_)
            | Action::RevokeAccountTokens
            | Action::CreateAutomationTokens
            | Action::ManageUsers
            | Action::ManageInvitations
            | Action::CreateServices
            | Action::ManageAccountSettings
            | Action::ManageTokenPolicy
            | Action::ManageService(_) => &[Global],
            Action::PurgeAll(_) => &[Global, PurgeAll],
            Action::PurgeSelect(_) => &[Global, PurgeSelect],
        }
    }

    fn service(self) -> Option<&'a ServiceId> {
        match self {
            Action::ReadService(id)
            | Action::ManageService(id)
            | Action::PurgeAll(id)
            | Action::PurgeSelect(id) => Some(id),
            _ => None,
        }
    }

    /// What the refusal says when the role is what stands in the way.
    fn role_refusal(self) -> &'static str {
        match self {
            Action::ViewAccountTokens => {
                "Your role does not allow you to see the account's tokens. Ask a superuser of this account."
            }
            Action::RevokeAccountTokens => {
                "Your role does not allow you to delete other users' tokens. Ask a superuser of this account."
            }
            Action::CreateAutomationTokens => {
                "Your role does not allow you to create automation tokens. Ask a superuser of this account."
            }
            Action::ViewUsers | Action::ReadUser(_) => {
                "Your role does not allow you to see the account's users. Ask a superuser of this account."
            }
            Action::ManageUsers => {
                "Your role does not allow you to manage the account's users. Ask a superuser of this account."
            }
            Action::ManageInvitations => {
                "Your role does not allow you to invite users. Ask a superuser of this account."
            }
            Action::ViewServices => {
                "Your role does not allow you to see the account's services. Ask a superuser of this account."
            }
            Action::CreateServices => {
                "Your role does not allow you to create services. Ask a superuser of this account."
            }
            Action::ManageAccountSettings => "Only superusers can change the account's settings.",
            Action::ManageTokenPolicy => "Only superusers can change the account's token policy.",
            Action::ManageService(_) => {
                "You may not change this service: that needs full access to it."
            }
            Action::RollToken(_) => {
                "You may roll your own tokens and, as a superuser, automation tokens; not another user's token."
            }
            Action::ReadAccount
            | Action::RollSelf
            | Action::ManageOwnTokens
            | Action::ReadToken(_)
            | Action::ReadService(_)
            | Action::PurgeAll(_)
            | Action::PurgeSelect(_) => "Your role does not allow access to this endpoint.",
        }
    }
}

/// Why an action is refused. Pages answer 403 with the message; the API answers 403
/// `{"msg": message}` (404 where a refusal must not reveal that something exists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// A `global:read` token on an action that changes something.
    ReadOnly,
    /// The token's scopes do not cover the action.
    Scope,
    /// The role (the member's, or the automation token's) cannot do this.
    Role(&'static str),
    /// The token is limited to other services.
    TokenService,
    /// The member has no access to this service.
    NoServiceAccess,
    /// The member's permission on this service does not allow this.
    ServicePermission,
}

impl Denied {
    pub fn message(self) -> &'static str {
        match self {
            Denied::ReadOnly => "Read only tokens are not allowed to access this endpoint.",
            Denied::Scope => "This token's scope does not allow access to this endpoint.",
            Denied::Role(message) => message,
            Denied::TokenService => "This token does not have access to this service.",
            Denied::NoServiceAccess => "You do not have access to this service.",
            Denied::ServicePermission => {
                "Your permission on this service does not allow this action."
            }
        }
    }
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// Whether the role may do this at all, before service permissions.
fn role_allows(
    role: Role,
    services: &ServiceAccess,
    user: Option<&UserId>,
    action: Action<'_>,
) -> bool {
    let superuser = role == Role::Superuser;
    match action {
        Action::ReadAccount
        | Action::ManageOwnTokens
        | Action::RollSelf
        | Action::ReadService(_) => true,
        Action::RollToken(token) => match token.kind {
            TokenKind::User => user.is_some() && token.owner == user,
            TokenKind::Automation => superuser && user.is_some(),
        },
        Action::ReadToken(token) => {
            superuser || (token.kind == TokenKind::User && user.is_some() && token.owner == user)
        }
        Action::ReadUser(id) => superuser || user == Some(id),
        Action::ViewAccountTokens
        | Action::RevokeAccountTokens
        | Action::CreateAutomationTokens
        | Action::ViewUsers
        | Action::ManageUsers
        | Action::ManageInvitations
        | Action::ManageAccountSettings
        | Action::ManageTokenPolicy => superuser,
        Action::ViewServices | Action::ManageService(_) => {
            matches!(role, Role::Superuser | Role::Engineer)
        }
        // A limited engineer would lose sight of a service they created.
        Action::CreateServices => superuser || (role == Role::Engineer && !services.is_limited()),
        // Purging is an engineering capability.
        Action::PurgeAll(_) | Action::PurgeSelect(_) => {
            matches!(role, Role::Engineer | Role::Superuser)
        }
    }
}

/// What a per-service permission allows. `purge_all` includes purging by key, as
/// Fastly's service permissions do; every permission includes reading; changing the
/// service needs `full`.
fn permission_allows(permission: ServicePermission, action: Action<'_>) -> bool {
    use ServicePermission as P;
    match action {
        Action::PurgeSelect(_) => matches!(permission, P::Full | P::PurgeSelect | P::PurgeAll),
        Action::PurgeAll(_) => matches!(permission, P::Full | P::PurgeAll),
        Action::ManageService(_) => permission == P::Full,
        _ => true,
    }
}

impl Principal {
    /// Decides one action. Checks run from the token outwards (scope, role, the token's
    /// services, the member's service permission) so the refusal names the tightest limit.
    #[must_use = "a refused action must not go ahead"]
    pub fn require(&self, action: Action<'_>) -> Result<(), Denied> {
        if let Some(token) = &self.token {
            if !action.scopes().iter().any(|s| token.scopes.contains(*s)) {
                return Err(if token.scopes.contains(Scope::GlobalRead) {
                    Denied::ReadOnly
                } else {
                    Denied::Scope
                });
            }
        }
        if !role_allows(self.role, &self.services, self.user_id.as_ref(), action) {
            return Err(Denied::Role(action.role_refusal()));
        }
        let Some(service) = action.service() else {
            return Ok(());
        };
        if let Some(token) = &self.token {
            if !token.services.is_empty() && !token.services.contains(service) {
                return Err(Denied::TokenService);
            }
        }
        match self.services.permission(service) {
            Some(p) if permission_allows(p, action) => Ok(()),
            // Changing a service is refused in the pages' words, whatever the reason.
            _ if matches!(action, Action::ManageService(_)) => {
                Err(Denied::Role(action.role_refusal()))
            }
            None => Err(Denied::NoServiceAccess),
            Some(_) => Err(Denied::ServicePermission),
        }
    }

    /// `require` as a yes or no, for what the pages offer.
    pub fn may(&self, action: Action<'_>) -> bool {
        self.require(action).is_ok()
    }

    /// Which events this principal sees in its account.
    pub fn event_scope(&self) -> EventScope {
        let viewer = match (&self.user_id, &self.token) {
            (Some(user), _) => Viewer::User(user.clone()),
            (None, Some(token)) => Viewer::Token(token.id.clone()),
            // A principal is always a user or a token; nobody sees nothing's own actions.
            (None, None) => Viewer::Token(TokenId::from_raw("")),
        };
        let mut scope = event_scope(self.role, viewer, self.services.limited_to());
        scope.token_services = self
            .token
            .as_ref()
            .filter(|t| !t.services.is_empty())
            .map(|t| t.services.clone());
        scope
    }
}

/// Whether a new token with `scopes` stays within the creating token's scopes.
/// `global` covers every scope (it is full access, purging included); otherwise each
/// requested scope must be held.
pub fn scopes_within(creator: &ScopeSet, requested: &ScopeSet) -> bool {
    creator.contains(Scope::Global) || requested.iter().all(|s| creator.contains(s))
}

/// Whether a new token's services stay within the creating token's. Empty lists mean
/// all services: only a token with all services may create one with all services.
pub fn services_within(creator: &[ServiceId], requested: &[ServiceId]) -> bool {
    if creator.is_empty() {
        return true;
    }
    !requested.is_empty() && requested.iter().all(|s| creator.contains(s))
}

/// Who is looking at the event log: a user, or an automation token (whose "own"
/// actions are the ones it made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    User(UserId),
    Token(TokenId),
}

/// Which events a viewer sees, within their current account: the role's rule, narrowed
/// for a token limited to some services to events on those services (and events on no
/// service, which the rule decides alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventScope {
    pub rule: EventRule,
    /// The token's services, when it is limited to some.
    pub token_services: Option<Vec<ServiceId>>,
}

/// The seed's rule for one viewer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventRule {
    /// Every event in the account (superusers).
    Account,
    /// Only the viewer's own actions (users, billing).
    Own(Viewer),
    /// The viewer's own actions plus actions on services they can access (engineers);
    /// None means every service of the account.
    OwnAndServices(Viewer, Option<Vec<ServiceId>>),
}

/// The seed's rule: users see their own actions, engineers their own plus actions on
/// the services they can access, superusers everything in the account.
/// `limited_to` is an engineer's service list when limited to some services.
pub fn event_scope(role: Role, viewer: Viewer, limited_to: Option<Vec<ServiceId>>) -> EventScope {
    let rule = match role {
        Role::Superuser => EventRule::Account,
        Role::Engineer => EventRule::OwnAndServices(viewer, limited_to),
        Role::User | Role::Billing => EventRule::Own(viewer),
    };
    EventScope {
        rule,
        token_services: None,
    }
}

/// The fields of an event the visibility rule looks at.
#[cfg(any(test, feature = "testkit"))]
#[derive(Debug, Clone, Copy)]
pub struct EventFacts<'a> {
    pub actor_id: Option<&'a UserId>,
    pub token_id: Option<&'a TokenId>,
    pub service_id: Option<&'a ServiceId>,
}

#[cfg(any(test, feature = "testkit"))]
fn is_own(viewer: &Viewer, event: &EventFacts<'_>) -> bool {
    match viewer {
        Viewer::User(id) => event.actor_id == Some(id),
        Viewer::Token(id) => event.actor_id.is_none() && event.token_id == Some(id),
    }
}

/// Whether an event of the viewer's account is visible to them. `db::event_store` turns
/// the same rule into SQL; the integration tests check that the two agree.
#[cfg(any(test, feature = "testkit"))]
pub fn event_visible(scope: &EventScope, event: &EventFacts<'_>) -> bool {
    let by_rule = match &scope.rule {
        EventRule::Account => true,
        EventRule::Own(viewer) => is_own(viewer, event),
        EventRule::OwnAndServices(viewer, services) => {
            is_own(viewer, event)
                || match (event.service_id, services) {
                    (None, _) => false,
                    (Some(_), None) => true,
                    (Some(id), Some(list)) => list.contains(id),
                }
        }
    };
    let within_token = match (event.service_id, &scope.token_services) {
        (Some(id), Some(list)) => list.contains(id),
        _ => true,
    };
    by_rule && within_token
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(id: &str) -> ServiceId {
        ServiceId::from_raw(id)
    }

    fn scopes(s: &str) -> ScopeSet {
        ScopeSet::parse(s).unwrap()
    }

    /// A principal acting through a token with `scope` and, when `perm` is given, an
    /// engineer limited to "svc1" with that permission.
    fn token_principal(role: Role, set: ScopeSet, perm: Option<ServicePermission>) -> Principal {
        Principal {
            account_id: AccountId::from_raw("acc"),
            role,
            user_id: Some(UserId::from_raw("me")),
            token: Some(TokenGrant {
                id: TokenId::from_raw("t1"),
                scopes: set,
                services: Vec::new(),
            }),
            services: ServiceAccess::of(
                role,
                perm.map(|p| vec![(svc("svc1"), p)]).unwrap_or_default(),
            ),
        }
    }

    fn member(role: Role, access: ServiceAccess) -> Principal {
        Principal {
            account_id: AccountId::from_raw("acc"),
            role,
            user_id: Some(UserId::from_raw("me")),
            token: None,
            services: access,
        }
    }

    /// A user token owned by `owner`.
    fn user_token(owner: &UserId) -> TokenFacts<'_> {
        TokenFacts {
            kind: TokenKind::User,
            owner: Some(owner),
        }
    }

    /// An automation token: nobody owns it.
    const AUTOMATION: TokenFacts<'static> = TokenFacts {
        kind: TokenKind::Automation,
        owner: None,
    };

    /// The expected answer for API actions, written as a table independent of
    /// `require`'s structure. perm: None = the member is not limited.
    fn expected(
        role: Role,
        scope: Scope,
        perm: Option<ServicePermission>,
        kind: &str,
    ) -> Result<(), Denied> {
        use Scope::*;
        use ServicePermission as P;
        let scope_ok = match kind {
            "read" | "read_service" => matches!(scope, Global | GlobalRead),
            "manage" => scope == Global,
            "purge_all" => matches!(scope, Global | PurgeAll),
            "purge_select" => matches!(scope, Global | PurgeSelect),
            _ => unreachable!(),
        };
        if !scope_ok {
            return Err(if scope == GlobalRead {
                Denied::ReadOnly
            } else {
                Denied::Scope
            });
        }
        let purging = kind.starts_with("purge");
        if purging && matches!(role, Role::User | Role::Billing) {
            return Err(Denied::Role(
                "Your role does not allow access to this endpoint.",
            ));
        }
        let on_service = kind == "read_service" || purging;
        if on_service && role == Role::Engineer {
            match (perm, kind) {
                (None, _) => {}
                (Some(_), "read_service") => {}
                (Some(P::Full | P::PurgeAll), _) => {}
                (Some(P::PurgeSelect), "purge_select") => {}
                (Some(_), _) => return Err(Denied::ServicePermission),
            }
        }
        Ok(())
    }

    #[test]
    fn matrix_of_scope_role_permission_and_endpoint() {
        let perms = [
            None,
            Some(ServicePermission::Full),
            Some(ServicePermission::ReadOnly),
            Some(ServicePermission::PurgeSelect),
            Some(ServicePermission::PurgeAll),
        ];
        let s = svc("svc1");
        let mut checked = 0;
        for role in Role::ALL {
            for scope in Scope::ALL {
                for perm in perms {
                    let principal = token_principal(role, ScopeSet::new(vec![scope]), perm);
                    for (kind, action) in [
                        ("read", Action::ReadAccount),
                        ("manage", Action::ManageOwnTokens),
                        ("read_service", Action::ReadService(&s)),
                        ("purge_all", Action::PurgeAll(&s)),
                        ("purge_select", Action::PurgeSelect(&s)),
                    ] {
                        assert_eq!(
                            principal.require(action),
                            expected(role, scope, perm, kind),
                            "{role} / {} / {perm:?} / {kind}",
                            scope.as_str()
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 4 * 4 * 5 * 5);
    }

    #[test]
    fn read_only_message_is_fastlys() {
        let p = token_principal(Role::Superuser, scopes("global:read"), None);
        assert_eq!(p.require(Action::ManageOwnTokens), Err(Denied::ReadOnly));
        assert_eq!(
            Denied::ReadOnly.message(),
            "Read only tokens are not allowed to access this endpoint."
        );
        // A purge-only token on a read endpoint is a scope problem, not "read only".
        let p = token_principal(Role::Superuser, scopes("purge_all"), None);
        assert_eq!(p.require(Action::ReadAccount), Err(Denied::Scope));
    }

    #[test]
    fn combined_scopes_add_up() {
        let p = token_principal(Role::Engineer, scopes("purge_all purge_select"), None);
        let s = svc("svc1");
        assert_eq!(p.require(Action::PurgeAll(&s)), Ok(()));
        assert_eq!(p.require(Action::PurgeSelect(&s)), Ok(()));
        assert_eq!(p.require(Action::ReadService(&s)), Err(Denied::Scope));
    }

    #[test]
    fn token_services_limit_service_actions_only() {
        let mut p = token_principal(Role::Superuser, scopes("global"), None);
        if let Some(token) = p.token.as_mut() {
            token.services = vec![svc("a")];
        }
        assert_eq!(p.require(Action::PurgeAll(&svc("a"))), Ok(()));
        assert_eq!(
            p.require(Action::PurgeAll(&svc("b"))),
            Err(Denied::TokenService)
        );
        assert_eq!(
            p.require(Action::ReadService(&svc("b"))),
            Err(Denied::TokenService)
        );
        assert_eq!(p.require(Action::ReadAccount), Ok(()));
        assert_eq!(p.require(Action::ManageOwnTokens), Ok(()));
    }

    #[test]
    fn limited_engineers_reach_only_their_services() {
        let p = token_principal(
            Role::Engineer,
            scopes("global"),
            Some(ServicePermission::ReadOnly),
        );
        assert_eq!(p.require(Action::ReadService(&svc("svc1"))), Ok(()));
        assert_eq!(
            p.require(Action::ReadService(&svc("b"))),
            Err(Denied::NoServiceAccess)
        );
        assert_eq!(
            p.require(Action::PurgeSelect(&svc("svc1"))),
            Err(Denied::ServicePermission)
        );
        // Per-service permissions only limit engineers.
        let p = token_principal(Role::Superuser, scopes("global"), None);
        assert_eq!(p.require(Action::PurgeAll(&svc("b"))), Ok(()));
    }

    #[test]
    fn page_role_action_matrix() {
        // Columns: view account tokens, revoke, automation, view users, manage users,
        // view services, create services, account settings, invitations.
        let actions = [
            Action::ViewAccountTokens,
            Action::RevokeAccountTokens,
            Action::CreateAutomationTokens,
            Action::ViewUsers,
            Action::ManageUsers,
            Action::ViewServices,
            Action::CreateServices,
            Action::ManageAccountSettings,
            Action::ManageInvitations,
        ];
        let expect = [
            (Role::User, [false; 9]),
            (Role::Billing, [false; 9]),
            (
                Role::Engineer,
                [false, false, false, false, false, true, true, false, false],
            ),
            (Role::Superuser, [true; 9]),
        ];
        for (role, allowed) in expect {
            let p = member(role, ServiceAccess::All);
            for (action, ok) in actions.into_iter().zip(allowed) {
                assert_eq!(p.may(action), ok, "{role} / {action:?}");
            }
        }
        let limited = member(
            Role::Engineer,
            ServiceAccess::Limited(vec![(svc("s1"), ServicePermission::Full)]),
        );
        assert!(limited.may(Action::ViewServices));
        assert!(
            !limited.may(Action::CreateServices),
            "limited engineers do not create"
        );
        let refusal = member(Role::User, ServiceAccess::All)
            .require(Action::ViewUsers)
            .unwrap_err();
        assert!(refusal.message().contains("Ask a superuser"));
        let settings = member(Role::Engineer, ServiceAccess::All)
            .require(Action::ManageAccountSettings)
            .unwrap_err();
        assert!(settings.message().starts_with("Only superusers"));
    }

    #[test]
    fn services_follow_permissions_on_pages() {
        let eng = member(
            Role::Engineer,
            ServiceAccess::Limited(vec![
                (svc("s1"), ServicePermission::Full),
                (svc("s2"), ServicePermission::ReadOnly),
                (svc("s3"), ServicePermission::PurgeAll),
            ]),
        );
        let sees = |p: &Principal, s: &str| p.may(Action::ReadService(&svc(s)));
        let manages = |p: &Principal, s: &str| p.may(Action::ManageService(&svc(s)));
        assert!(sees(&eng, "s1") && manages(&eng, "s1"));
        assert!(sees(&eng, "s2") && !manages(&eng, "s2"));
        assert!(sees(&eng, "s3") && !manages(&eng, "s3"));
        assert!(!sees(&eng, "s4") && !manages(&eng, "s4"));
        let free = member(Role::Engineer, ServiceAccess::All);
        assert!(sees(&free, "any") && manages(&free, "any"));
        assert!(manages(&member(Role::Superuser, ServiceAccess::All), "any"));
        for role in [Role::User, Role::Billing] {
            let p = member(role, ServiceAccess::All);
            assert!(!p.may(Action::ViewServices));
            assert!(!manages(&p, "s1"));
        }
    }

    #[test]
    fn tokens_are_reached_by_their_owner_or_a_superuser() {
        let (me, other) = (UserId::from_raw("me"), UserId::from_raw("other"));
        let (mine, theirs, automation) = (user_token(&me), user_token(&other), AUTOMATION);
        let user = token_principal(Role::Engineer, scopes("global:read"), None);
        assert!(user.may(Action::ReadToken(mine)));
        assert!(!user.may(Action::ReadToken(theirs)));
        assert!(!user.may(Action::ReadToken(automation)));
        let boss = token_principal(Role::Superuser, scopes("global:read"), None);
        assert!(boss.may(Action::ReadToken(theirs)) && boss.may(Action::ReadToken(automation)));
        // An automation token owns nothing.
        let mut bot = token_principal(Role::Engineer, scopes("global"), None);
        bot.user_id = None;
        assert!(!bot.may(Action::ReadToken(automation)));
    }

    #[test]
    fn tokens_are_rolled_by_their_owner_or_automation_by_a_superuser() {
        let (me, other) = (UserId::from_raw("me"), UserId::from_raw("other"));
        let (mine, theirs, automation) = (user_token(&me), user_token(&other), AUTOMATION);
        let user = token_principal(Role::Engineer, scopes("global"), None);
        assert!(user.may(Action::RollToken(mine)));
        assert!(!user.may(Action::RollToken(theirs)));
        assert!(!user.may(Action::RollToken(automation)));
        let boss = token_principal(Role::Superuser, scopes("global"), None);
        assert!(boss.may(Action::RollToken(automation)));
        assert!(
            !boss.may(Action::RollToken(theirs)),
            "never another person's token"
        );
        let read_only = token_principal(Role::Superuser, scopes("global:read"), None);
        assert!(!read_only.may(Action::RollToken(automation)));
        // Rolling itself needs no particular scope.
        for scope in ["global", "global:read", "purge_all", "purge_select"] {
            let mut bot = token_principal(Role::Engineer, scopes(scope), None);
            bot.user_id = None;
            assert!(bot.may(Action::RollSelf), "{scope}");
            assert!(!bot.may(Action::RollToken(automation)));
        }
    }

    #[test]
    fn invitations_need_a_superuser_with_a_global_token() {
        for (scope, ok) in [
            ("global", true),
            ("global:read", false),
            ("purge_all", false),
            ("purge_select", false),
        ] {
            let boss = token_principal(Role::Superuser, scopes(scope), None);
            assert_eq!(boss.may(Action::ManageInvitations), ok, "{scope}");
        }
        assert_eq!(
            token_principal(Role::Superuser, scopes("global:read"), None)
                .require(Action::ManageInvitations),
            Err(Denied::ReadOnly)
        );
        for role in [Role::User, Role::Billing, Role::Engineer] {
            let p = token_principal(role, scopes("global"), None);
            assert!(!p.may(Action::ManageInvitations), "{role}");
            assert!(!member(role, ServiceAccess::All).may(Action::ManageInvitations));
        }
        assert!(member(Role::Superuser, ServiceAccess::All).may(Action::ManageInvitations));
    }

    #[test]
    fn users_are_read_by_themselves_or_a_superuser() {
        let me = UserId::from_raw("me");
        let other = UserId::from_raw("other");
        // (role, scope, reads self, reads another member)
        let rows = [
            (Role::User, "global:read", Ok(()), false),
            (Role::Billing, "global", Ok(()), false),
            (Role::Engineer, "global", Ok(()), false),
            (Role::Superuser, "global:read", Ok(()), true),
            (Role::Superuser, "global", Ok(()), true),
            (Role::Superuser, "purge_all", Err(Denied::Scope), false),
            (Role::User, "purge_select", Err(Denied::Scope), false),
        ];
        for (role, scope, own, others) in rows {
            let p = token_principal(role, scopes(scope), None);
            assert_eq!(p.require(Action::ReadUser(&me)), own, "{role} / {scope}");
            assert_eq!(p.may(Action::ReadUser(&other)), others, "{role} / {scope}");
        }
        assert_eq!(
            token_principal(Role::Engineer, scopes("global"), None)
                .require(Action::ReadUser(&other))
                .map_err(Denied::message),
            Err("Your role does not allow you to see the account's users. Ask a superuser of this account.")
        );
        // An automation token is nobody: it reads no user unless its role is superuser.
        let mut bot = token_principal(Role::Engineer, scopes("global"), None);
        bot.user_id = None;
        assert!(!bot.may(Action::ReadUser(&me)));
        bot.role = Role::Superuser;
        assert!(bot.may(Action::ReadUser(&me)));
        // Pages: a member without a token has their whole role.
        assert!(member(Role::User, ServiceAccess::All).may(Action::ReadUser(&me)));
        assert!(!member(Role::User, ServiceAccess::All).may(Action::ReadUser(&other)));
    }

    #[test]
    fn only_engineers_with_rows_are_limited() {
        let rows = vec![(svc("s1"), ServicePermission::Full)];
        assert_eq!(
            ServiceAccess::of(Role::Superuser, rows.clone()),
            ServiceAccess::All
        );
        assert_eq!(
            ServiceAccess::of(Role::Engineer, Vec::new()),
            ServiceAccess::All
        );
        let access = ServiceAccess::of(Role::Engineer, rows);
        assert_eq!(access.permission(&svc("s1")), Some(ServicePermission::Full));
        assert_eq!(access.permission(&svc("s2")), None);
        assert!(access.is_limited());
    }

    #[test]
    fn a_token_never_creates_beyond_itself() {
        assert!(scopes_within(
            &scopes("global"),
            &scopes("purge_all global:read")
        ));
        assert!(scopes_within(
            &scopes("purge_all purge_select"),
            &scopes("purge_all")
        ));
        assert!(!scopes_within(&scopes("global:read"), &scopes("global")));
        assert!(!scopes_within(
            &scopes("purge_select"),
            &scopes("purge_all")
        ));
        let a = vec![svc("a")];
        let ab = vec![svc("a"), svc("b")];
        assert!(services_within(&[], &[]));
        assert!(services_within(&[], &ab));
        assert!(services_within(&ab, &a));
        assert!(!services_within(&a, &ab));
        assert!(!services_within(&a, &[]), "all services exceed one service");
    }

    #[test]
    fn event_visibility_by_role() {
        let me_id = UserId::from_raw("me");
        let other = UserId::from_raw("other");
        let (a, b) = (svc("a"), svc("b"));
        let me = Viewer::User(me_id.clone());
        fn facts<'a>(actor: &'a UserId, service: Option<&'a ServiceId>) -> EventFacts<'a> {
            EventFacts {
                actor_id: Some(actor),
                token_id: None,
                service_id: service,
            }
        }
        let own = facts(&me_id, None);
        let other_plain = facts(&other, None);
        let other_on_a = facts(&other, Some(&a));
        let other_on_b = facts(&other, Some(&b));

        let user = event_scope(Role::User, me.clone(), None);
        let billing = event_scope(Role::Billing, me.clone(), None);
        for scope in [&user, &billing] {
            assert!(event_visible(scope, &own));
            assert!(!event_visible(scope, &other_plain));
            assert!(!event_visible(scope, &other_on_a));
        }
        let engineer = event_scope(Role::Engineer, me.clone(), None);
        assert!(event_visible(&engineer, &own));
        assert!(!event_visible(&engineer, &other_plain));
        assert!(event_visible(&engineer, &other_on_a));
        assert!(event_visible(&engineer, &other_on_b));
        let limited = event_scope(Role::Engineer, me.clone(), Some(vec![a.clone()]));
        assert!(event_visible(&limited, &own));
        assert!(event_visible(&limited, &other_on_a));
        assert!(!event_visible(&limited, &other_on_b));
        let superuser = event_scope(Role::Superuser, me, None);
        for e in [&own, &other_plain, &other_on_a, &other_on_b] {
            assert!(event_visible(&superuser, e));
        }
    }

    #[test]
    fn a_token_limited_to_services_sees_only_their_events() {
        let (a, b) = (svc("a"), svc("b"));
        let me = UserId::from_raw("me");
        let other = UserId::from_raw("other");
        let mut p = token_principal(Role::Superuser, scopes("global:read"), None);
        if let Some(token) = p.token.as_mut() {
            token.services = vec![a.clone()];
        }
        let scope = p.event_scope();
        let on = |actor: &'static str, service: Option<&ServiceId>| {
            let actor = if actor == "me" { &me } else { &other };
            event_visible(
                &scope,
                &EventFacts {
                    actor_id: Some(actor),
                    token_id: None,
                    service_id: service,
                },
            )
        };
        assert!(on("other", Some(&a)));
        assert!(
            !on("other", Some(&b)),
            "another service's events stay hidden"
        );
        assert!(
            !on("me", Some(&b)),
            "even the owner's own, on another service"
        );
        assert!(on("other", None), "account events follow the role");
        // Without a service list, the role alone decides.
        let all = token_principal(Role::Superuser, scopes("global:read"), None).event_scope();
        assert_eq!(all.token_services, None);
    }

    #[test]
    fn automation_tokens_see_what_they_did() {
        let t1 = TokenId::from_raw("t1");
        let someone = UserId::from_raw("someone");
        let a = svc("a");
        let scope = event_scope(Role::User, Viewer::Token(t1.clone()), None);
        let mine = EventFacts {
            actor_id: None,
            token_id: Some(&t1),
            service_id: Some(&a),
        };
        // An event about token t1 made by a person is not the token's own action.
        let about_me = EventFacts {
            actor_id: Some(&someone),
            token_id: Some(&t1),
            service_id: None,
        };
        assert!(event_visible(&scope, &mine));
        assert!(!event_visible(&scope, &about_me));
    }
}
