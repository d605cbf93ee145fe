//! A token as the API shows it. Unset fields are left out, never `null`.

use serde::Serialize;

use super::timestamp;
use crate::db::token_store::Token;
use crate::domain::ids::{AccountId, ServiceId, TokenId, UserId};
use crate::domain::roles::Role;
use crate::domain::secret::TokenKind;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenJson {
    pub id: TokenId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    pub customer_id: AccountId,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub scope: String,
    /// The addresses the token may be used from; absent: any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_cidrs: Option<Vec<String>>,
    /// The token this one was rolled from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolled_from: Option<TokenId>,
    /// The token that replaced this one; it stops working at `expires_at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<TokenId>,
    /// Empty: all services.
    pub services: Vec<ServiceId>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Automation tokens only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_access: Option<bool>,
    /// Only in the response that creates the token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
}

impl TokenJson {
    pub fn new(token: &Token, services: Vec<ServiceId>) -> TokenJson {
        let automation = token.kind == TokenKind::Automation;
        TokenJson {
            id: token.id.clone(),
            user_id: token.user_id.clone(),
            customer_id: token.account_id.clone(),
            name: token.name.clone(),
            description: token.description.clone(),
            scope: token.scope.to_string(),
            allowed_cidrs: token.allowed_cidrs.as_ref().map(|l| l.strings()),
            rolled_from: token.rolled_from.clone(),
            replaced_by: token.replaced_by.clone(),
            services,
            created_at: timestamp(token.created_at),
            expires_at: token.expires_at.map(timestamp),
            last_used_at: token.last_used_at.map(timestamp),
            ip: token.last_used_ip.clone(),
            user_agent: token.last_used_agent.clone(),
            role: token.role.filter(|_| automation).map(Role::as_str),
            tls_access: automation.then_some(token.tls_access.get()),
            access_token: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::roles::ScopeSet;

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
}
