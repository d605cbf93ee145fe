//! Exposed (leaked and revoked) tokens, and the notices members see on their next page
//! views.

use sqlx::FromRow;

use super::account_token_list::EXPIRY_KEY;
use super::Exec;
use crate::domain::ids::{AccountId, TokenId, UserId};
use crate::domain::secret::TokenKind;

/// A live token found by the digest of a reported string.
#[derive(Debug, Clone, FromRow)]
pub struct Found {
    pub id: TokenId,
    pub account_id: AccountId,
    pub kind: TokenKind,
    pub user_id: Option<UserId>,
    pub name: String,
    pub created_at: i64,
    pub owner_name: Option<String>,
}

/// The tokens whose secret digests are among `digests` (at most a few hundred at once).
pub async fn find_by_digests<'e>(
    ex: impl Exec<'e>,
    digests: &[String],
) -> sqlx::Result<Vec<Found>> {
    if digests.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (1..=digests.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT t.id, t.account_id, t.kind, t.user_id, t.name, t.created_at, u.name AS owner_name \
         FROM tokens t LEFT JOIN users u ON u.id = t.user_id \
         WHERE t.secret_digest IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query_as::<_, Found>(&sql);
    for digest in digests {
        query = query.bind(digest);
    }
    query.fetch_all(ex).await
}

pub async fn record<'e>(
    ex: impl Exec<'e>,
    token: &Found,
    source_url: Option<&str>,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO exposed_tokens (id, account_id, kind, user_id, name, source_url, created_at, reported_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&token.id)
    .bind(&token.account_id)
    .bind(token.kind)
    .bind(&token.user_id)
    .bind(&token.name)
    .bind(source_url)
    .bind(token.created_at)
    .bind(now)
    .execute(ex)
    .await
    .map(|_| ())
}

/// One exposed token, as the Exposed tokens page lists it.
#[derive(Debug, FromRow)]
pub struct Exposed {
    pub kind: TokenKind,
    pub name: String,
    pub owner_name: Option<String>,
    pub source_url: Option<String>,
    pub reported_at: i64,
}

/// The account's exposed tokens, newest report first: all of them, or only `owner`'s.
pub async fn list<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    owner: Option<&UserId>,
    limit: i64,
) -> sqlx::Result<Vec<Exposed>> {
    sqlx::query_as(
        "SELECT e.kind, e.name, u.name AS owner_name, e.source_url, e.reported_at \
         FROM exposed_tokens e LEFT JOIN users u ON u.id = e.user_id \
         WHERE e.account_id = $1 AND ($2 IS NULL OR (e.user_id = $2 AND e.kind = 'user')) \
         ORDER BY e.reported_at DESC, e.id LIMIT $3",
    )
    .bind(account_id)
    .bind(owner)
    .bind(limit)
    .fetch_all(ex)
    .await
}

pub async fn add_notice<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    user_id: &UserId,
    message: &str,
    link: Option<&str>,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO notices (id, account_id, user_id, message, link, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(crate::domain::random::id())
    .bind(account_id)
    .bind(user_id)
    .bind(message)
    .bind(link)
    .bind(now)
    .execute(ex)
    .await
    .map(|_| ())
}

/// One line of what a page view shows above the page: a token expiring soon
/// (`source` "expiring": `text` its name, `detail` its kind, `at` its expiry) or a
/// notice (`source` "notice": `text` the message, `detail` its id, `at` its time).
#[derive(Debug, Clone, FromRow)]
pub struct Alert {
    pub source: String,
    pub text: String,
    pub detail: String,
    pub link: Option<String>,
    pub at: i64,
}

/// Everything a member's page view shows above the page, in one query: their tokens
/// expiring in `(now, until]` (own user tokens; for a superuser, `with_automation`, also
/// the account's automation tokens), soonest first, at most `tokens`, then their
/// notices, oldest first, at most `notices` (`notices_member`).
///
/// Own tokens and automation tokens are found apart, each from its index: the owner's
/// tokens from `tokens_owner` (a member holds a few), the automation tokens by a range
/// of `tokens_account_expires`, whose key is written exactly as the index's
/// (`EXPIRY_KEY`; `kind` is in the index too). One condition for both, with an OR on the owner, matches neither
/// index, and walked every token of the account on each page view: 300 ms at 100,000
/// tokens on SQLite.
#[allow(clippy::too_many_arguments)]
pub async fn page_alerts<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    user_id: &UserId,
    with_automation: bool,
    now: i64,
    until: i64,
    tokens: i64,
    notices: i64,
) -> sqlx::Result<Vec<Alert>> {
    sqlx::query_as(&format!(
        "SELECT source, text, detail, link, at FROM ( \
           SELECT source, text, detail, link, at, id FROM ( \
             SELECT 'expiring' AS source, name AS text, kind AS detail, \
                    CAST(NULL AS TEXT) AS link, expires_at AS at, id FROM tokens \
             WHERE account_id = $1 AND user_id = $2 AND kind = 'user' \
               AND expires_at > $3 AND expires_at <= $4 AND replaced_by IS NULL \
             ORDER BY expires_at, id LIMIT $6) own \
           UNION ALL \
           SELECT source, text, detail, link, at, id FROM ( \
             SELECT 'expiring' AS source, name AS text, kind AS detail, \
                    CAST(NULL AS TEXT) AS link, expires_at AS at, id FROM tokens \
             WHERE $5 = 1 AND account_id = $1 AND kind = 'automation' \
               AND {EXPIRY_KEY} > $3 AND {EXPIRY_KEY} <= $4 AND replaced_by IS NULL \
             ORDER BY {EXPIRY_KEY}, id LIMIT $6) automation \
           ORDER BY at, id LIMIT $6) e \
         UNION ALL \
         SELECT source, text, detail, link, at FROM ( \
           SELECT 'notice' AS source, message AS text, id AS detail, link, created_at AS at \
           FROM notices WHERE account_id = $1 AND user_id = $2 \
           ORDER BY created_at, id LIMIT $7) n",
    ))
    .bind(account_id)
    .bind(user_id)
    .bind(now)
    .bind(until)
    .bind(i64::from(with_automation))
    .bind(tokens)
    .bind(notices)
    .fetch_all(ex)
    .await
}

/// Dismisses one of the member's notices; whether it was theirs.
pub async fn dismiss<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    user_id: &UserId,
    id: &str,
) -> sqlx::Result<bool> {
    sqlx::query("DELETE FROM notices WHERE account_id = $1 AND user_id = $2 AND id = $3")
        .bind(account_id)
        .bind(user_id)
        .bind(id)
        .execute(ex)
        .await
        .map(|r| r.rows_affected() > 0)
}

/// The account's superusers who can sign in (not the synthetic legacy-key user).
pub async fn superusers_of<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
) -> sqlx::Result<Vec<UserId>> {
    sqlx::query_scalar(
        "SELECT m.user_id FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.account_id = $1 AND m.role = 'superuser' AND u.password_hash IS NOT NULL \
         ORDER BY m.user_id",
    )
    .bind(account_id)
    .fetch_all(ex)
    .await
}
