//! The accounts' token policies: one row per account that set one.

use sqlx::FromRow;

use super::types::Flag;
use super::Exec;
use crate::domain::ids::AccountId;
use crate::domain::token_policy::TokenPolicy;

#[derive(FromRow)]
struct PolicyRow {
    max_lifetime_days: Option<i64>,
    require_expiry: Flag,
    no_global_user_tokens: Flag,
    automation_needs_allowlist: Flag,
    inactivity_days: Option<i64>,
}

impl From<PolicyRow> for TokenPolicy {
    fn from(row: PolicyRow) -> Self {
        TokenPolicy {
            max_lifetime_days: row.max_lifetime_days,
            require_expiry: row.require_expiry.get(),
            no_global_user_tokens: row.no_global_user_tokens.get(),
            automation_needs_allowlist: row.automation_needs_allowlist.get(),
            inactivity_days: row.inactivity_days,
        }
    }
}

const COLUMNS: &str = "max_lifetime_days, require_expiry, no_global_user_tokens, \
     automation_needs_allowlist, inactivity_days";

/// The account's policy; the default when it set none.
pub async fn find<'e>(ex: impl Exec<'e>, account_id: &AccountId) -> sqlx::Result<TokenPolicy> {
    let row: Option<PolicyRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM token_policies WHERE account_id = $1"
    ))
    .bind(account_id)
    .fetch_optional(ex)
    .await?;
    Ok(row.map(TokenPolicy::from).unwrap_or_default())
}

pub async fn save<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    policy: &TokenPolicy,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(&format!(
        "INSERT INTO token_policies (account_id, {COLUMNS}, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (account_id) DO UPDATE SET max_lifetime_days = $2, require_expiry = $3, \
         no_global_user_tokens = $4, automation_needs_allowlist = $5, inactivity_days = $6, \
         updated_at = $7"
    ))
    .bind(account_id)
    .bind(policy.max_lifetime_days)
    .bind(Flag(policy.require_expiry))
    .bind(Flag(policy.no_global_user_tokens))
    .bind(Flag(policy.automation_needs_allowlist))
    .bind(policy.inactivity_days)
    .bind(now)
    .execute(ex)
    .await
    .map(|_| ())
}

/// The accounts with an inactivity window shorter than the default: (account, days).
pub async fn inactivity_windows<'e>(ex: impl Exec<'e>) -> sqlx::Result<Vec<(AccountId, i64)>> {
    sqlx::query_as(
        "SELECT account_id, inactivity_days FROM token_policies \
         WHERE inactivity_days IS NOT NULL ORDER BY account_id",
    )
    .fetch_all(ex)
    .await
}
