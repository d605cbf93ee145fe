//! Account tokens: every token of an account, user and automation, a page at a time.
//!
//! Pages are found by keyset, not OFFSET: a page continues after (or before) the sort key
//! and id of the row at its edge, so page 2,000 costs what page 1 costs. Every sort key
//! has an index `(account_id, key, id)` (migration 0003), and the key expressions here
//! must stay exactly those of the indexes for the databases to use them.

use std::collections::HashMap;

use sqlx::any::AnyArguments;
use sqlx::{Arguments, FromRow};

use super::token_store::{still_listed, Token, T_TOKEN_COLUMNS};
use super::{Backend, Exec};
use crate::domain::ids::{AccountId, ServiceId, TokenId, UserId};
use crate::domain::roles::{Scope, ScopeSet};
use crate::domain::secret::TokenKind;

/// Stands in for "never expires" in the expiry sort key: 10000-01-01.
pub const NEVER: i64 = 253_402_300_800;

/// The expiry key of `tokens_account_expires`, written exactly as the index's
/// expression (with `NEVER`) so that queries on it are answered from the index.
pub(super) const EXPIRY_KEY: &str = "COALESCE(expires_at, 253402300800)";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Created,
    LastUsed,
    Expires,
}

impl Sort {
    /// The SQL of the key; identical to the index expression.
    fn key(self) -> &'static str {
        match self {
            Sort::Created => "t.created_at",
            Sort::LastUsed => "COALESCE(last_used_at, 0)",
            Sort::Expires => EXPIRY_KEY,
        }
    }

    /// The key of a row, as the SQL computes it.
    pub fn key_of(self, row: &Row) -> i64 {
        match self {
            Sort::Created => row.token.created_at,
            Sort::LastUsed => row.token.last_used_at.unwrap_or(0),
            Sort::Expires => row.token.expires_at.unwrap_or(NEVER),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    Expired,
}

/// What to list. `name_contains` is matched case-insensitively.
#[derive(Debug, Clone, Default)]
pub struct Filter<'a> {
    pub kind: Option<TokenKind>,
    pub owner: Option<&'a UserId>,
    pub scope: Option<Scope>,
    pub status: Option<Status>,
    pub name_contains: Option<&'a str>,
}

/// Where a page starts: the first page, or after/before the row with this key and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    First,
    After(i64, TokenId),
    Before(i64, TokenId),
}

/// A token of the list, with its owner's name and email (user tokens).
#[derive(Debug, Clone, FromRow)]
pub struct Row {
    #[sqlx(flatten)]
    pub token: Token,
    pub owner_name: Option<String>,
    pub owner_email: Option<String>,
}

/// Every canonical scope string (as `ScopeSet` writes it) that includes `scope`.
fn sets_containing(scope: Scope) -> Vec<String> {
    let others: Vec<Scope> = Scope::ALL.into_iter().filter(|s| *s != scope).collect();
    (0..1u32 << others.len())
        .map(|mask| {
            let mut set = vec![scope];
            set.extend(
                others
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, s)| *s),
            );
            ScopeSet::new(set).to_string()
        })
        .collect()
}

/// A name search that at most this many names (of every account) contain is answered
/// from the SQLite trigram index: the matches are looked up and sorted (a few
/// milliseconds at this count). More, and the page is found faster by walking the sort
/// order and testing names until it is full.
const FEW_NAME_MATCHES: i64 = 1_000;

/// The trigram index needs three characters to look anything up. A NUL would end the
/// FTS5 query early, so such a needle tests every name as before.
fn trigram_searchable(needle: &str) -> bool {
    needle.chars().count() >= 3 && !needle.contains('\0')
}

/// An FTS5 query for names containing `needle`: one quoted phrase, so every character
/// is taken literally (`"` doubled); the trigram tokenizer then matches substrings.
fn fts_phrase(needle: &str) -> String {
    format!("\"{}\"", needle.replace('"', "\"\""))
}

/// How many names (up to `FEW_NAME_MATCHES + 1`) the SQLite trigram index holds as
/// containing `needle`: a superset of the LIKE matches (the index folds case beyond
/// ASCII). The index serves every account, and counting only this account's matches
/// would read all the others' first; counted over all, a needle common elsewhere costs
/// a walk of this account, as without the index, never more.
async fn sqlite_name_candidates<'e>(ex: impl Exec<'e>, needle: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT 1 FROM token_name_trigrams \
         WHERE token_name_trigrams MATCH $1 LIMIT $2)",
    )
    .bind(fts_phrase(needle))
    .bind(FEW_NAME_MATCHES + 1)
    .fetch_one(ex)
    .await
}

/// Escapes LIKE's wildcards; patterns use `ESCAPE '\'`.
fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Builds a statement and its arguments together, numbering the placeholders.
struct Statement<'q> {
    sql: String,
    args: AnyArguments<'q>,
    count: usize,
}

impl<'q> Statement<'q> {
    /// Adds an argument and returns its placeholder.
    fn arg<T>(&mut self, value: T) -> sqlx::Result<String>
    where
        T: 'q + sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any>,
    {
        self.args.add(value).map_err(sqlx::Error::Encode)?;
        self.count += 1;
        Ok(format!("${}", self.count))
    }
}

/// The ids of one page of at most `limit` tokens in display order, and whether tokens
/// lie beyond it in the direction it was read (more after a First/After page, more
/// before a Before page). Load the rows with `rows`.
///
/// Finding the ids first needs only columns the sort indexes hold, so the walk through
/// the account reads index entries alone (SQLite; PostgreSQL where its visibility map
/// allows an index-only scan), and table rows are read for the 50 shown.
///
/// A name search of three characters or more can use the names' trigram index.
/// PostgreSQL chooses between it and the sort index from its statistics; SQLite keeps
/// none, so here the index is asked first how many names match, and a few are looked
/// up from it (`FEW_NAME_MATCHES`). Either way the LIKE below decides, so the rows are
/// the same.
#[allow(clippy::too_many_arguments)]
pub async fn page_ids<'e>(
    ex: impl Exec<'e> + Copy,
    backend: Backend,
    account_id: &AccountId,
    filter: &Filter<'_>,
    sort: Sort,
    descending: bool,
    position: &Position,
    limit: i64,
    now: i64,
) -> sqlx::Result<(Vec<TokenId>, bool)> {
    let mut q = Statement {
        sql: String::new(),
        args: AnyArguments::default(),
        count: 0,
    };
    let from_few_name_matches = match (backend, filter.name_contains) {
        (Backend::Sqlite, Some(needle)) if trigram_searchable(needle) => {
            sqlite_name_candidates(ex, needle).await? <= FEW_NAME_MATCHES
        }
        _ => false,
    };
    let account = q.arg(account_id.clone())?;
    let now_placeholder = q.arg(now)?;
    let listed = still_listed(&now_placeholder);
    q.sql = match filter.name_contains {
        Some(needle) if from_few_name_matches => {
            // CROSS JOIN fixes SQLite's join order: from the index's matches to their
            // tokens, never a walk through the account probing the index per token.
            let phrase = q.arg(fts_phrase(needle))?;
            format!(
                "SELECT t.id FROM token_name_trigrams f \
                 CROSS JOIN token_names n ON n.id = f.rowid \
                 CROSS JOIN tokens t ON t.id = n.token_id \
                 WHERE f.token_name_trigrams MATCH {phrase} AND n.account_id = {account} \
                 AND t.account_id = {account} AND {listed}"
            )
        }
        _ => format!("SELECT t.id FROM tokens t WHERE t.account_id = {account} AND {listed}"),
    };
    if let Some(kind) = filter.kind {
        let p = q.arg(kind)?;
        q.sql.push_str(&format!(" AND t.kind = {p}"));
    }
    if let Some(owner) = filter.owner {
        let p = q.arg(owner.clone())?;
        q.sql.push_str(&format!(" AND t.user_id = {p}"));
    }
    if let Some(scope) = filter.scope {
        // `tokens.scope` holds a ScopeSet's canonical string (`tokens::issue` writes it),
        // so "has this scope" is one of a few exact values: a condition PostgreSQL can
        // estimate from its statistics, unlike a LIKE on a padded string.
        let mut placeholders = Vec::new();
        for value in sets_containing(scope) {
            placeholders.push(q.arg(value)?);
        }
        q.sql
            .push_str(&format!(" AND t.scope IN ({})", placeholders.join(", ")));
    }
    // Sorted by expiry, the status is written on the sort key ("never" is year 10000,
    // in the future) and becomes an index range. Under another sort it is written so
    // that no index matches it: SQLite, without statistics, would otherwise walk the
    // expiry index for the range and sort a third of the account.
    let expiry = if sort == Sort::Expires {
        Sort::Expires.key()
    } else {
        "COALESCE(t.expires_at + 0, 253402300800)"
    };
    match filter.status {
        Some(Status::Active) => {
            let p = q.arg(now)?;
            q.sql.push_str(&format!(" AND {expiry} > {p}"));
        }
        Some(Status::Expired) => {
            let p = q.arg(now)?;
            q.sql.push_str(&format!(" AND {expiry} <= {p}"));
        }
        None => {}
    }
    if let Some(needle) = filter.name_contains {
        // Case-insensitive on both: SQLite's LIKE already ignores (ASCII) case, and is
        // three times faster without LOWER() when a search has to test every token.
        // PostgreSQL answers a needle of three characters or more that few names
        // contain from its trigram index on exactly `LOWER(name)` (migration 0053);
        // SQLite from its own (above), with this LIKE still the judge.
        let (column, needle) = match backend {
            Backend::Sqlite => ("t.name", needle.to_owned()),
            Backend::Postgres => ("LOWER(t.name)", needle.to_lowercase()),
        };
        let p = q.arg(format!("%{}%", like_escape(&needle)))?;
        q.sql
            .push_str(&format!(" AND {column} LIKE {p} ESCAPE '\\'"));
    }
    // Reading "before" a row walks the index the other way; the rows are turned back
    // into display order below.
    let (reverse, cursor) = match position {
        Position::First => (false, None),
        Position::After(key, id) => (false, Some((*key, id))),
        Position::Before(key, id) => (true, Some((*key, id))),
    };
    let walk_descending = descending != reverse;
    // With an owner filter, their index finds the few rows, which are then sorted;
    // `+ 0` keeps both planners from walking the whole account in key order instead
    // (SQLite has no statistics to tell the two plans apart).
    let key = if filter.owner.is_some() {
        format!("({} + 0)", sort.key())
    } else {
        sort.key().to_owned()
    };
    if let Some((value, id)) = cursor {
        // (key, id) beyond the cursor, written so both planners make the first part an
        // index range; only rows tied on the key are then filtered by id.
        let op = if walk_descending { "<" } else { ">" };
        let (a, b, c) = (q.arg(value)?, q.arg(value)?, q.arg(id.clone())?);
        q.sql.push_str(&format!(
            " AND {key} {op}= {a} AND ({key} {op} {b} OR t.id {op} {c})"
        ));
    }
    let dir = if walk_descending { "DESC" } else { "ASC" };
    let p = q.arg(limit + 1)?;
    q.sql
        .push_str(&format!(" ORDER BY {key} {dir}, t.id {dir} LIMIT {p}"));
    // A prepared statement that PostgreSQL reuses gets a generic plan after five runs,
    // planned without the needle: it cannot tell a needle the trigram index answers at
    // once from one that fills the page from the sort index, and walks every token of
    // the account for a rare one (200 ms at 100,000). A search is planned for its own
    // needle instead.
    let plan_per_needle = backend == Backend::Postgres && filter.name_contains.is_some();
    let mut ids: Vec<TokenId> = sqlx::query_scalar_with(&q.sql, q.args)
        .persistent(!plan_per_needle)
        .fetch_all(ex)
        .await?;
    let more = ids.len() as i64 > limit;
    ids.truncate(limit.max(0) as usize);
    if reverse {
        ids.reverse();
    }
    Ok((ids, more))
}

/// The tokens of the account with these ids, with their owners, in the order of `ids`.
pub async fn rows<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    ids: &[TokenId],
) -> sqlx::Result<Vec<Row>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // Looked up by id alone, and rows of other accounts dropped here: with
    // `account_id = ?` in the WHERE, SQLite (which keeps no statistics) prefers an
    // account index to the 50 primary-key lookups and walks every token of the account
    // (20 ms at 100,000 tokens instead of 0.1 ms).
    let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT {T_TOKEN_COLUMNS}, u.name AS owner_name, u.email AS owner_email \
         FROM tokens t LEFT JOIN users u ON u.id = t.user_id \
         WHERE t.id IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query_as::<_, Row>(&sql);
    for id in ids {
        query = query.bind(id);
    }
    let mut found = query.fetch_all(ex).await?;
    found.retain(|row| row.token.account_id == *account_id);
    found.sort_by_key(|row| ids.iter().position(|id| *id == row.token.id));
    Ok(found)
}

/// Service names of the given tokens: token id → [(service id, name)], by name. A token
/// without services has access to all of them.
pub async fn services_of<'e>(
    ex: impl Exec<'e>,
    token_ids: &[TokenId],
) -> sqlx::Result<HashMap<TokenId, Vec<(ServiceId, String)>>> {
    let mut map: HashMap<TokenId, Vec<(ServiceId, String)>> = HashMap::new();
    if token_ids.is_empty() {
        return Ok(map);
    }
    let placeholders: Vec<String> = (1..=token_ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT ts.token_id, s.id, s.name FROM token_services ts JOIN services s ON s.id = ts.service_id \
         WHERE ts.token_id IN ({}) ORDER BY s.name, s.id",
        placeholders.join(", ")
    );
    let mut query = sqlx::query_as::<_, (TokenId, ServiceId, String)>(&sql);
    for id in token_ids {
        query = query.bind(id);
    }
    for (token_id, service_id, name) in query.fetch_all(ex).await? {
        map.entry(token_id).or_default().push((service_id, name));
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_filter_lists_every_set_with_the_scope() {
        let sets = sets_containing(Scope::PurgeAll);
        assert_eq!(sets.len(), 8);
        assert!(sets.contains(&"purge_all".to_owned()));
        assert!(sets.contains(&"global purge_all purge_select global:read".to_owned()));
        assert!(sets
            .iter()
            .all(|s| ScopeSet::parse(s).unwrap().contains(Scope::PurgeAll)));
        assert!(sets
            .iter()
            .all(|s| ScopeSet::parse(s).unwrap().to_string() == *s));
        assert!(!sets_containing(Scope::Global).contains(&"global:read".to_owned()));
    }

    #[test]
    fn only_needles_of_three_characters_have_a_trigram() {
        assert!(!trigram_searchable("ab"));
        assert!(!trigram_searchable("é_"));
        assert!(!trigram_searchable("a\0b"));
        assert!(trigram_searchable("abc"));
        assert!(trigram_searchable("éèê"));
    }

    #[test]
    fn fts_phrases_take_every_character_literally() {
        assert_eq!(fts_phrase("deploy"), "\"deploy\"");
        assert_eq!(fts_phrase("a \"b\" OR c*"), "\"a \"\"b\"\" OR c*\"");
    }

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(like_escape("50%_off\\"), "50\\%\\_off\\\\");
        assert_eq!(like_escape("plain"), "plain");
    }
}
