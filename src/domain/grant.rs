//! What a new token may carry: its scopes must suit the role, and its services must
//! be the account's and, for a member limited to some services, among theirs.

use super::ids::ServiceId;
use super::roles::{Role, Scope, ScopeSet};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantError {
    NoScope,
    ScopeNotAllowed(Scope),
    NoService,
    UnknownService(ServiceId),
    ServiceNotAllowed(String),
    AllServicesNotAllowed,
}

impl GrantError {
    /// The form field the error belongs to.
    pub fn field(&self) -> &'static str {
        match self {
            GrantError::NoScope | GrantError::ScopeNotAllowed(_) => "scope",
            _ => "access",
        }
    }

    pub fn message(&self) -> String {
        match self {
            GrantError::NoScope => "Select at least one scope.".into(),
            GrantError::ScopeNotAllowed(s) => format!(
                "Your role cannot grant the scope \u{201c}{}\u{201d}.",
                s.label()
            ),
            GrantError::NoService => "Select at least one service, or choose All services.".into(),
            GrantError::UnknownService(id) => {
                format!("There is no service \u{201c}{id}\u{201d} in this account.")
            }
            GrantError::ServiceNotAllowed(name) => {
                format!("You do not have access to the service \u{201c}{name}\u{201d}.")
            }
            GrantError::AllServicesNotAllowed => {
                "You are limited to some services: select the services this token may access."
                    .into()
            }
        }
    }
}

/// A service as the grant check sees it.
#[derive(Debug, Clone)]
pub struct ServiceRef<'a> {
    pub id: &'a ServiceId,
    pub name: &'a str,
}

/// `services` empty means all services. `limited_to` is the member's service list when
/// they are limited to some services (engineers), None when they may use every service.
pub fn check(
    role: Role,
    scopes: &ScopeSet,
    all_services: bool,
    services: &[ServiceId],
    account_services: &[ServiceRef<'_>],
    limited_to: Option<&[ServiceId]>,
) -> Result<(), GrantError> {
    if scopes.is_empty() {
        return Err(GrantError::NoScope);
    }
    if let Some(scope) = scopes.first_not_allowed_for(role) {
        return Err(GrantError::ScopeNotAllowed(scope));
    }
    if all_services {
        return match limited_to {
            Some(_) => Err(GrantError::AllServicesNotAllowed),
            None => Ok(()),
        };
    }
    if services.is_empty() {
        return Err(GrantError::NoService);
    }
    for id in services {
        let Some(service) = account_services.iter().find(|s| s.id == id) else {
            return Err(GrantError::UnknownService(id.clone()));
        };
        if limited_to.is_some_and(|allowed| !allowed.contains(id)) {
            return Err(GrantError::ServiceNotAllowed(service.name.to_owned()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> [ServiceId; 2] {
        [ServiceId::from_raw("s1"), ServiceId::from_raw("s2")]
    }

    fn services(ids: &[ServiceId; 2]) -> Vec<ServiceRef<'_>> {
        vec![
            ServiceRef {
                id: &ids[0],
                name: "www",
            },
            ServiceRef {
                id: &ids[1],
                name: "api",
            },
        ]
    }

    fn id(s: &str) -> ServiceId {
        ServiceId::from_raw(s)
    }

    fn scopes(s: &str) -> ScopeSet {
        ScopeSet::parse(s).unwrap()
    }

    #[test]
    fn scopes_follow_the_role() {
        let ids = ids();
        let svc = services(&ids);
        assert_eq!(
            check(Role::User, &scopes(""), true, &[], &svc, None),
            Err(GrantError::NoScope)
        );
        assert_eq!(
            check(
                Role::Billing,
                &scopes("purge_select"),
                true,
                &[],
                &svc,
                None
            ),
            Err(GrantError::ScopeNotAllowed(Scope::PurgeSelect))
        );
        assert_eq!(
            check(
                Role::User,
                &scopes("global global:read"),
                true,
                &[],
                &svc,
                None
            ),
            Ok(())
        );
        assert_eq!(
            check(
                Role::Engineer,
                &scopes("purge_all purge_select"),
                true,
                &[],
                &svc,
                None
            ),
            Ok(())
        );
    }

    #[test]
    fn services_must_exist_and_be_allowed() {
        let ids = ids();
        let svc = services(&ids);
        let g = scopes("global");
        assert_eq!(
            check(Role::User, &g, false, &[], &svc, None),
            Err(GrantError::NoService)
        );
        assert_eq!(
            check(Role::User, &g, false, &[id("nope")], &svc, None),
            Err(GrantError::UnknownService(id("nope")))
        );
        let limited = vec![id("s1")];
        assert_eq!(
            check(Role::Engineer, &g, false, &[id("s1")], &svc, Some(&limited)),
            Ok(())
        );
        assert_eq!(
            check(Role::Engineer, &g, false, &[id("s2")], &svc, Some(&limited)),
            Err(GrantError::ServiceNotAllowed("api".into()))
        );
        assert_eq!(
            check(Role::Engineer, &g, true, &[], &svc, Some(&limited)),
            Err(GrantError::AllServicesNotAllowed)
        );
    }
}
