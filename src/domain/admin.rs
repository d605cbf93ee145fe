//! Who may do what in the administrative parts of the panel (Account tokens, automation
//! tokens, users, services), and the rules that keep an account manageable: it always
//! keeps a superuser, and a user who still holds tokens is not deleted. The pages check
//! every action here on the server, and the navigation asks the same functions, so what
//! is shown and what is allowed cannot drift apart.

use std::fmt;

use super::roles::{Role, ServicePermission};

/// The administrative actions, each decided by `Actor::check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// See every token of the account (Account > API tokens > Account tokens).
    ViewAccountTokens,
    /// Revoke any token of the account, whoever owns it.
    RevokeAccountTokens,
    /// Create automation tokens (sudo mode is required on top, as for every token).
    CreateAutomationTokens,
    /// See the members of the account.
    ViewUsers,
    /// Add members, change roles and service limits, remove and delete users.
    ManageUsers,
    /// Open the Services page (which lists only the services the member may see).
    ViewServices,
    /// Create a service.
    CreateServices,
}

impl Action {
    pub const ALL: [Action; 7] = [
        Action::ViewAccountTokens,
        Action::RevokeAccountTokens,
        Action::CreateAutomationTokens,
        Action::ViewUsers,
        Action::ManageUsers,
        Action::ViewServices,
        Action::CreateServices,
    ];
}

/// Which services a member works on: all of the account's, or some with a permission
/// each (engineers only; see `ServiceAccess::of`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceAccess {
    All,
    Limited(Vec<(String, ServicePermission)>),
}

impl ServiceAccess {
    /// A member's access from their role and their `service_permissions` rows. Only
    /// engineers are ever limited; an engineer without rows works on every service.
    /// A row with a permission this build does not know grants nothing.
    pub fn of(role: Role, rows: &[(String, String)]) -> ServiceAccess {
        if role != Role::Engineer || rows.is_empty() {
            return ServiceAccess::All;
        }
        ServiceAccess::Limited(
            rows.iter()
                .filter_map(|(id, p)| Some((id.clone(), p.parse().ok()?)))
                .collect(),
        )
    }

    /// The permission on one service; None when the member has no access to it.
    pub fn permission(&self, service_id: &str) -> Option<ServicePermission> {
        match self {
            ServiceAccess::All => Some(ServicePermission::Full),
            ServiceAccess::Limited(list) => list
                .iter()
                .find(|(id, _)| id == service_id)
                .map(|(_, p)| *p),
        }
    }

    pub fn is_limited(&self) -> bool {
        matches!(self, ServiceAccess::Limited(_))
    }
}

/// The signed-in member as the policy sees them, in their current account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub role: Role,
    pub services: ServiceAccess,
}

/// An action the actor may not take. Pages answer it with 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denied(pub Action);

impl Denied {
    pub fn message(&self) -> String {
        let what = match self.0 {
            Action::ViewAccountTokens => "see the account's tokens",
            Action::RevokeAccountTokens => "delete other users' tokens",
            Action::CreateAutomationTokens => "create automation tokens",
            Action::ViewUsers => "see the account's users",
            Action::ManageUsers => "manage the account's users",
            Action::ViewServices => "see the account's services",
            Action::CreateServices => "create services",
        };
        format!("Your role does not allow you to {what}. Ask a superuser of this account.")
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl Actor {
    pub fn new(role: Role, services: ServiceAccess) -> Actor {
        Actor { role, services }
    }

    /// The role × action matrix.
    pub fn may(&self, action: Action) -> bool {
        match action {
            Action::ViewAccountTokens
            | Action::RevokeAccountTokens
            | Action::CreateAutomationTokens
            | Action::ViewUsers
            | Action::ManageUsers => self.role == Role::Superuser,
            Action::ViewServices => matches!(self.role, Role::Superuser | Role::Engineer),
            // A limited engineer would lose sight of a service they created.
            Action::CreateServices => match self.role {
                Role::Superuser => true,
                Role::Engineer => !self.services.is_limited(),
                Role::User | Role::Billing => false,
            },
        }
    }

    #[must_use = "a denied action must not go ahead"]
    pub fn check(&self, action: Action) -> Result<(), Denied> {
        if self.may(action) {
            Ok(())
        } else {
            Err(Denied(action))
        }
    }

    /// Whether the service appears on the Services page for this member.
    pub fn may_see_service(&self, service_id: &str) -> bool {
        match self.role {
            Role::Superuser => true,
            Role::Engineer => self.services.permission(service_id).is_some(),
            Role::User | Role::Billing => false,
        }
    }

    /// Rename or delete a service: superusers, and engineers with `full` permission on it
    /// (every engineer who is not limited has it on every service).
    pub fn may_manage_service(&self, service_id: &str) -> bool {
        match self.role {
            Role::Superuser => true,
            Role::Engineer => self.services.permission(service_id) == Some(ServicePermission::Full),
            Role::User | Role::Billing => false,
        }
    }
}

/// The roles an automation token can carry, in the order the form offers them.
pub const AUTOMATION_ROLES: [Role; 3] = [Role::Engineer, Role::User, Role::Billing];

/// The role chosen for an automation token; a superuser role cannot be given to one.
pub fn automation_role(value: &str) -> Result<Role, String> {
    AUTOMATION_ROLES
        .into_iter()
        .find(|r| r.as_str() == value)
        .ok_or_else(|| "Choose the role of the automation token: Engineer, User or Billing.".into())
}

/// Why a change to a member is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberError {
    /// The change would leave the account without a superuser.
    LastSuperuser,
    /// The user still holds this many user tokens in the account.
    HasTokens(i64),
    /// The user belongs to other accounts too: remove them from this one instead.
    OtherAccounts,
}

impl MemberError {
    pub fn message(&self) -> String {
        match self {
            MemberError::LastSuperuser => {
                "This is the last superuser of the account. Make another member a superuser first."
                    .into()
            }
            MemberError::HasTokens(n) => {
                let tokens = if *n == 1 { "token" } else { "tokens" };
                format!(
                    "This user still has {n} user {tokens} in this account. User tokens must be deleted before the user can be."
                )
            }
            MemberError::OtherAccounts => {
                "This user also belongs to other accounts, so they cannot be deleted from here. Remove them from this account instead."
                    .into()
            }
        }
    }
}

/// A change of role. `superusers` counts the account's superusers before the change.
pub fn check_role_change(from: Role, to: Role, superusers: i64) -> Result<(), MemberError> {
    if from == Role::Superuser && to != Role::Superuser && superusers <= 1 {
        return Err(MemberError::LastSuperuser);
    }
    Ok(())
}

/// Removing a member from the account. Their user tokens in it would be left without an
/// owner who may use them, so they must be deleted first, as for deleting the user.
pub fn check_removal(role: Role, superusers: i64, user_tokens: i64) -> Result<(), MemberError> {
    if role == Role::Superuser && superusers <= 1 {
        return Err(MemberError::LastSuperuser);
    }
    if user_tokens > 0 {
        return Err(MemberError::HasTokens(user_tokens));
    }
    Ok(())
}

/// Deleting the user altogether: only a user who belongs to this account alone.
pub fn check_deletion(
    role: Role,
    superusers: i64,
    user_tokens: i64,
    other_memberships: i64,
) -> Result<(), MemberError> {
    check_removal(role, superusers, user_tokens)?;
    if other_memberships > 0 {
        return Err(MemberError::OtherAccounts);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(role: Role) -> Actor {
        Actor::new(role, ServiceAccess::All)
    }

    fn limited(perms: &[(&str, ServicePermission)]) -> Actor {
        Actor::new(
            Role::Engineer,
            ServiceAccess::Limited(perms.iter().map(|(s, p)| (s.to_string(), *p)).collect()),
        )
    }

    #[test]
    fn role_action_matrix() {
        // Columns follow Action::ALL: view tokens, revoke, automation, view users,
        // manage users, view services, create services.
        let expect = [
            (
                Role::User,
                [false, false, false, false, false, false, false],
            ),
            (
                Role::Billing,
                [false, false, false, false, false, false, false],
            ),
            (
                Role::Engineer,
                [false, false, false, false, false, true, true],
            ),
            (Role::Superuser, [true, true, true, true, true, true, true]),
        ];
        for (role, allowed) in expect {
            for (action, ok) in Action::ALL.into_iter().zip(allowed) {
                assert_eq!(actor(role).may(action), ok, "{role} / {action:?}");
                assert_eq!(actor(role).check(action).is_ok(), ok);
            }
        }
        let eng = limited(&[("s1", ServicePermission::Full)]);
        assert!(eng.may(Action::ViewServices));
        assert!(
            !eng.may(Action::CreateServices),
            "limited engineers do not create"
        );
        assert_eq!(
            actor(Role::User).check(Action::ViewUsers),
            Err(Denied(Action::ViewUsers))
        );
        assert!(Denied(Action::ViewUsers)
            .message()
            .contains("Ask a superuser"));
    }

    #[test]
    fn services_follow_permissions() {
        let eng = limited(&[
            ("s1", ServicePermission::Full),
            ("s2", ServicePermission::ReadOnly),
            ("s3", ServicePermission::PurgeAll),
        ]);
        assert!(eng.may_see_service("s1") && eng.may_manage_service("s1"));
        assert!(eng.may_see_service("s2") && !eng.may_manage_service("s2"));
        assert!(eng.may_see_service("s3") && !eng.may_manage_service("s3"));
        assert!(!eng.may_see_service("s4") && !eng.may_manage_service("s4"));
        let free = actor(Role::Engineer);
        assert!(free.may_see_service("any") && free.may_manage_service("any"));
        let boss = actor(Role::Superuser);
        assert!(boss.may_manage_service("any"));
        for role in [Role::User, Role::Billing] {
            assert!(!actor(role).may_see_service("s1"));
            assert!(!actor(role).may_manage_service("s1"));
        }
    }

    #[test]
    fn only_engineers_with_rows_are_limited() {
        let rows = vec![
            ("s1".to_owned(), "full".to_owned()),
            ("s2".to_owned(), "bogus".to_owned()),
        ];
        assert_eq!(
            ServiceAccess::of(Role::Superuser, &rows),
            ServiceAccess::All
        );
        assert_eq!(ServiceAccess::of(Role::Engineer, &[]), ServiceAccess::All);
        let access = ServiceAccess::of(Role::Engineer, &rows);
        assert_eq!(access.permission("s1"), Some(ServicePermission::Full));
        assert_eq!(
            access.permission("s2"),
            None,
            "unknown permissions grant nothing"
        );
        assert!(access.is_limited());
    }

    #[test]
    fn automation_roles_exclude_superuser() {
        assert_eq!(automation_role("engineer"), Ok(Role::Engineer));
        assert_eq!(automation_role("user"), Ok(Role::User));
        assert_eq!(automation_role("billing"), Ok(Role::Billing));
        assert!(automation_role("superuser").is_err());
        assert!(automation_role("").is_err());
    }

    #[test]
    fn the_last_superuser_stays() {
        assert_eq!(
            check_role_change(Role::Superuser, Role::Engineer, 1),
            Err(MemberError::LastSuperuser)
        );
        assert_eq!(
            check_role_change(Role::Superuser, Role::Engineer, 2),
            Ok(())
        );
        assert_eq!(
            check_role_change(Role::Superuser, Role::Superuser, 1),
            Ok(())
        );
        assert_eq!(check_role_change(Role::User, Role::Superuser, 1), Ok(()));
        assert_eq!(
            check_removal(Role::Superuser, 1, 0),
            Err(MemberError::LastSuperuser)
        );
        assert_eq!(check_removal(Role::Superuser, 2, 0), Ok(()));
        assert_eq!(
            check_deletion(Role::Superuser, 1, 0, 0),
            Err(MemberError::LastSuperuser)
        );
    }

    #[test]
    fn users_with_tokens_or_other_accounts_are_not_deleted() {
        assert_eq!(
            check_deletion(Role::User, 1, 3, 0),
            Err(MemberError::HasTokens(3))
        );
        assert!(MemberError::HasTokens(3)
            .message()
            .contains("3 user tokens"));
        assert!(MemberError::HasTokens(1)
            .message()
            .contains("1 user token "));
        assert_eq!(
            check_removal(Role::User, 1, 2),
            Err(MemberError::HasTokens(2))
        );
        assert_eq!(
            check_deletion(Role::User, 1, 0, 1),
            Err(MemberError::OtherAccounts)
        );
        assert_eq!(check_removal(Role::User, 1, 0), Ok(()));
        assert_eq!(check_deletion(Role::Billing, 1, 0, 0), Ok(()));
    }
}
