//! What a token may do: its role (the owner's role in the account, or an automation
//! token's own role) ∩ its scopes ∩ its services ∩, for an engineer limited to some
//! services, the permission on each. Also which events a viewer may see. Pure rules,
//! so the API and the pages decide the same way; every answer here has a test.

use super::roles::{Role, Scope, ScopeSet, ServicePermission};

/// What an endpoint does, as far as authorisation is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<'a> {
    /// Account-level reads: the current user, the event log, token and service lists.
    Read,
    /// Creating, deleting or elevating tokens.
    ManageTokens,
    /// Reading one service.
    ReadService(&'a str),
    /// Purging a whole service.
    PurgeAll(&'a str),
    /// Purging by surrogate key or URL.
    PurgeSelect(&'a str),
}

/// A token as the policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct Principal<'a> {
    pub role: Role,
    pub scopes: &'a ScopeSet,
    /// The token's services; empty means every service of the account.
    pub token_services: &'a [String],
    /// For a member limited to some services (engineers with per-service permissions),
    /// those services with the permission on each; None when not limited.
    pub service_limits: Option<&'a [(String, ServicePermission)]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// A `global:read` token on an endpoint that changes something.
    ReadOnly,
    /// The token's scopes do not cover the endpoint.
    Scope,
    /// The role (the owner's, or the automation token's) cannot do this.
    Role,
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
            Denied::Role => "Your role does not allow access to this endpoint.",
            Denied::TokenService => "This token does not have access to this service.",
            Denied::NoServiceAccess => "You do not have access to this service.",
            Denied::ServicePermission => {
                "Your permission on this service does not allow this action."
            }
        }
    }
}

/// The scopes that open an endpoint.
fn scopes_for(action: Action<'_>) -> &'static [Scope] {
    match action {
        Action::Read | Action::ReadService(_) => &[Scope::Global, Scope::GlobalRead],
        Action::ManageTokens => &[Scope::Global],
        Action::PurgeAll(_) => &[Scope::Global, Scope::PurgeAll],
        Action::PurgeSelect(_) => &[Scope::Global, Scope::PurgeSelect],
    }
}

/// Whether the role may do this at all (before per-service permissions). All roles
/// view services and manage their own tokens; purging is an engineering capability.
fn role_allows(role: Role, action: Action<'_>) -> bool {
    match action {
        Action::Read | Action::ReadService(_) | Action::ManageTokens => true,
        Action::PurgeAll(_) | Action::PurgeSelect(_) => {
            matches!(role, Role::Engineer | Role::Superuser)
        }
    }
}

/// What a per-service permission allows. `purge_all` includes purging by key, as
/// Fastly's service permissions do; every permission includes reading.
fn permission_allows(permission: ServicePermission, action: Action<'_>) -> bool {
    use ServicePermission as P;
    match action {
        Action::Read | Action::ManageTokens | Action::ReadService(_) => true,
        Action::PurgeSelect(_) => matches!(permission, P::Full | P::PurgeSelect | P::PurgeAll),
        Action::PurgeAll(_) => matches!(permission, P::Full | P::PurgeAll),
    }
}

fn service_of<'a>(action: Action<'a>) -> Option<&'a str> {
    match action {
        Action::ReadService(id) | Action::PurgeAll(id) | Action::PurgeSelect(id) => Some(id),
        Action::Read | Action::ManageTokens => None,
    }
}

/// Decides one request. Checks run from the token outwards (scope, role, the token's
/// services, the member's service permission) so the message names the tightest limit.
pub fn authorize(principal: &Principal<'_>, action: Action<'_>) -> Result<(), Denied> {
    let wanted = scopes_for(action);
    if !wanted.iter().any(|s| principal.scopes.contains(*s)) {
        return Err(if principal.scopes.contains(Scope::GlobalRead) {
            Denied::ReadOnly
        } else {
            Denied::Scope
        });
    }
    if !role_allows(principal.role, action) {
        return Err(Denied::Role);
    }
    let Some(service) = service_of(action) else {
        return Ok(());
    };
    if !principal.token_services.is_empty()
        && !principal.token_services.iter().any(|s| s == service)
    {
        return Err(Denied::TokenService);
    }
    if principal.role == Role::Engineer {
        if let Some(limits) = principal.service_limits {
            let Some((_, permission)) = limits.iter().find(|(id, _)| id == service) else {
                return Err(Denied::NoServiceAccess);
            };
            if !permission_allows(*permission, action) {
                return Err(Denied::ServicePermission);
            }
        }
    }
    Ok(())
}

/// Whether a new token with `scopes` stays within the creating token's scopes.
/// `global` covers every scope (it is full access, purging included); otherwise each
/// requested scope must be held.
pub fn scopes_within(creator: &ScopeSet, requested: &ScopeSet) -> bool {
    creator.contains(Scope::Global) || requested.iter().all(|s| creator.contains(s))
}

/// Whether a new token's services stay within the creating token's. Empty lists mean
/// all services: only a token with all services may create one with all services.
pub fn services_within(creator: &[String], requested: &[String]) -> bool {
    if creator.is_empty() {
        return true;
    }
    !requested.is_empty() && requested.iter().all(|s| creator.contains(s))
}

/// Who is looking at the event log: a user, or an automation token (whose "own"
/// actions are the ones it made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    User(String),
    Token(String),
}

/// Which events a viewer sees, within their current account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventScope {
    /// Every event in the account (superusers).
    Account,
    /// Only the viewer's own actions (users, billing).
    Own(Viewer),
    /// The viewer's own actions plus actions on services they can access (engineers);
    /// None means every service of the account.
    OwnAndServices(Viewer, Option<Vec<String>>),
}

/// The seed's rule: users see their own actions, engineers their own plus actions on
/// the services they can access, superusers everything in the account.
/// `limited_to` is an engineer's service list when limited to some services.
pub fn event_scope(role: Role, viewer: Viewer, limited_to: Option<Vec<String>>) -> EventScope {
    match role {
        Role::Superuser => EventScope::Account,
        Role::Engineer => EventScope::OwnAndServices(viewer, limited_to),
        Role::User | Role::Billing => EventScope::Own(viewer),
    }
}

/// The fields of an event the visibility rule looks at.
#[derive(Debug, Clone, Copy)]
pub struct EventFacts<'a> {
    pub actor_id: Option<&'a str>,
    pub token_id: Option<&'a str>,
    pub service_id: Option<&'a str>,
}

fn is_own(viewer: &Viewer, event: &EventFacts<'_>) -> bool {
    match viewer {
        Viewer::User(id) => event.actor_id == Some(id.as_str()),
        Viewer::Token(id) => event.actor_id.is_none() && event.token_id == Some(id.as_str()),
    }
}

/// Whether an event of the viewer's account is visible to them. `db::events` turns the
/// same rule into SQL; the integration tests check that the two agree.
pub fn event_visible(scope: &EventScope, event: &EventFacts<'_>) -> bool {
    match scope {
        EventScope::Account => true,
        EventScope::Own(viewer) => is_own(viewer, event),
        EventScope::OwnAndServices(viewer, services) => {
            is_own(viewer, event)
                || match (event.service_id, services) {
                    (None, _) => false,
                    (Some(_), None) => true,
                    (Some(id), Some(list)) => list.iter().any(|s| s == id),
                }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVC: &str = "svc1";

    fn scopes(s: &str) -> ScopeSet {
        ScopeSet::parse(s).unwrap()
    }

    /// The expected answer, written as a table independent of `authorize`'s structure.
    /// perm: None = the member is not limited to some services.
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
            return Err(Denied::Role);
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
        let mut checked = 0;
        for role in Role::ALL {
            for scope in Scope::ALL {
                for perm in perms {
                    let set = ScopeSet::new(vec![scope]);
                    let limits: Vec<(String, ServicePermission)> =
                        perm.map(|p| vec![(SVC.to_owned(), p)]).unwrap_or_default();
                    let principal = Principal {
                        role,
                        scopes: &set,
                        token_services: &[],
                        service_limits: perm.map(|_| limits.as_slice()),
                    };
                    for (kind, action) in [
                        ("read", Action::Read),
                        ("manage", Action::ManageTokens),
                        ("read_service", Action::ReadService(SVC)),
                        ("purge_all", Action::PurgeAll(SVC)),
                        ("purge_select", Action::PurgeSelect(SVC)),
                    ] {
                        assert_eq!(
                            authorize(&principal, action),
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
        let set = scopes("global:read");
        let p = Principal {
            role: Role::Superuser,
            scopes: &set,
            token_services: &[],
            service_limits: None,
        };
        assert_eq!(authorize(&p, Action::ManageTokens), Err(Denied::ReadOnly));
        assert_eq!(
            Denied::ReadOnly.message(),
            "Read only tokens are not allowed to access this endpoint."
        );
        // A purge-only token on a read endpoint is a scope problem, not "read only".
        let set = scopes("purge_all");
        let p = Principal { scopes: &set, ..p };
        assert_eq!(authorize(&p, Action::Read), Err(Denied::Scope));
    }

    #[test]
    fn combined_scopes_add_up() {
        let set = scopes("purge_all purge_select");
        let p = Principal {
            role: Role::Engineer,
            scopes: &set,
            token_services: &[],
            service_limits: None,
        };
        assert_eq!(authorize(&p, Action::PurgeAll(SVC)), Ok(()));
        assert_eq!(authorize(&p, Action::PurgeSelect(SVC)), Ok(()));
        assert_eq!(authorize(&p, Action::ReadService(SVC)), Err(Denied::Scope));
    }

    #[test]
    fn token_services_limit_service_actions_only() {
        let set = scopes("global");
        let services = vec!["a".to_owned()];
        let p = Principal {
            role: Role::Superuser,
            scopes: &set,
            token_services: &services,
            service_limits: None,
        };
        assert_eq!(authorize(&p, Action::PurgeAll("a")), Ok(()));
        assert_eq!(
            authorize(&p, Action::PurgeAll("b")),
            Err(Denied::TokenService)
        );
        assert_eq!(
            authorize(&p, Action::ReadService("b")),
            Err(Denied::TokenService)
        );
        assert_eq!(authorize(&p, Action::Read), Ok(()));
        assert_eq!(authorize(&p, Action::ManageTokens), Ok(()));
    }

    #[test]
    fn limited_engineers_reach_only_their_services() {
        let set = scopes("global");
        let limits = vec![("a".to_owned(), ServicePermission::ReadOnly)];
        let p = Principal {
            role: Role::Engineer,
            scopes: &set,
            token_services: &[],
            service_limits: Some(&limits),
        };
        assert_eq!(authorize(&p, Action::ReadService("a")), Ok(()));
        assert_eq!(
            authorize(&p, Action::ReadService("b")),
            Err(Denied::NoServiceAccess)
        );
        assert_eq!(
            authorize(&p, Action::PurgeSelect("a")),
            Err(Denied::ServicePermission)
        );
        // Per-service permissions only limit engineers.
        let p = Principal {
            role: Role::Superuser,
            ..p
        };
        assert_eq!(authorize(&p, Action::PurgeAll("b")), Ok(()));
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
        let a = vec!["a".to_owned()];
        let ab = vec!["a".to_owned(), "b".to_owned()];
        assert!(services_within(&[], &[]));
        assert!(services_within(&[], &ab));
        assert!(services_within(&ab, &a));
        assert!(!services_within(&a, &ab));
        assert!(!services_within(&a, &[]), "all services exceed one service");
    }

    #[test]
    fn event_visibility_by_role() {
        let me = Viewer::User("me".into());
        let facts = |actor: Option<&'static str>, service: Option<&'static str>| EventFacts {
            actor_id: actor,
            token_id: None,
            service_id: service,
        };
        let own = facts(Some("me"), None);
        let other_plain = facts(Some("other"), None);
        let other_on_a = facts(Some("other"), Some("a"));
        let other_on_b = facts(Some("other"), Some("b"));

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
        let limited = event_scope(Role::Engineer, me.clone(), Some(vec!["a".into()]));
        assert!(event_visible(&limited, &own));
        assert!(event_visible(&limited, &other_on_a));
        assert!(!event_visible(&limited, &other_on_b));
        let superuser = event_scope(Role::Superuser, me, None);
        for e in [&own, &other_plain, &other_on_a, &other_on_b] {
            assert!(event_visible(&superuser, e));
        }
    }

    #[test]
    fn automation_tokens_see_what_they_did() {
        let scope = event_scope(Role::User, Viewer::Token("t1".into()), None);
        let mine = EventFacts {
            actor_id: None,
            token_id: Some("t1"),
            service_id: Some("a"),
        };
        // An event about token t1 made by a person is not the token's own action.
        let about_me = EventFacts {
            actor_id: Some("someone"),
            token_id: Some("t1"),
            service_id: None,
        };
        assert!(event_visible(&scope, &mine));
        assert!(!event_visible(&scope, &about_me));
    }
}
