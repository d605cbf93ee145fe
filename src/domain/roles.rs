//! Roles, scopes and per-service permissions, and which role may use which scope.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    User,
    Billing,
    Engineer,
    Superuser,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::User, Role::Billing, Role::Engineer, Role::Superuser];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Billing => "billing",
            Role::Engineer => "engineer",
            Role::Superuser => "superuser",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::User => "User",
            Role::Billing => "Billing",
            Role::Engineer => "Engineer",
            Role::Superuser => "Superuser",
        }
    }

    /// The scopes a token of this role may carry. Purging is an engineering capability.
    pub fn may_use(self, scope: Scope) -> bool {
        match self {
            Role::User | Role::Billing => matches!(scope, Scope::Global | Scope::GlobalRead),
            Role::Engineer | Role::Superuser => true,
        }
    }

    /// The roles an automation token can carry, in the order the form offers them: a
    /// superuser role cannot be given to one.
    pub const AUTOMATION: [Role; 3] = [Role::Engineer, Role::User, Role::Billing];

    /// The role chosen for an automation token.
    pub fn for_automation(value: &str) -> Result<Role, String> {
        Role::AUTOMATION
            .into_iter()
            .find(|r| r.as_str() == value)
            .ok_or_else(|| {
                "Choose the role of the automation token: Engineer, User or Billing.".into()
            })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Global,
    PurgeAll,
    PurgeSelect,
    GlobalRead,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::Global,
        Scope::PurgeAll,
        Scope::PurgeSelect,
        Scope::GlobalRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::PurgeAll => "purge_all",
            Scope::PurgeSelect => "purge_select",
            Scope::GlobalRead => "global:read",
        }
    }

    /// The wording of the seed's Scope checkboxes.
    pub fn label(self) -> &'static str {
        match self {
            Scope::Global => "Global API access",
            Scope::PurgeAll => "Purge full cache",
            Scope::PurgeSelect => "Purge select content",
            Scope::GlobalRead => "Read-only access",
        }
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|sc| sc.as_str() == s)
            .ok_or_else(|| format!("unknown scope {s:?}"))
    }
}

/// A set of scopes, stored space-separated as Fastly's API writes them. Held as one bit
/// per scope (of `Scope::ALL`), so that a token's scopes cost no allocation to copy: every
/// API request copies them from the verified-token cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScopeSet(u8);

impl ScopeSet {
    pub fn new(scopes: Vec<Scope>) -> Self {
        ScopeSet(scopes.into_iter().fold(0, |bits, s| bits | Self::bit(s)))
    }

    fn bit(scope: Scope) -> u8 {
        1 << scope as u8
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        s.split_whitespace()
            .map(Scope::from_str)
            .collect::<Result<Vec<_>, _>>()
            .map(Self::new)
    }

    pub fn contains(&self, scope: Scope) -> bool {
        self.0 & Self::bit(scope) != 0
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// The scopes in `Scope`'s order.
    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        Scope::ALL.into_iter().filter(|s| self.contains(*s))
    }

    /// The first scope the role may not use, if any.
    pub fn first_not_allowed_for(&self, role: Role) -> Option<Scope> {
        self.iter().find(|s| !role.may_use(*s))
    }

    pub fn labels(&self) -> String {
        self.iter().map(Scope::label).collect::<Vec<_>>().join(", ")
    }
}

impl FromStr for ScopeSet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ScopeSet::parse(s)
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Written name by name: every API answer about a token writes its scopes.
        for (i, scope) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(scope.as_str())?;
        }
        Ok(())
    }
}

/// What an engineer limited to some services may do on one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServicePermission {
    Full,
    ReadOnly,
    PurgeSelect,
    PurgeAll,
}

impl ServicePermission {
    pub const ALL: [ServicePermission; 4] = [
        ServicePermission::Full,
        ServicePermission::ReadOnly,
        ServicePermission::PurgeSelect,
        ServicePermission::PurgeAll,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServicePermission::Full => "full",
            ServicePermission::ReadOnly => "read_only",
            ServicePermission::PurgeSelect => "purge_select",
            ServicePermission::PurgeAll => "purge_all",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ServicePermission::Full => "Full access",
            ServicePermission::ReadOnly => "Read only",
            ServicePermission::PurgeSelect => "Purge select content",
            ServicePermission::PurgeAll => "Purge full cache",
        }
    }
}

impl fmt::Display for ServicePermission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ServicePermission {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ServicePermission::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown permission {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_scope_matrix() {
        let expect = [
            (Role::User, [true, false, false, true]),
            (Role::Billing, [true, false, false, true]),
            (Role::Engineer, [true, true, true, true]),
            (Role::Superuser, [true, true, true, true]),
        ];
        for (role, allowed) in expect {
            for (scope, ok) in Scope::ALL.into_iter().zip(allowed) {
                assert_eq!(role.may_use(scope), ok, "{role} / {}", scope.as_str());
            }
        }
    }

    #[test]
    fn scope_sets_hold_each_scope_once_in_order() {
        for bits in 0..16u8 {
            let scopes: Vec<Scope> = Scope::ALL
                .into_iter()
                .enumerate()
                .filter(|(i, _)| bits & (1 << i) != 0)
                .map(|(_, s)| s)
                .collect();
            // Given backwards and twice over.
            let set = ScopeSet::new(scopes.iter().rev().chain(&scopes).copied().collect());
            assert_eq!(set.iter().collect::<Vec<_>>(), scopes);
            for scope in Scope::ALL {
                assert_eq!(set.contains(scope), scopes.contains(&scope));
            }
            assert_eq!(set.is_empty(), scopes.is_empty());
            assert_eq!(ScopeSet::parse(&set.to_string()), Ok(set));
        }
    }

    #[test]
    fn scope_sets_parse_sort_and_print() {
        let set = ScopeSet::parse("global:read  global global").unwrap();
        assert_eq!(set.to_string(), "global global:read");
        assert!(ScopeSet::parse("global admin").is_err());
        assert_eq!(
            ScopeSet::parse("purge_all")
                .unwrap()
                .first_not_allowed_for(Role::User),
            Some(Scope::PurgeAll)
        );
        assert_eq!(
            ScopeSet::parse("purge_all")
                .unwrap()
                .first_not_allowed_for(Role::Engineer),
            None
        );
    }

    #[test]
    fn automation_roles_exclude_superuser() {
        assert_eq!(Role::for_automation("engineer"), Ok(Role::Engineer));
        assert_eq!(Role::for_automation("user"), Ok(Role::User));
        assert_eq!(Role::for_automation("billing"), Ok(Role::Billing));
        assert!(Role::for_automation("superuser").is_err());
        assert!(Role::for_automation("").is_err());
    }

    #[test]
    fn names_round_trip() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        for p in ServicePermission::ALL {
            assert_eq!(p.as_str().parse::<ServicePermission>().unwrap(), p);
        }
    }
}
