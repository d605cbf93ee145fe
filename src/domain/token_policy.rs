//! The account's token policy (Security > Token policy): what new tokens must look like,
//! and which existing tokens no longer fit. `check` is the one rule every way of making
//! a token goes through (`ops::token_lifecycle::issue`); the create form asks `offers`
//! what to show, so it only offers what `check` would accept.

use super::roles::{Scope, ScopeSet};
use super::secret::TokenKind;

pub const DAY: i64 = 86_400;
/// The inactivity window may be set from this many days…
pub const MIN_INACTIVITY_DAYS: i64 = 30;
/// …up to two years, which is also the default (then counted in calendar years, see
/// `ops::token_lifecycle::unused_cutoff`).
pub const MAX_INACTIVITY_DAYS: i64 = 730;
/// The longest "maximum lifetime" one may set (the expiry limit, 9999-12-31, is further).
pub const MAX_LIFETIME_DAYS: i64 = 3_650;

/// One account's policy. The default allows everything the panel allows without one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenPolicy {
    /// New tokens expire at most this many days after creation.
    pub max_lifetime_days: Option<i64>,
    /// New tokens must have an expiry ("Never expire" is not offered).
    pub require_expiry: bool,
    /// User tokens may not carry the `global` scope.
    pub no_global_user_tokens: bool,
    /// Automation tokens must be limited to an IP allowlist.
    pub automation_needs_allowlist: bool,
    /// Tokens unused this many days are deleted; None: two calendar years.
    pub inactivity_days: Option<i64>,
}

/// What `check` looks at in a request for a new token.
#[derive(Debug, Clone, Copy)]
pub struct PolicyRequest<'a> {
    pub kind: TokenKind,
    pub scopes: &'a ScopeSet,
    pub expires_at: Option<i64>,
    /// The token is limited to an IP allowlist.
    pub has_allowlist: bool,
}

/// A rule of the policy a token breaks. Its message is the API's `msg` and the form's
/// explanation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyViolation {
    MustExpire,
    TooLong { max_days: i64 },
    GlobalOnUserToken,
    AutomationNeedsAllowlist,
}

impl PolicyViolation {
    pub fn message(&self) -> String {
        match self {
            PolicyViolation::MustExpire => {
                "The account's token policy requires tokens to expire.".to_owned()
            }
            PolicyViolation::TooLong { max_days } => format!(
                "The account's token policy allows tokens to last at most {max_days} {}.",
                days_word(*max_days)
            ),
            PolicyViolation::GlobalOnUserToken => {
                "The account's token policy does not allow the global scope on user tokens."
                    .to_owned()
            }
            PolicyViolation::AutomationNeedsAllowlist => {
                "The account's token policy requires automation tokens to have an IP allowlist."
                    .to_owned()
            }
        }
    }

    /// The short label of the rule, for the "Tokens that break the policy" list.
    pub fn label(&self) -> &'static str {
        match self {
            PolicyViolation::MustExpire => "never expires",
            PolicyViolation::TooLong { .. } => "lasts longer than the maximum lifetime",
            PolicyViolation::GlobalOnUserToken => "user token with the global scope",
            PolicyViolation::AutomationNeedsAllowlist => "automation token without IP allowlist",
        }
    }

    /// The create form's field the rule is about.
    pub fn field(&self) -> &'static str {
        match self {
            PolicyViolation::MustExpire | PolicyViolation::TooLong { .. } => "expiration",
            PolicyViolation::GlobalOnUserToken => "scope",
            PolicyViolation::AutomationNeedsAllowlist => "type",
        }
    }
}

fn days_word(n: i64) -> &'static str {
    if n == 1 {
        "day"
    } else {
        "days"
    }
}

impl TokenPolicy {
    /// The latest expiry a token created at `now` may have.
    pub fn latest_expiry(&self, now: i64) -> Option<i64> {
        self.max_lifetime_days.map(|days| now + days * DAY)
    }

    /// Whether a new token may be set never to expire.
    pub fn allows_never(&self) -> bool {
        !self.require_expiry && self.max_lifetime_days.is_none()
    }

    /// The rules in one line, for the event log and the Security page.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(days) = self.max_lifetime_days {
            parts.push(format!("maximum lifetime {days} {}", days_word(days)));
        }
        if self.require_expiry {
            parts.push("tokens must expire".to_owned());
        }
        if self.no_global_user_tokens {
            parts.push("no global scope on user tokens".to_owned());
        }
        if self.automation_needs_allowlist {
            parts.push("automation tokens need an IP allowlist".to_owned());
        }
        parts.push(match self.inactivity_days {
            Some(days) => format!("unused tokens deleted after {days} days"),
            None => "unused tokens deleted after two years".to_owned(),
        });
        parts.join(", ")
    }
}

/// Whether a new token fits the policy; the first rule it breaks otherwise.
pub fn check(
    policy: &TokenPolicy,
    request: &PolicyRequest<'_>,
    now: i64,
) -> Result<(), PolicyViolation> {
    match (request.expires_at, policy.latest_expiry(now)) {
        (None, Some(_)) if policy.require_expiry => return Err(PolicyViolation::MustExpire),
        (None, Some(_)) => {
            return Err(PolicyViolation::TooLong {
                max_days: policy.max_lifetime_days.unwrap_or(0),
            })
        }
        (None, None) if policy.require_expiry => return Err(PolicyViolation::MustExpire),
        // A date picked on the form is midnight UTC of that day: allow up to the end of
        // the last allowed day.
        (Some(at), Some(latest)) if at > latest => {
            return Err(PolicyViolation::TooLong {
                max_days: policy.max_lifetime_days.unwrap_or(0),
            })
        }
        _ => {}
    }
    if policy.no_global_user_tokens
        && request.kind == TokenKind::User
        && request.scopes.contains(Scope::Global)
    {
        return Err(PolicyViolation::GlobalOnUserToken);
    }
    if policy.automation_needs_allowlist
        && request.kind == TokenKind::Automation
        && !request.has_allowlist
    {
        return Err(PolicyViolation::AutomationNeedsAllowlist);
    }
    Ok(())
}

/// An existing token, as the "Tokens that break the policy" view sees it.
#[derive(Debug, Clone, Copy)]
pub struct ExistingToken<'a> {
    pub kind: TokenKind,
    pub scopes: &'a ScopeSet,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub has_allowlist: bool,
}

/// Every rule an existing token breaks (a policy tightened after it was made). The
/// lifetime counts from the token's creation.
pub fn violations(policy: &TokenPolicy, token: &ExistingToken<'_>) -> Vec<PolicyViolation> {
    let mut found = Vec::new();
    if policy.require_expiry && token.expires_at.is_none() {
        found.push(PolicyViolation::MustExpire);
    }
    if let Some(max_days) = policy.max_lifetime_days {
        let too_long = match token.expires_at {
            None => !policy.require_expiry,
            Some(at) => at > token.created_at + max_days * DAY,
        };
        if too_long {
            found.push(PolicyViolation::TooLong { max_days });
        }
    }
    if policy.no_global_user_tokens
        && token.kind == TokenKind::User
        && token.scopes.contains(Scope::Global)
    {
        found.push(PolicyViolation::GlobalOnUserToken);
    }
    if policy.automation_needs_allowlist
        && token.kind == TokenKind::Automation
        && !token.has_allowlist
    {
        found.push(PolicyViolation::AutomationNeedsAllowlist);
    }
    found
}

/// A policy as typed on the Security > Token policy form, checked.
pub fn parse_form(
    max_lifetime_days: &str,
    require_expiry: bool,
    no_global_user_tokens: bool,
    automation_needs_allowlist: bool,
    inactivity_days: &str,
) -> Result<TokenPolicy, Vec<(&'static str, String)>> {
    let mut errors = Vec::new();
    let max_lifetime_days = match max_lifetime_days.trim() {
        "" => None,
        raw => match raw.parse::<i64>() {
            Ok(days) if (1..=MAX_LIFETIME_DAYS).contains(&days) => Some(days),
            _ => {
                errors.push((
                    "max_lifetime_days",
                    format!("Enter a number of days from 1 to {MAX_LIFETIME_DAYS}, or leave it empty for no maximum."),
                ));
                None
            }
        },
    };
    let inactivity_days = match inactivity_days.trim() {
        "" => None,
        raw => match raw.parse::<i64>() {
            Ok(MAX_INACTIVITY_DAYS) => None,
            Ok(days) if (MIN_INACTIVITY_DAYS..MAX_INACTIVITY_DAYS).contains(&days) => Some(days),
            _ => {
                errors.push((
                    "inactivity_days",
                    format!("Enter a number of days from {MIN_INACTIVITY_DAYS} to {MAX_INACTIVITY_DAYS} (two years, the default)."),
                ));
                None
            }
        },
    };
    if errors.is_empty() {
        Ok(TokenPolicy {
            max_lifetime_days,
            require_expiry,
            no_global_user_tokens,
            automation_needs_allowlist,
            inactivity_days,
        })
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn scopes(s: &str) -> ScopeSet {
        ScopeSet::parse(s).unwrap()
    }

    fn request<'a>(
        kind: TokenKind,
        scopes: &'a ScopeSet,
        expires_at: Option<i64>,
        allowlist: &[&str],
    ) -> PolicyRequest<'a> {
        PolicyRequest {
            kind,
            scopes,
            expires_at,
            has_allowlist: !allowlist.is_empty(),
        }
    }

    #[test]
    fn the_default_policy_allows_everything() {
        let p = TokenPolicy::default();
        let g = scopes("global");
        assert_eq!(
            check(&p, &request(TokenKind::User, &g, None, &[]), NOW),
            Ok(())
        );
        assert_eq!(
            check(&p, &request(TokenKind::Automation, &g, None, &[]), NOW),
            Ok(())
        );
        assert!(p.allows_never());
    }

    #[test]
    fn expiry_rules() {
        let g = scopes("global:read");
        let must = TokenPolicy {
            require_expiry: true,
            ..TokenPolicy::default()
        };
        assert_eq!(
            check(&must, &request(TokenKind::User, &g, None, &[]), NOW),
            Err(PolicyViolation::MustExpire)
        );
        assert_eq!(
            check(
                &must,
                &request(TokenKind::User, &g, Some(NOW + DAY), &[]),
                NOW
            ),
            Ok(())
        );
        let max = TokenPolicy {
            max_lifetime_days: Some(30),
            ..TokenPolicy::default()
        };
        assert!(!max.allows_never());
        assert_eq!(
            check(&max, &request(TokenKind::User, &g, None, &[]), NOW),
            Err(PolicyViolation::TooLong { max_days: 30 })
        );
        assert_eq!(
            check(
                &max,
                &request(TokenKind::User, &g, Some(NOW + 30 * DAY), &[]),
                NOW
            ),
            Ok(()),
            "exactly the maximum is allowed"
        );
        assert_eq!(
            check(
                &max,
                &request(TokenKind::User, &g, Some(NOW + 30 * DAY + 1), &[]),
                NOW
            ),
            Err(PolicyViolation::TooLong { max_days: 30 })
        );
    }

    #[test]
    fn scope_and_allowlist_rules() {
        let p = TokenPolicy {
            no_global_user_tokens: true,
            automation_needs_allowlist: true,
            ..TokenPolicy::default()
        };
        let g = scopes("global purge_all");
        let read = scopes("global:read");
        let cidr = ["10.0.0.0/8"];
        assert_eq!(
            check(&p, &request(TokenKind::User, &g, None, &[]), NOW),
            Err(PolicyViolation::GlobalOnUserToken)
        );
        assert_eq!(
            check(&p, &request(TokenKind::User, &read, None, &[]), NOW),
            Ok(())
        );
        assert_eq!(
            check(&p, &request(TokenKind::Automation, &g, None, &[]), NOW),
            Err(PolicyViolation::AutomationNeedsAllowlist)
        );
        assert_eq!(
            check(&p, &request(TokenKind::Automation, &g, None, &cidr), NOW),
            Ok(())
        );
        assert!(PolicyViolation::AutomationNeedsAllowlist
            .message()
            .contains("IP allowlist"));
    }

    #[test]
    fn existing_tokens_are_measured_from_their_creation() {
        let p = TokenPolicy {
            max_lifetime_days: Some(90),
            no_global_user_tokens: true,
            ..TokenPolicy::default()
        };
        let g = scopes("global");
        let token = |kind, expires_at| ExistingToken {
            kind,
            scopes: &g,
            created_at: NOW,
            expires_at,
            has_allowlist: false,
        };
        assert_eq!(
            violations(&p, &token(TokenKind::User, None)),
            vec![
                PolicyViolation::TooLong { max_days: 90 },
                PolicyViolation::GlobalOnUserToken
            ]
        );
        assert!(violations(&p, &token(TokenKind::Automation, Some(NOW + 90 * DAY))).is_empty());
        let strict = TokenPolicy {
            require_expiry: true,
            max_lifetime_days: Some(1),
            ..TokenPolicy::default()
        };
        assert_eq!(
            violations(&strict, &token(TokenKind::Automation, None)),
            vec![PolicyViolation::MustExpire],
            "a never-expiring token is reported once"
        );
    }

    #[test]
    fn the_form_is_checked() {
        assert_eq!(
            parse_form("", false, false, false, ""),
            Ok(TokenPolicy::default())
        );
        assert_eq!(
            parse_form("90", true, true, true, "30")
                .map(|p| (p.max_lifetime_days, p.inactivity_days)),
            Ok((Some(90), Some(30)))
        );
        assert_eq!(
            parse_form("", false, false, false, "730").map(|p| p.inactivity_days),
            Ok(None),
            "two years is the default"
        );
        for (max, inactive) in [
            ("0", ""),
            ("x", ""),
            ("3651", ""),
            ("", "29"),
            ("", "731"),
            ("", "1e3"),
        ] {
            assert!(
                parse_form(max, false, false, false, inactive).is_err(),
                "{max:?} {inactive:?}"
            );
        }
    }
}
