//! The rules that keep an account manageable: it always keeps a superuser, and a user
//! who still holds tokens is neither removed nor deleted.

use super::roles::Role;

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

/// A member as these rules see them. The synthetic user that owns imported legacy API
/// keys holds the superuser role but is not a person: nobody can sign in as it, so it
/// never counts as the superuser an account must keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub role: Role,
    pub person: bool,
}

impl Standing {
    #[cfg(test)]
    fn person(role: Role) -> Standing {
        Standing { role, person: true }
    }

    fn counts_as_superuser(self) -> bool {
        self.role == Role::Superuser && self.person
    }
}

/// A change of role. `superusers` counts the account's superusers who are people,
/// before the change.
pub fn check_role_change(from: Standing, to: Role, superusers: i64) -> Result<(), MemberError> {
    if from.counts_as_superuser() && to != Role::Superuser && superusers <= 1 {
        return Err(MemberError::LastSuperuser);
    }
    Ok(())
}

/// Removing a member from the account. Their user tokens in it would be left without an
/// owner who may use them, so they must be deleted first, as for deleting the user.
pub fn check_removal(
    member: Standing,
    superusers: i64,
    user_tokens: i64,
) -> Result<(), MemberError> {
    if member.counts_as_superuser() && superusers <= 1 {
        return Err(MemberError::LastSuperuser);
    }
    if user_tokens > 0 {
        return Err(MemberError::HasTokens(user_tokens));
    }
    Ok(())
}

/// Deleting the user altogether: only a user who belongs to this account alone.
pub fn check_deletion(
    member: Standing,
    superusers: i64,
    user_tokens: i64,
    other_memberships: i64,
) -> Result<(), MemberError> {
    check_removal(member, superusers, user_tokens)?;
    if other_memberships > 0 {
        return Err(MemberError::OtherAccounts);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_superuser_stays() {
        assert_eq!(
            check_role_change(Standing::person(Role::Superuser), Role::Engineer, 1),
            Err(MemberError::LastSuperuser)
        );
        assert_eq!(
            check_role_change(Standing::person(Role::Superuser), Role::Engineer, 2),
            Ok(())
        );
        assert_eq!(
            check_role_change(Standing::person(Role::Superuser), Role::Superuser, 1),
            Ok(())
        );
        assert_eq!(
            check_role_change(Standing::person(Role::User), Role::Superuser, 1),
            Ok(())
        );
        assert_eq!(
            check_removal(Standing::person(Role::Superuser), 1, 0),
            Err(MemberError::LastSuperuser)
        );
        assert_eq!(
            check_removal(Standing::person(Role::Superuser), 2, 0),
            Ok(())
        );
        assert_eq!(
            check_deletion(Standing::person(Role::Superuser), 1, 0, 0),
            Err(MemberError::LastSuperuser)
        );
    }

    #[test]
    fn the_synthetic_legacy_key_user_is_not_the_superuser_that_stays() {
        let synthetic = Standing {
            role: Role::Superuser,
            person: false,
        };
        // One person superuser left: the synthetic user may still go or change role.
        assert_eq!(check_role_change(synthetic, Role::Engineer, 1), Ok(()));
        assert_eq!(check_removal(synthetic, 1, 0), Ok(()));
        // Even when it is the only superuser-role member left (count of people: 0).
        assert_eq!(check_removal(synthetic, 0, 0), Ok(()));
        // Its tokens still keep it, like anyone's.
        assert_eq!(
            check_removal(synthetic, 1, 4),
            Err(MemberError::HasTokens(4))
        );
    }

    #[test]
    fn users_with_tokens_or_other_accounts_are_not_deleted() {
        assert_eq!(
            check_deletion(Standing::person(Role::User), 1, 3, 0),
            Err(MemberError::HasTokens(3))
        );
        assert!(MemberError::HasTokens(3)
            .message()
            .contains("3 user tokens"));
        assert!(MemberError::HasTokens(1)
            .message()
            .contains("1 user token "));
        assert_eq!(
            check_removal(Standing::person(Role::User), 1, 2),
            Err(MemberError::HasTokens(2))
        );
        assert_eq!(
            check_deletion(Standing::person(Role::User), 1, 0, 1),
            Err(MemberError::OtherAccounts)
        );
        assert_eq!(check_removal(Standing::person(Role::User), 1, 0), Ok(()));
        assert_eq!(
            check_deletion(Standing::person(Role::Billing), 1, 0, 0),
            Ok(())
        );
    }
}
