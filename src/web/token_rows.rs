//! A token as the lists (Personal tokens, Account tokens, confirmations) print it.

use super::page::{date_time, Date, When};
use crate::db::token_store::{ListedToken, Token};
use crate::domain::ids::{ServiceId, TokenId};

/// Tokens expiring within this many days say so.
const SOON_DAYS: i64 = 7;

/// One token, ready to print.
pub struct TokenRow {
    pub id: TokenId,
    pub name: String,
    pub scope: String,
    pub access: String,
    pub expires_at: Option<i64>,
    pub expired: bool,
    /// "Expires in 3 days" when the token expires within a week.
    pub expires_soon: Option<String>,
    /// The same moments for the lists: relative words, exact time as the tooltip.
    pub created_when: When,
    pub last_used_when: Option<When>,
    pub expires_when: Option<When>,
    pub description: Option<String>,
    /// The allowlist, e.g. "203.0.113.0/24, 2001:db8::/32"; None: any address.
    pub allowed_cidrs: Option<String>,
    /// The id of the token this one was rolled from.
    pub rolled_from: Option<String>,
    /// Rolled: when the old secret stops working (the overlap's end).
    pub overlap_ends: Option<String>,
    /// The viewer may roll it (set by the list).
    pub rollable: bool,
}

impl TokenRow {
    /// `services`: the token's services by name; none means all of them.
    pub fn new(token: &Token, services: Option<&Vec<(ServiceId, String)>>, now: i64) -> TokenRow {
        let services = services.filter(|list| !list.is_empty()).map(|list| {
            list.iter()
                .map(|(_, name)| name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        });
        TokenRow::listed(
            ListedToken {
                id: token.id.clone(),
                name: token.name.clone(),
                scope: token.scope,
                created_at: token.created_at,
                expires_at: token.expires_at,
                last_used_at: token.last_used_at,
                description: token.description.clone(),
                allowed_cidrs: token.allowed_cidrs.clone(),
                rolled_from: token.rolled_from.clone(),
                replaced_by: token.replaced_by.clone(),
                services,
            },
            now,
        )
    }

    /// The row of a token as the lists read it (its services' names already joined).
    pub fn listed(token: ListedToken, now: i64) -> TokenRow {
        let expired = token.is_expired(now);
        TokenRow {
            id: token.id,
            name: token.name,
            scope: token.scope.labels(),
            access: token.services.unwrap_or_else(|| "All services".to_owned()),
            expires_at: token.expires_at,
            expired,
            expires_soon: expires_soon(token.expires_at, now),
            created_when: When::new(token.created_at, now),
            last_used_when: token.last_used_at.map(|at| When::new(at, now)),
            expires_when: token.expires_at.map(|at| When::new(at, now)),
            description: token.description,
            allowed_cidrs: token.allowed_cidrs.as_ref().map(|l| l.strings().join(", ")),
            rolled_from: token.rolled_from.as_ref().map(ToString::to_string),
            overlap_ends: token
                .replaced_by
                .as_ref()
                .and(token.expires_at)
                .map(date_time),
            rollable: false,
        }
    }

    /// The expiry day (`2026-11-28`), or "Never".
    pub fn expires(&self) -> String {
        self.expires_at
            .map_or_else(|| "Never".to_owned(), |at| Date(at).to_string())
    }
}

fn expires_soon(expires_at: Option<i64>, now: i64) -> Option<String> {
    let left = expires_at? - now;
    if left <= 0 || left > SOON_DAYS * 86_400 {
        return None;
    }
    let days = (left + 86_399) / 86_400;
    Some(if days <= 1 {
        "Expires within a day".to_owned()
    } else {
        format!("Expires in {days} days")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiring_soon_wording() {
        assert_eq!(
            expires_soon(Some(1000 + 3 * 86_400), 1000).as_deref(),
            Some("Expires in 3 days")
        );
        assert_eq!(
            expires_soon(Some(1000 + 3600), 1000).as_deref(),
            Some("Expires within a day")
        );
        assert_eq!(expires_soon(Some(1000 + 8 * 86_400), 1000), None);
        assert_eq!(expires_soon(Some(999), 1000), None);
        assert_eq!(expires_soon(None, 1000), None);
    }
}
