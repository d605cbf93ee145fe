//! A token as the API shows it. Unset fields are left out, never `null`.
//!
//! The answer borrows what it shows, from a `Token` row (lists, one token) or straight
//! from the verified-token cache's entry (`GET /tokens/self`, every hit of which would
//! otherwise copy each string twice: into a `Token`, then into the answer); either way
//! the same struct is serialised, so the shape is written once.

use std::borrow::Cow;

use serde::{Serialize, Serializer};

use super::timestamp;
use crate::db::token_store::Token;
use crate::domain::ids::ServiceId;
use crate::domain::roles::{Role, ScopeSet};
use crate::domain::secret::TokenKind;
use crate::ops::token_cache::{Address, Cached, LastUse};
use crate::telemetry::text;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenJson<'a> {
    pub id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<&'a str>,
    pub customer_id: &'a str,
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    #[schema(value_type = String)]
    pub scope: Scopes,
    /// The addresses the token may be used from; absent: any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_cidrs: Option<Vec<String>>,
    /// The token this one was rolled from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolled_from: Option<&'a str>,
    /// The token that replaced this one; it stops working at `expires_at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<&'a str>,
    /// Empty: all services.
    #[schema(value_type = Vec<String>)]
    pub services: Cow<'a, [ServiceId]>,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub expires_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub last_used_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub ip: Option<LastAddress<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<&'a str>,
    /// Automation tokens only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_access: Option<bool>,
    /// Only in the response that creates the token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
}

/// An RFC 3339 time (`2024-05-01T12:00:00Z`), written into the JSON without a `String`.
#[derive(Debug, Clone, Copy)]
pub struct Timestamp(pub i64);

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match text::rfc3339_seconds(self.0) {
            // Digits and separators only.
            Some(bytes) => serializer.serialize_str(std::str::from_utf8(&bytes).unwrap_or("")),
            None => serializer.serialize_str(&timestamp(self.0)),
        }
    }
}

/// A token's scopes, space-separated.
#[derive(Debug, Clone, Copy)]
pub struct Scopes(pub ScopeSet);

impl Serialize for Scopes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Joined in an array rather than through `Display` (`core::fmt`).
        let mut joined = text::ShortText::<256>::new();
        for (i, scope) in self.0.iter().enumerate() {
            if (i > 0 && !joined.push_str(" ")) || !joined.push_str(scope.as_str()) {
                return serializer.collect_str(&self.0);
            }
        }
        serializer.serialize_str(joined.as_str())
    }
}

/// The address of a token's last use.
#[derive(Debug, Clone, Copy)]
pub struct LastAddress<'a>(Address<'a>);

impl Serialize for LastAddress<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Address::Text(written) => serializer.serialize_str(written),
            Address::Ip(addr) => serializer.serialize_str(text::address(addr).as_str()),
        }
    }
}

/// What only automation tokens show: their role and TLS access.
fn automation_fields(
    kind: TokenKind,
    role: Option<Role>,
    tls_access: bool,
) -> (Option<&'static str>, Option<bool>) {
    let automation = kind == TokenKind::Automation;
    (
        role.filter(|_| automation).map(Role::as_str),
        automation.then_some(tls_access),
    )
}

impl<'a> TokenJson<'a> {
    /// A token row with its services.
    pub fn new(token: &'a Token, services: impl Into<Cow<'a, [ServiceId]>>) -> TokenJson<'a> {
        let (role, tls_access) = automation_fields(token.kind, token.role, token.tls_access.get());
        TokenJson {
            id: token.id.as_str(),
            user_id: token.user_id.as_ref().map(|u| u.as_str()),
            customer_id: token.account_id.as_str(),
            name: &token.name,
            description: token.description.as_deref(),
            scope: Scopes(token.scope),
            allowed_cidrs: token.allowed_cidrs.as_ref().map(|l| l.strings()),
            rolled_from: token.rolled_from.as_ref().map(|t| t.as_str()),
            replaced_by: token.replaced_by.as_ref().map(|t| t.as_str()),
            services: services.into(),
            created_at: Timestamp(token.created_at),
            expires_at: token.expires_at.map(Timestamp),
            last_used_at: token.last_used_at.map(Timestamp),
            ip: token
                .last_used_ip
                .as_deref()
                .map(|ip| LastAddress(Address::Text(ip))),
            user_agent: token.last_used_agent.as_deref(),
            role,
            tls_access,
            access_token: None,
        }
    }

    /// A token as the verified-token cache holds it, with `last_use` as its last use:
    /// the same answer as [`TokenJson::new`] gives for the row the entry was made from.
    pub fn cached(entry: &'a Cached, last_use: &'a LastUse) -> TokenJson<'a> {
        let (role, tls_access) = automation_fields(entry.kind(), entry.role(), entry.tls_access());
        TokenJson {
            id: entry.id(),
            user_id: entry.user_id(),
            customer_id: entry.account_id(),
            name: entry.name(),
            description: entry.description(),
            scope: Scopes(entry.scope()),
            allowed_cidrs: entry.allowlist().map(|l| l.strings()),
            rolled_from: entry.rolled_from(),
            replaced_by: entry.replaced_by(),
            services: Cow::Borrowed(entry.services()),
            created_at: Timestamp(entry.created_at()),
            expires_at: entry.expires_at().map(Timestamp),
            last_used_at: last_use.at().map(Timestamp),
            ip: last_use.address().map(LastAddress),
            user_agent: last_use.agent(),
            role,
            tls_access,
            access_token: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::token_store::Presented;
    use crate::db::types::Flag;
    use crate::domain::access::ServiceAccess;
    use crate::domain::cidr::Allowlist;
    use crate::domain::ids::TokenId;
    use crate::ops::token_cache::Agents;

    #[test]
    fn unset_fields_are_left_out() {
        let token = Token {
            name: "n".into(),
            scope: ScopeSet::parse("global").unwrap(),
            created_at: 1_800_000_000,
            ..Token::fixture("t", "a", Some("u"))
        };
        let value = serde_json::to_value(TokenJson::new(&token, vec![])).unwrap();
        let object = value.as_object().unwrap();
        for absent in [
            "description",
            "allowed_cidrs",
            "rolled_from",
            "replaced_by",
            "expires_at",
            "last_used_at",
            "ip",
            "user_agent",
            "role",
            "tls_access",
            "access_token",
        ] {
            assert!(!object.contains_key(absent), "{absent}");
        }
        assert_eq!(object["created_at"], "2027-01-15T08:00:00Z");
        assert_eq!(object["scope"], "global");
        assert!(!value.to_string().contains("null"));
    }

    /// A token row with every optional field set, as `Presented` would carry it.
    fn presented(token: Token) -> Presented {
        Presented {
            token,
            sudo_until: None,
            member_role: None,
            owner_locked: false,
            services: vec![ServiceId::from_raw("svc-1"), ServiceId::from_raw("svc-\"2")],
        }
    }

    #[test]
    fn the_cache_entry_answers_as_its_row_does() {
        let full = Token {
            kind: TokenKind::Automation,
            user_id: None,
            name: "Déploiement \"prod\" 🚀".into(),
            scope: ScopeSet::parse("global purge_select").unwrap(),
            role: Some(Role::Engineer),
            tls_access: Flag(true),
            created_at: 1_700_000_000,
            expires_at: Some(1_800_000_000),
            last_used_at: Some(1_750_000_000),
            last_used_ip: Some("2001:db8::7".into()),
            last_used_agent: Some("curl/8 \\ ü".into()),
            description: Some("für CI\n".into()),
            allowed_cidrs: Allowlist::parse_input(["10.0.0.0/8", "2001:db8::/32"]).unwrap(),
            rolled_from: Some(TokenId::from_raw("old")),
            replaced_by: Some(TokenId::from_raw("new")),
            ..Token::fixture("t", "a", None)
        };
        let unknown_address = Token {
            last_used_ip: Some("unknown".into()),
            ..Token::fixture("t2", "a", Some("u"))
        };
        let never_used = Token::fixture("t3", "a", Some("u"));
        let agents = Agents::default();
        for token in [full, unknown_address, never_used] {
            let services = presented(token.clone()).services;
            let row = serde_json::to_string(&TokenJson::new(&token, services)).unwrap();
            let entry = agents.entry(presented(token), ServiceAccess::All, 0);
            // The last use before this one: what the row had.
            let before = agents.used(&entry, 1_760_000_000, "192.0.2.1", Some("wrk"));
            let cached = serde_json::to_string(&TokenJson::cached(&entry, &before)).unwrap();
            assert_eq!(cached, row);
        }
    }

    #[test]
    fn times_out_of_four_digit_years_are_written_as_before() {
        for at in [0, 1_800_000_000, -86_400, 253_402_300_800] {
            let written = serde_json::to_value(Timestamp(at)).unwrap();
            assert_eq!(written, serde_json::Value::String(timestamp(at)), "{at}");
        }
        assert_eq!(
            serde_json::to_value(Timestamp(-1)).unwrap(),
            "1969-12-31T23:59:59Z"
        );
    }
}
