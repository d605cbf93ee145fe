//! The kinds of events the panel records, with the names Fastly's event log uses. The
//! Event log page offers exactly these as its type filter.

use std::fmt;
use std::str::FromStr;

macro_rules! event_types {
    ($($variant:ident => $name:literal,)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventType {
            $($variant,)*
        }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(EventType::$variant => $name,)*
                }
            }
        }

        impl FromStr for EventType {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok(EventType::$variant),)*
                    other => Err(format!("unknown event type {other:?}")),
                }
            }
        }
    };
}

event_types! {
    TokenCreate => "token.create",
    TokenDestroy => "token.destroy",
    TokenSudo => "token.sudo",
    TokenExposed => "token.exposed",
    TokenRotate => "token.rotate",
    TokenRotatedSecretUsed => "token.rotated_secret_used",
    TokenAddressRefused => "token.address_refused",
    UserLogin => "user.login",
    UserLoginFailure => "user.login_failure",
    UserLogout => "user.logout",
    UserSudo => "user.sudo",
    UserSudoFailure => "user.sudo_failure",
    UserCreate => "user.create",
    UserUpdate => "user.update",
    UserDestroy => "user.destroy",
    UserPasswordUpdate => "user.password_update",
    TwoFactorEnable => "two_factor_auth.enable",
    TwoFactorDisable => "two_factor_auth.disable",
    TwoFactorRecoveryCodes => "two_factor_auth.recovery_codes_regenerate",
    InvitationCreate => "invitation.create",
    InvitationAccept => "invitation.accept",
    InvitationDecline => "invitation.decline",
    InvitationRevoke => "invitation.revoke",
    AccountUpdate => "account.update",
    AccountTokenPolicyUpdate => "account.token_policy_update",
    ServiceCreate => "service.create",
    ServiceUpdate => "service.update",
    ServiceDelete => "service.delete",
    ServicePurgeAll => "service.purge_all",
    ServicePurge => "service.purge",
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>(), Ok(*t));
        }
        let mut names: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), EventType::ALL.len());
        assert!("token.made".parse::<EventType>().is_err());
    }
}
