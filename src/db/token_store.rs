//! API tokens. Only the SHA-256 digest of a token string is stored.

use std::collections::HashMap;

use sqlx::{AnyConnection, FromRow};

use super::types::Flag;
use super::{Backend, Exec};
use crate::domain::access::TokenFacts;
use crate::domain::cidr::Allowlist;
use crate::domain::ids::{AccountId, ServiceId, TokenId, UserId};
use crate::domain::roles::{Role, ScopeSet};
use crate::domain::secret::TokenKind;

#[derive(Debug, Clone, FromRow)]
pub struct Token {
    pub id: TokenId,
    pub account_id: AccountId,
    pub kind: TokenKind,
    /// The owner of a user token; None for automation tokens.
    pub user_id: Option<UserId>,
    pub name: String,
    pub scope: ScopeSet,
    /// An automation token's role; None for user tokens (they carry their owner's).
    pub role: Option<Role>,
    pub tls_access: Flag,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub last_used_ip: Option<String>,
    pub last_used_agent: Option<String>,
    /// What the token is for, as its creator wrote it.
    pub description: Option<String>,
    /// The addresses the token may be used from (None: any).
    pub allowed_cidrs: Option<Allowlist>,
    /// The token this one was rolled from.
    pub rolled_from: Option<TokenId>,
    /// The token that replaced this one by a roll; this one then expires when the
    /// overlap ends.
    pub replaced_by: Option<TokenId>,
}

impl Token {
    /// What the rules about reaching a token look at.
    pub fn facts(&self) -> TokenFacts<'_> {
        TokenFacts {
            kind: self.kind,
            owner: self.user_id.as_ref(),
        }
    }

    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// A token for tests that build rows without a database: a user token of `user`
    /// (an engineer automation token when None) in `account`, named after its id, with
    /// no scopes, expiry, last use or other optional field; tests override what they
    /// need with `Token { field, ..Token::fixture(…) }`.
    #[cfg(any(test, feature = "testkit"))]
    pub fn fixture(id: &str, account: &str, user: Option<&str>) -> Token {
        Token {
            id: TokenId::from_raw(id),
            account_id: AccountId::from_raw(account),
            kind: if user.is_some() {
                TokenKind::User
            } else {
                TokenKind::Automation
            },
            user_id: user.map(UserId::from_raw),
            name: format!("token {id}"),
            scope: ScopeSet::default(),
            role: user.is_none().then_some(Role::Engineer),
            tls_access: Flag(false),
            created_at: 0,
            expires_at: None,
            last_used_at: None,
            last_used_ip: None,
            last_used_agent: None,
            description: None,
            allowed_cidrs: None,
            rolled_from: None,
            replaced_by: None,
        }
    }
}

const TOKEN_COLUMNS: &str = "id, account_id, kind, user_id, name, scope, role, tls_access, \
     created_at, expires_at, last_used_at, last_used_ip, last_used_agent, description, \
     allowed_cidrs, rolled_from, replaced_by";

/// The columns of `Token`, for queries that join tokens to other tables as `t`.
pub(super) const T_TOKEN_COLUMNS: &str = "t.id, t.account_id, t.kind, t.user_id, t.name, \
     t.scope, t.role, t.tls_access, t.created_at, t.expires_at, t.last_used_at, \
     t.last_used_ip, t.last_used_agent, t.description, \
     t.allowed_cidrs, t.rolled_from, t.replaced_by";

/// Everything needed to store a new token. `digest` is the SHA-256 of the secret.
#[derive(Debug)]
pub struct NewToken<'a> {
    pub id: &'a TokenId,
    pub account_id: &'a AccountId,
    pub kind: TokenKind,
    pub user_id: Option<&'a UserId>,
    pub created_by: &'a UserId,
    pub name: &'a str,
    pub scope: &'a ScopeSet,
    pub role: Option<Role>,
    pub tls_access: bool,
    pub digest: &'a str,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub service_ids: &'a [ServiceId],
    pub description: Option<&'a str>,
    pub allowed_cidrs: Option<&'a Allowlist>,
    /// The token this one replaces (a roll): it does not count against the limit.
    pub rolled_from: Option<&'a TokenId>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Created {
    Yes,
    LimitReached,
    /// The owner of a user token is no longer a member of the account (removed while
    /// the request was under way).
    NotMember,
}

/// Stores a token unless its owner already has `limit` active user tokens in the
/// account, or is no longer a member of it. Must run inside a transaction, and first in
/// it: on PostgreSQL the owner's membership row is locked so concurrent creations queue
/// (and a removal of the member waits for them, then counts their tokens); on SQLite the
/// conditional INSERT takes the database write lock before it counts.
pub async fn create(
    conn: &mut AnyConnection,
    backend: Backend,
    token: &NewToken<'_>,
    limit: i64,
) -> sqlx::Result<Created> {
    if let (Backend::Postgres, Some(user_id)) = (backend, token.user_id) {
        sqlx::query(
            "SELECT user_id FROM memberships WHERE account_id = $1 AND user_id = $2 FOR UPDATE",
        )
        .bind(token.account_id)
        .bind(user_id)
        .fetch_optional(&mut *conn)
        .await?;
    }
    // The owner's membership is checked by the INSERT itself, on both backends: a member
    // removed (or deleted) a moment ago must not get a token.
    let inserted = sqlx::query(
        "INSERT INTO tokens (id, account_id, kind, user_id, created_by, name, scope, role, tls_access, secret_digest, created_at, expires_at, description, allowed_cidrs, rolled_from) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $14, $15, $16 \
         WHERE (SELECT COUNT(*) FROM tokens WHERE account_id = $2 AND user_id = $4 AND kind = 'user' \
                AND (expires_at IS NULL OR expires_at > $11) AND ($16 IS NULL OR id <> $16)) < $13 \
           AND ($3 <> 'user' OR EXISTS (SELECT 1 FROM memberships WHERE account_id = $2 AND user_id = $4))",
    )
    .bind(token.id)
    .bind(token.account_id)
    .bind(token.kind)
    .bind(token.user_id)
    .bind(token.created_by)
    .bind(token.name)
    .bind(token.scope)
    .bind(token.role)
    .bind(Flag(token.tls_access))
    .bind(token.digest)
    .bind(token.created_at)
    .bind(token.expires_at)
    .bind(limit)
    .bind(token.description)
    .bind(token.allowed_cidrs)
    .bind(token.rolled_from)
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 0 {
        let member: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM memberships WHERE account_id = $1 AND user_id = $2")
                .bind(token.account_id)
                .bind(token.user_id)
                .fetch_optional(&mut *conn)
                .await?;
        return Ok(if member.is_some() {
            Created::LimitReached
        } else {
            Created::NotMember
        });
    }
    for service_id in token.service_ids {
        sqlx::query("INSERT INTO token_services (token_id, service_id) VALUES ($1, $2)")
            .bind(token.id)
            .bind(service_id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(Created::Yes)
}

/// What every list and every lookup of tokens by id leaves out: a rolled token whose
/// overlap is over. Its row only waits for the hourly housekeeping
/// (`delete_rolled_over`), and a list or page that showed it, or counted it, would show
/// a token that no longer works. `now` is the placeholder of the current time; the
/// columns are those of `tokens` (the only table, or `t`'s unambiguous columns, in
/// every such query). The one place the rule is written.
pub(super) fn still_listed(now: &str) -> String {
    format!("(replaced_by IS NULL OR expires_at > {now})")
}

/// A user's own user tokens in one account that lists show, newest first.
pub async fn owned_by<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    user_id: &UserId,
    now: i64,
) -> sqlx::Result<Vec<Token>> {
    sqlx::query_as(&format!(
        "SELECT {TOKEN_COLUMNS} FROM tokens WHERE account_id = $1 AND user_id = $2 AND kind = 'user' \
         AND {} ORDER BY created_at DESC, id",
        still_listed("$3")
    ))
    .bind(account_id)
    .bind(user_id)
    .bind(now)
    .fetch_all(ex)
    .await
}

/// A user's own token as the Personal tokens list prints it: the columns it shows, and
/// the names of the token's services read with it.
#[derive(Debug, Clone, FromRow)]
pub struct ListedToken {
    pub id: TokenId,
    pub name: String,
    pub scope: ScopeSet,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub description: Option<String>,
    pub allowed_cidrs: Option<Allowlist>,
    pub rolled_from: Option<TokenId>,
    pub replaced_by: Option<TokenId>,
    /// The token's services by name, in name order, joined by ", "; None when it has
    /// none (every service of the account).
    pub services: Option<String>,
}

impl ListedToken {
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// What `owned_by` and `services_of_owned` give, as the Personal tokens list prints it,
/// in one statement: the page's tokens and their services cost one round trip, and only
/// the columns it shows are read. The services are joined and grouped rather than read
/// by a subquery per token, which PostgreSQL ran at twice the cost. (`string_agg` with
/// `ORDER BY`: PostgreSQL, and SQLite from 3.44, which sqlx bundles. Grouping by the
/// primary key lets PostgreSQL take the token's other columns as they are.)
pub async fn listed_owned<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    user_id: &UserId,
    now: i64,
) -> sqlx::Result<Vec<ListedToken>> {
    // `still_listed`'s columns are the token's: the joined tables have none so named.
    sqlx::query_as(&format!(
        "SELECT t.id, t.name, t.scope, t.created_at, t.expires_at, t.last_used_at, \
                t.description, t.allowed_cidrs, t.rolled_from, t.replaced_by, \
                string_agg(s.name, ', ' ORDER BY s.name) AS services \
         FROM tokens t LEFT JOIN token_services ts ON ts.token_id = t.id \
         LEFT JOIN services s ON s.id = ts.service_id \
         WHERE t.account_id = $1 AND t.user_id = $2 AND t.kind = 'user' AND {} \
         GROUP BY t.id ORDER BY t.created_at DESC, t.id",
        still_listed("$3")
    ))
    .bind(account_id)
    .bind(user_id)
    .bind(now)
    .fetch_all(ex)
    .await
}

/// One of a user's own user tokens, unless it is a rolled token past its overlap.
pub async fn find_owned<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    user_id: &UserId,
    id: &TokenId,
    now: i64,
) -> sqlx::Result<Option<Token>> {
    sqlx::query_as(&format!(
        "SELECT {TOKEN_COLUMNS} FROM tokens WHERE account_id = $1 AND user_id = $2 AND id = $3 \
         AND kind = 'user' AND {}",
        still_listed("$4")
    ))
    .bind(account_id)
    .bind(user_id)
    .bind(id)
    .bind(now)
    .fetch_optional(ex)
    .await
}

/// Deletes a user's own token; the name of the deleted token, or None when there was
/// no such token of theirs.
pub async fn delete_owned<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    user_id: &UserId,
    id: &TokenId,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "DELETE FROM tokens WHERE account_id = $1 AND user_id = $2 AND id = $3 AND kind = 'user' RETURNING name",
    )
    .bind(account_id)
    .bind(user_id)
    .bind(id)
    .fetch_optional(ex)
    .await
}

/// Service names per token for a user's own tokens: token id → [(service id, name)].
pub async fn services_of_owned<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    user_id: &UserId,
) -> sqlx::Result<HashMap<TokenId, Vec<(ServiceId, String)>>> {
    let rows: Vec<(TokenId, ServiceId, String)> = sqlx::query_as(
        "SELECT ts.token_id, s.id, s.name FROM token_services ts \
         JOIN tokens t ON t.id = ts.token_id JOIN services s ON s.id = ts.service_id \
         WHERE t.account_id = $1 AND t.user_id = $2 AND t.kind = 'user' ORDER BY s.name",
    )
    .bind(account_id)
    .bind(user_id)
    .fetch_all(ex)
    .await?;
    let mut map: HashMap<TokenId, Vec<(ServiceId, String)>> = HashMap::new();
    for (token_id, service_id, name) in rows {
        map.entry(token_id).or_default().push((service_id, name));
    }
    Ok(map)
}

/// What the two-year sweep removed, for its events.
#[derive(Debug, FromRow)]
pub struct Swept {
    pub id: TokenId,
    pub account_id: AccountId,
    pub name: String,
    pub user_id: Option<UserId>,
    pub last_used_at: Option<i64>,
}

/// Deletes the tokens whose last use (or creation, when never used) is before `cutoff`.
pub async fn delete_unused_before<'e>(ex: impl Exec<'e>, cutoff: i64) -> sqlx::Result<Vec<Swept>> {
    sqlx::query_as(
        "DELETE FROM tokens WHERE COALESCE(last_used_at, created_at) < $1 \
         RETURNING id, account_id, name, user_id, last_used_at",
    )
    .bind(cutoff)
    .fetch_all(ex)
    .await
}

/// Deletes an account's tokens whose last use (or creation) is before `cutoff`.
pub async fn delete_unused_in_account_before<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    cutoff: i64,
) -> sqlx::Result<Vec<Swept>> {
    sqlx::query_as(
        "DELETE FROM tokens WHERE account_id = $1 AND COALESCE(last_used_at, created_at) < $2 \
         RETURNING id, account_id, name, user_id, last_used_at",
    )
    .bind(account_id)
    .bind(cutoff)
    .fetch_all(ex)
    .await
}

pub async fn digest_exists<'e>(ex: impl Exec<'e>, digest: &str) -> sqlx::Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tokens WHERE secret_digest = $1")
        .bind(digest)
        .fetch_one(ex)
        .await?;
    Ok(n > 0)
}

/// A presented token as authentication needs it: the token, the owner's role in the
/// token's account (user tokens) and whether the owner is locked, and its services.
#[derive(Debug, Clone)]
pub struct Presented {
    pub token: Token,
    pub sudo_until: Option<i64>,
    /// The owner's role in the account; None for automation tokens, or when the owner
    /// no longer belongs to the account.
    pub member_role: Option<Role>,
    pub owner_locked: bool,
    /// Empty: all services.
    pub services: Vec<ServiceId>,
}

impl Presented {
    /// `token` as authentication would present it, for tests that build it without a
    /// database: a user token's owner a member with the user role and not locked, no
    /// sudo, every service; tests override what they need.
    #[cfg(any(test, feature = "testkit"))]
    pub fn fixture(token: Token) -> Presented {
        Presented {
            member_role: token.user_id.as_ref().map(|_| Role::User),
            token,
            sudo_until: None,
            owner_locked: false,
            services: Vec::new(),
        }
    }
}

#[derive(FromRow)]
struct PresentedRow {
    #[sqlx(flatten)]
    token: Token,
    sudo_until: Option<i64>,
    member_role: Option<Role>,
    owner_locked: Option<Flag>,
    service_id: Option<ServiceId>,
}

/// Looks a token up by the digest of its secret: one indexed query that also brings
/// the owner's membership and the token's services (one row per service).
pub async fn authenticate<'e>(ex: impl Exec<'e>, digest: &str) -> sqlx::Result<Option<Presented>> {
    let rows: Vec<PresentedRow> = sqlx::query_as(&format!(
        "SELECT {T_TOKEN_COLUMNS}, t.sudo_until, \
                m.role AS member_role, u.locked AS owner_locked, ts.service_id \
         FROM tokens t \
         LEFT JOIN memberships m ON m.account_id = t.account_id AND m.user_id = t.user_id \
         LEFT JOIN users u ON u.id = t.user_id \
         LEFT JOIN token_services ts ON ts.token_id = t.id \
         WHERE t.secret_digest = $1 ORDER BY ts.service_id"
    ))
    .bind(digest)
    .fetch_all(ex)
    .await?;
    let mut rows = rows.into_iter();
    let Some(first) = rows.next() else {
        return Ok(None);
    };
    let mut services: Vec<ServiceId> = first.service_id.into_iter().collect();
    services.extend(rows.filter_map(|r| r.service_id));
    Ok(Some(Presented {
        token: first.token,
        sudo_until: first.sudo_until,
        member_role: first.member_role,
        owner_locked: first.owner_locked.is_some_and(Flag::get),
        services,
    }))
}

/// One token of an account, any kind, unless it is a rolled token past its overlap.
pub async fn find_in_account<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    id: &TokenId,
    now: i64,
) -> sqlx::Result<Option<Token>> {
    sqlx::query_as(&format!(
        "SELECT {TOKEN_COLUMNS} FROM tokens WHERE account_id = $1 AND id = $2 AND {}",
        still_listed("$3")
    ))
    .bind(account_id)
    .bind(id)
    .bind(now)
    .fetch_optional(ex)
    .await
}

/// An account's tokens that lists show, newest first; only those of `kind` when given.
pub async fn in_account<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    kind: Option<TokenKind>,
    now: i64,
) -> sqlx::Result<Vec<Token>> {
    sqlx::query_as(&format!(
        "SELECT {TOKEN_COLUMNS} FROM tokens WHERE account_id = $1 AND ($2 IS NULL OR kind = $2) \
         AND {} ORDER BY created_at DESC, id",
        still_listed("$3")
    ))
    .bind(account_id)
    .bind(kind)
    .bind(now)
    .fetch_all(ex)
    .await
}

/// One page of an account's tokens that lists show, newest first, and how many there
/// are in all (so every page is full).
pub async fn page_in_account(
    conn: &mut AnyConnection,
    account_id: &AccountId,
    limit: i64,
    offset: i64,
    now: i64,
) -> sqlx::Result<(Vec<Token>, i64)> {
    let listed = still_listed("$2");
    let total: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM tokens WHERE account_id = $1 AND {listed}"
    ))
    .bind(account_id)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    let page = sqlx::query_as(&format!(
        "SELECT {TOKEN_COLUMNS} FROM tokens WHERE account_id = $1 AND {listed} \
         ORDER BY created_at DESC, id LIMIT $3 OFFSET $4"
    ))
    .bind(account_id)
    .bind(now)
    .bind(limit)
    .bind(offset)
    .fetch_all(&mut *conn)
    .await?;
    Ok((page, total))
}

/// Service ids of the given tokens (a token without any has access to all).
pub async fn services_of_tokens<'e>(
    ex: impl Exec<'e>,
    token_ids: &[TokenId],
) -> sqlx::Result<HashMap<TokenId, Vec<ServiceId>>> {
    let mut map: HashMap<TokenId, Vec<ServiceId>> = HashMap::new();
    if token_ids.is_empty() {
        return Ok(map);
    }
    let placeholders: Vec<String> = (1..=token_ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT token_id, service_id FROM token_services WHERE token_id IN ({}) ORDER BY service_id",
        placeholders.join(", ")
    );
    let mut query = sqlx::query_as::<_, (TokenId, ServiceId)>(&sql);
    for id in token_ids {
        query = query.bind(id);
    }
    for (token_id, service_id) in query.fetch_all(ex).await? {
        map.entry(token_id).or_default().push(service_id);
    }
    Ok(map)
}

/// Service ids per token, for every token of an account that is limited to some.
pub async fn services_in_account<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
) -> sqlx::Result<HashMap<TokenId, Vec<ServiceId>>> {
    let rows: Vec<(TokenId, ServiceId)> = sqlx::query_as(
        "SELECT ts.token_id, ts.service_id FROM token_services ts JOIN tokens t ON t.id = ts.token_id \
         WHERE t.account_id = $1 ORDER BY ts.service_id",
    )
    .bind(account_id)
    .fetch_all(ex)
    .await?;
    let mut map: HashMap<TokenId, Vec<ServiceId>> = HashMap::new();
    for (token_id, service_id) in rows {
        map.entry(token_id).or_default().push(service_id);
    }
    Ok(map)
}

/// The service ids of one token (empty: all services).
pub async fn services_of<'e>(
    ex: impl Exec<'e>,
    token_id: &TokenId,
) -> sqlx::Result<Vec<ServiceId>> {
    sqlx::query_scalar(
        "SELECT service_id FROM token_services WHERE token_id = $1 ORDER BY service_id",
    )
    .bind(token_id)
    .fetch_all(ex)
    .await
}

/// Which tokens a deletion may touch.
#[derive(Debug, Clone, Copy)]
pub struct DeleteScope<'a> {
    pub account_id: &'a AccountId,
    /// Only this user's user tokens (None: any token of the account).
    pub owner: Option<&'a UserId>,
    /// Only tokens of this kind.
    pub kind: Option<TokenKind>,
}

/// What a deletion removed, for its event.
#[derive(Debug, FromRow)]
pub struct Deleted {
    pub name: String,
    pub kind: TokenKind,
    pub user_id: Option<UserId>,
}

/// Deletes one token within `scope`; what it was, or None when there is no such token
/// there.
pub async fn delete_scoped<'e>(
    ex: impl Exec<'e>,
    scope: &DeleteScope<'_>,
    id: &TokenId,
) -> sqlx::Result<Option<Deleted>> {
    sqlx::query_as(
        "DELETE FROM tokens WHERE id = $1 AND account_id = $2 \
         AND ($3 IS NULL OR (user_id = $3 AND kind = 'user')) AND ($4 IS NULL OR kind = $4) \
         RETURNING name, kind, user_id",
    )
    .bind(id)
    .bind(scope.account_id)
    .bind(scope.owner)
    .bind(scope.kind)
    .fetch_optional(ex)
    .await
}

/// The account's tokens that may break a token policy with these rules, newest first,
/// at most `limit`: a superset `domain::token_policy::violations` narrows down.
pub async fn policy_candidates<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    policy: &crate::domain::token_policy::TokenPolicy,
    limit: i64,
) -> sqlx::Result<Vec<Token>> {
    sqlx::query_as(&format!(
        "SELECT {TOKEN_COLUMNS} FROM tokens WHERE account_id = $1 AND ( \
           ($2 = 1 AND expires_at IS NULL) \
           OR ($3 > 0 AND (expires_at IS NULL OR expires_at > created_at + $3 * 86400)) \
           OR ($4 = 1 AND kind = 'user' AND (' ' || scope || ' ') LIKE '% global %') \
           OR ($5 = 1 AND kind = 'automation' AND allowed_cidrs IS NULL)) \
           AND replaced_by IS NULL \
         ORDER BY created_at DESC, id LIMIT $6"
    ))
    .bind(account_id)
    .bind(i64::from(policy.require_expiry))
    .bind(policy.max_lifetime_days.unwrap_or(0))
    .bind(i64::from(policy.no_global_user_tokens))
    .bind(i64::from(policy.automation_needs_allowlist))
    .bind(limit)
    .fetch_all(ex)
    .await
}

/// Puts a token in sudo mode until `until`.
pub async fn set_sudo<'e>(ex: impl Exec<'e>, id: &TokenId, until: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE tokens SET sudo_until = $1 WHERE id = $2")
        .bind(until)
        .bind(id)
        .execute(ex)
        .await
        .map(|_| ())
}

/// A token's latest use, as [`record_uses`] writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenUse<'a> {
    pub id: &'a str,
    pub at: i64,
    pub ip: &'a str,
    pub agent: Option<&'a str>,
}

/// Rows an UPDATE of [`record_uses`] carries, largest first: a batch is written in
/// statements of these sizes, so a connection prepares three statements at most (its
/// statement cache keeps them) however many uses a flush holds. A hundred rows a
/// statement take PostgreSQL's round trips out of the cost (`benches/token_uses.rs`);
/// SQLite's cost is its index pages, whatever the statement.
const USES_PER_STATEMENT: [usize; 3] = [100, 10, 1];

/// Records when, from where and by what tokens were last used, up to a hundred to a
/// statement. Never moves a time backwards (another node may have written a
/// later use). `uses` must name each token once: a statement that names one twice
/// writes either of the two.
pub async fn record_uses(conn: &mut AnyConnection, uses: &[TokenUse<'_>]) -> sqlx::Result<()> {
    let statements = uses_statements();
    let mut rest = uses;
    while let Some(size) = USES_PER_STATEMENT
        .iter()
        .position(|&rows| rows <= rest.len())
    {
        let (batch, after) = rest.split_at(USES_PER_STATEMENT[size]);
        let mut query = sqlx::query(&statements[size]);
        for used in batch {
            query = query
                .bind(used.id)
                .bind(used.at)
                .bind(used.ip)
                .bind(used.agent);
        }
        query.execute(&mut *conn).await?;
        rest = after;
    }
    Ok(())
}

/// The UPDATE of each size of [`USES_PER_STATEMENT`]: `VALUES` rows joined to the
/// tokens they name (both databases call a `VALUES` list's columns column1, column2, …).
fn uses_statements() -> &'static [String] {
    static STATEMENTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    STATEMENTS.get_or_init(|| {
        USES_PER_STATEMENT
            .into_iter()
            .map(|rows| {
                let values: Vec<String> = (0..rows)
                    .map(|row| {
                        let n = row * 4;
                        format!("(${}, ${}, ${}, ${})", n + 1, n + 2, n + 3, n + 4)
                    })
                    .collect();
                format!(
                    "UPDATE tokens SET last_used_at = used.column2, last_used_ip = used.column3, \
                     last_used_agent = used.column4 \
                     FROM (VALUES {}) AS used \
                     WHERE tokens.id = used.column1 \
                     AND (tokens.last_used_at IS NULL OR tokens.last_used_at <= used.column2)",
                    values.join(", ")
                )
            })
            .collect()
    })
}

pub async fn find_by_id<'e>(ex: impl Exec<'e>, id: &TokenId) -> sqlx::Result<Option<Token>> {
    sqlx::query_as(&format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = $1"))
        .bind(id)
        .fetch_optional(ex)
        .await
}

/// All user tokens (active or expired) a user holds in an account.
pub async fn count_owned<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    user_id: &UserId,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM tokens WHERE account_id = $1 AND user_id = $2 AND kind = 'user'",
    )
    .bind(account_id)
    .bind(user_id)
    .fetch_one(ex)
    .await
}

/// Records that a call from outside the token's allowlist was refused, unless one was
/// recorded in the minute before `now`; whether this call is the one to record (one
/// conditional UPDATE, so several nodes record it once).
pub async fn note_address_refused<'e>(
    ex: impl Exec<'e>,
    id: &TokenId,
    now: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE tokens SET address_refused_at = $1 WHERE id = $2 \
         AND (address_refused_at IS NULL OR address_refused_at <= $3)",
    )
    .bind(now)
    .bind(id)
    .bind(now - 60)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The token's creator as stored (the owner of a user token; whoever made an
/// automation token).
pub async fn created_by<'e>(ex: impl Exec<'e>, id: &TokenId) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar::<_, Option<String>>("SELECT created_by FROM tokens WHERE id = $1")
        .bind(id)
        .fetch_optional(ex)
        .await
        .map(Option::flatten)
}

/// The rolled token, as it was retired.
#[derive(Debug, FromRow)]
pub struct Retired {
    pub secret_digest: String,
    pub name: String,
    pub user_id: Option<UserId>,
}

/// Marks `old` as replaced by `new` and makes it expire at `overlap_end` (or its own
/// earlier expiry). Only a live token that was never rolled is retired: None otherwise
/// (two rolls of one token race here, and one of them finds nothing).
pub async fn retire<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    old: &TokenId,
    new: &TokenId,
    overlap_end: i64,
    now: i64,
) -> sqlx::Result<Option<Retired>> {
    sqlx::query_as(
        "UPDATE tokens SET replaced_by = $1, \
                expires_at = CASE WHEN expires_at IS NOT NULL AND expires_at < $2 THEN expires_at ELSE $2 END \
         WHERE id = $3 AND account_id = $4 AND replaced_by IS NULL \
           AND (expires_at IS NULL OR expires_at > $5) \
         RETURNING secret_digest, name, user_id",
    )
    .bind(new)
    .bind(overlap_end)
    .bind(old)
    .bind(account_id)
    .bind(now)
    .fetch_optional(ex)
    .await
}

/// Deletes one token by id (a roll without overlap); whether it was there.
pub async fn delete_by_id<'e>(ex: impl Exec<'e>, id: &TokenId) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM tokens WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// A rolled secret to remember after its token is gone.
#[derive(Debug)]
pub struct RetiredSecret<'a> {
    pub digest: &'a str,
    pub token_id: &'a TokenId,
    pub account_id: &'a AccountId,
    pub user_id: Option<&'a UserId>,
    pub name: &'a str,
    pub replaced_by: &'a TokenId,
    pub retired_at: i64,
}

pub async fn remember_retired<'e>(
    ex: impl Exec<'e>,
    secret: &RetiredSecret<'_>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO retired_secrets (secret_digest, token_id, account_id, user_id, name, replaced_by, retired_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(secret.digest)
    .bind(secret.token_id)
    .bind(secret.account_id)
    .bind(secret.user_id)
    .bind(secret.name)
    .bind(secret.replaced_by)
    .bind(secret.retired_at)
    .execute(ex)
    .await
    .map(|_| ())
}

/// A rolled secret presented after its overlap.
#[derive(Debug, Clone, FromRow)]
pub struct RetiredUse {
    pub token_id: TokenId,
    pub account_id: AccountId,
    pub user_id: Option<UserId>,
    pub name: String,
    pub replaced_by: TokenId,
    pub retired_at: i64,
}

/// The rolled secret with this digest whose overlap ended by `now`, if any.
pub async fn find_retired<'e>(
    ex: impl Exec<'e>,
    digest: &str,
    now: i64,
) -> sqlx::Result<Option<RetiredUse>> {
    sqlx::query_as(
        "SELECT token_id, account_id, user_id, name, replaced_by, retired_at FROM retired_secrets \
         WHERE secret_digest = $1 AND retired_at <= $2",
    )
    .bind(digest)
    .bind(now)
    .fetch_optional(ex)
    .await
}

/// Notes a use of a retired secret unless one was noted in the minute before `now`;
/// whether this use is the one to record.
pub async fn note_retired_use<'e>(ex: impl Exec<'e>, digest: &str, now: i64) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE retired_secrets SET noted_at = $1 WHERE secret_digest = $2 \
         AND (noted_at IS NULL OR noted_at <= $3)",
    )
    .bind(now)
    .bind(digest)
    .bind(now - 60)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes rolled tokens whose overlap ended by `now`.
pub async fn delete_rolled_over<'e>(ex: impl Exec<'e>, now: i64) -> sqlx::Result<Vec<Swept>> {
    sqlx::query_as(
        "DELETE FROM tokens WHERE replaced_by IS NOT NULL AND expires_at <= $1 \
         RETURNING id, account_id, name, user_id, last_used_at",
    )
    .bind(now)
    .fetch_all(ex)
    .await
}

/// Deletes one user's rolled tokens whose overlap ended by `now` (before counting
/// what they hold).
pub async fn delete_rolled_over_of<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    user_id: &UserId,
    now: i64,
) -> sqlx::Result<u64> {
    sqlx::query(
        "DELETE FROM tokens WHERE account_id = $1 AND user_id = $2 AND kind = 'user' \
         AND replaced_by IS NOT NULL AND expires_at <= $3",
    )
    .bind(account_id)
    .bind(user_id)
    .bind(now)
    .execute(ex)
    .await
    .map(|r| r.rows_affected())
}

/// Forgets rolled secrets retired before `cutoff`.
pub async fn forget_retired_before<'e>(ex: impl Exec<'e>, cutoff: i64) -> sqlx::Result<u64> {
    sqlx::query("DELETE FROM retired_secrets WHERE retired_at < $1")
        .bind(cutoff)
        .execute(ex)
        .await
        .map(|r| r.rows_affected())
}

/// Unexpired tokens per kind (`user`, `automation`), for the metrics.
pub async fn count_by_kind<'e>(ex: impl Exec<'e>, now: i64) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "SELECT kind, COUNT(*) FROM tokens WHERE expires_at IS NULL OR expires_at > $1 \
         GROUP BY kind ORDER BY kind",
    )
    .bind(now)
    .fetch_all(ex)
    .await
}
