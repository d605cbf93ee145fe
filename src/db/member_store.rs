//! Memberships: which users belong to which accounts, with what role and (engineers)
//! which services. Changes that must keep an account's last superuser run after
//! `lock_account`.

use std::collections::HashMap;

use sqlx::{AnyConnection, FromRow};

use super::account_store::Account;
use super::types::Flag;
use super::user_store::{User, USER_COLUMNS};
use super::{Backend, Exec};
use crate::domain::access::ServiceAccess;
use crate::domain::ids::{AccountId, ServiceId, UserId};
use crate::domain::member_rules::Standing;
use crate::domain::roles::{Role, ServicePermission};

/// A user as a member of one account: what every signed-in page works with.
#[derive(Debug, Clone)]
pub struct Member {
    pub user: User,
    pub account: Account,
    pub role: Role,
}

#[derive(FromRow)]
struct MemberRow {
    #[sqlx(flatten)]
    user: User,
    account_id: AccountId,
    account_name: String,
    force_2fa: Flag,
    force_sso: Flag,
    account_created_at: i64,
    role: Role,
}

/// The columns of `MemberRow` after the user's, and the tables they come from.
const MEMBER_COLUMNS: &str = "a.id AS account_id, a.name AS account_name, a.force_2fa, \
     a.force_sso, a.created_at AS account_created_at, m.role";
const MEMBER_TABLES: &str =
    "memberships m JOIN users u ON u.id = m.user_id JOIN accounts a ON a.id = m.account_id";

impl MemberRow {
    fn member(self) -> Member {
        Member {
            user: self.user,
            account: Account {
                id: self.account_id,
                name: self.account_name,
                force_2fa: self.force_2fa,
                force_sso: self.force_sso,
                created_at: self.account_created_at,
            },
            role: self.role,
        }
    }
}

/// The member `user_id` of `account_id`, with their user and account.
pub async fn find<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    user_id: &UserId,
) -> sqlx::Result<Option<Member>> {
    let row: Option<MemberRow> = sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS}, {MEMBER_COLUMNS} FROM {MEMBER_TABLES} \
         WHERE m.account_id = $1 AND m.user_id = $2"
    ))
    .bind(account_id)
    .bind(user_id)
    .fetch_optional(ex)
    .await?;
    Ok(row.map(MemberRow::member))
}

#[derive(FromRow)]
struct MemberAccessRow {
    #[sqlx(flatten)]
    member: MemberRow,
    service_id: Option<ServiceId>,
    permission: Option<ServicePermission>,
}

/// `find` and `service_access` in one statement, for the signed-in check of every page:
/// one row per service an engineer is limited to (one with no service otherwise).
pub async fn find_with_access<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    user_id: &UserId,
) -> sqlx::Result<Option<(Member, ServiceAccess)>> {
    // Only engineers are ever limited, so only their rows are joined (as `service_access`
    // reads only theirs).
    let rows: Vec<MemberAccessRow> = sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS}, {MEMBER_COLUMNS}, sp.service_id, sp.permission \
         FROM {MEMBER_TABLES} LEFT JOIN service_permissions sp \
           ON sp.account_id = m.account_id AND sp.user_id = m.user_id AND m.role = $3 \
         WHERE m.account_id = $1 AND m.user_id = $2 ORDER BY sp.service_id"
    ))
    .bind(account_id)
    .bind(user_id)
    .bind(Role::Engineer)
    .fetch_all(ex)
    .await?;
    let mut limits = Vec::new();
    let mut member = None;
    for row in rows {
        if let (Some(service), Some(permission)) = (row.service_id, row.permission) {
            limits.push((service, permission));
        }
        member.get_or_insert(row.member);
    }
    Ok(member.map(|m| {
        let access = ServiceAccess::of(m.role, limits);
        (m.member(), access)
    }))
}

#[derive(FromRow)]
struct UserRoleRow {
    #[sqlx(flatten)]
    user: User,
    role: Role,
}

/// Every member of an account with their role, by name (the API's user list).
pub async fn users_with_roles<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
) -> sqlx::Result<Vec<(User, Role)>> {
    let rows: Vec<UserRoleRow> = sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS}, m.role FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.account_id = $1 ORDER BY u.name, u.email, u.id"
    ))
    .bind(account_id)
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(|r| (r.user, r.role)).collect())
}

/// A member as the Users page lists them.
#[derive(Debug, Clone, FromRow)]
pub struct MemberSummary {
    pub user_id: UserId,
    pub name: String,
    pub email: String,
    pub role: Role,
    /// When they joined this account.
    pub joined_at: i64,
    /// Whether the user has a password yet (one set through a link may not).
    pub has_password: Flag,
    /// User tokens they hold in this account, active or expired.
    pub user_tokens: i64,
    /// Not a person: the synthetic user that owns imported legacy API keys.
    pub synthetic: Flag,
}

impl MemberSummary {
    /// The member as the account's rules see them.
    pub fn standing(&self) -> Standing {
        Standing {
            role: self.role,
            person: !self.synthetic.get(),
        }
    }
}

const SUMMARY_SELECT: &str = "SELECT u.id AS user_id, u.name, u.email, m.role, m.created_at AS joined_at, \
        CASE WHEN u.password_hash IS NULL THEN 0 ELSE 1 END AS has_password, \
        (SELECT COUNT(*) FROM tokens t WHERE t.account_id = m.account_id AND t.user_id = m.user_id AND t.kind = 'user') AS user_tokens, \
        u.synthetic \
     FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.account_id = $1";

pub async fn summaries<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
) -> sqlx::Result<Vec<MemberSummary>> {
    sqlx::query_as(&format!("{SUMMARY_SELECT} ORDER BY u.name, u.email"))
        .bind(account_id)
        .fetch_all(ex)
        .await
}

pub async fn summary<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    user_id: &UserId,
) -> sqlx::Result<Option<MemberSummary>> {
    sqlx::query_as(&format!("{SUMMARY_SELECT} AND m.user_id = $2"))
        .bind(account_id)
        .bind(user_id)
        .fetch_optional(ex)
        .await
}

/// Serialises changes to an account's members: the first statement of the transaction.
/// PostgreSQL locks the account's row; on SQLite the (no-op) write takes the database
/// write lock before anything is read, so no other writer can slip in between a check
/// and the change it guards. False when there is no such account.
///
/// `FOR NO KEY UPDATE`, not `FOR UPDATE`: it excludes the other member changes just the
/// same, but not the key-share lock a foreign key check takes on the account row. A
/// token being created holds its owner's membership row and then inserts (a key check
/// on the account); with `FOR UPDATE` here, removing that member would wait for the
/// membership while holding the account, and the two would deadlock.
pub async fn lock_account(
    conn: &mut AnyConnection,
    backend: Backend,
    account_id: &AccountId,
) -> sqlx::Result<bool> {
    let found = match backend {
        Backend::Postgres => sqlx::query("SELECT id FROM accounts WHERE id = $1 FOR NO KEY UPDATE")
            .bind(account_id)
            .fetch_optional(&mut *conn)
            .await?
            .is_some(),
        Backend::Sqlite => {
            sqlx::query("UPDATE accounts SET name = name WHERE id = $1")
                .bind(account_id)
                .execute(&mut *conn)
                .await?
                .rows_affected()
                > 0
        }
    };
    Ok(found)
}

pub async fn add<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    user_id: &UserId,
    role: Role,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO memberships (account_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(account_id)
    .bind(user_id)
    .bind(role)
    .bind(now)
    .execute(ex)
    .await
    .map(|_| ())
}

/// A member's role in an account, if they belong to it.
pub async fn role_of<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    user_id: &UserId,
) -> sqlx::Result<Option<Role>> {
    sqlx::query_scalar("SELECT role FROM memberships WHERE account_id = $1 AND user_id = $2")
        .bind(account_id)
        .bind(user_id)
        .fetch_optional(ex)
        .await
}

/// The accounts a user belongs to, (id, name), oldest membership first: the first is
/// the default current account after sign-in.
pub async fn accounts_of<'e>(
    ex: impl Exec<'e>,
    user_id: &UserId,
) -> sqlx::Result<Vec<(AccountId, String)>> {
    sqlx::query_as(
        "SELECT a.id, a.name FROM memberships m JOIN accounts a ON a.id = m.account_id \
         WHERE m.user_id = $1 ORDER BY m.created_at, a.name",
    )
    .bind(user_id)
    .fetch_all(ex)
    .await
}

/// The account's superusers who are people (the synthetic legacy-key user is not).
pub async fn count_superusers<'e>(ex: impl Exec<'e>, account_id: &AccountId) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.account_id = $1 AND m.role = $2 AND u.synthetic = 0",
    )
    .bind(account_id)
    .bind(Role::Superuser)
    .fetch_one(ex)
    .await
}

/// The accounts other than `account_id` the user belongs to.
pub async fn count_other_memberships<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    user_id: &UserId,
) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE user_id = $2 AND account_id <> $1")
        .bind(account_id)
        .bind(user_id)
        .fetch_one(ex)
        .await
}

pub async fn set_role<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    user_id: &UserId,
    role: Role,
) -> sqlx::Result<bool> {
    let done =
        sqlx::query("UPDATE memberships SET role = $3 WHERE account_id = $1 AND user_id = $2")
            .bind(account_id)
            .bind(user_id)
            .bind(role)
            .execute(ex)
            .await?;
    Ok(done.rows_affected() > 0)
}

/// Ends a membership (its service limits go with it).
pub async fn remove<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    user_id: &UserId,
) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM memberships WHERE account_id = $1 AND user_id = $2")
        .bind(account_id)
        .bind(user_id)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn set_service_permission<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    user_id: &UserId,
    service_id: &ServiceId,
    permission: ServicePermission,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO service_permissions (account_id, user_id, service_id, permission) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (account_id, user_id, service_id) DO UPDATE SET permission = excluded.permission",
    )
    .bind(account_id)
    .bind(user_id)
    .bind(service_id)
    .bind(permission)
    .execute(ex)
    .await
    .map(|_| ())
}

/// Removes every service limit of a member: they work on all services again.
pub async fn clear_service_permissions<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    user_id: &UserId,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM service_permissions WHERE account_id = $1 AND user_id = $2")
        .bind(account_id)
        .bind(user_id)
        .execute(ex)
        .await
        .map(|_| ())
}

/// The services a member is limited to, with the permission on each. Empty means the
/// member is not limited (every service of the account).
pub async fn service_permissions<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    user_id: &UserId,
) -> sqlx::Result<Vec<(ServiceId, ServicePermission)>> {
    sqlx::query_as("SELECT service_id, permission FROM service_permissions WHERE account_id = $1 AND user_id = $2 ORDER BY service_id")
        .bind(account_id)
        .bind(user_id)
        .fetch_all(ex)
        .await
}

/// Every member's service limits in an account, in one query (the Users list).
pub async fn service_permissions_in_account<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
) -> sqlx::Result<HashMap<UserId, Vec<(ServiceId, ServicePermission)>>> {
    let rows: Vec<(UserId, ServiceId, ServicePermission)> = sqlx::query_as(
        "SELECT user_id, service_id, permission FROM service_permissions WHERE account_id = $1 ORDER BY service_id",
    )
    .bind(account_id)
    .fetch_all(ex)
    .await?;
    let mut map: HashMap<UserId, Vec<(ServiceId, ServicePermission)>> = HashMap::new();
    for (user, service, permission) in rows {
        map.entry(user).or_default().push((service, permission));
    }
    Ok(map)
}

/// (user id, name, email) of every member, by name: the Owner filter's options.
pub async fn names<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
) -> sqlx::Result<Vec<(UserId, String, String)>> {
    sqlx::query_as(
        "SELECT u.id, u.name, u.email FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.account_id = $1 ORDER BY u.name, u.email",
    )
    .bind(account_id)
    .fetch_all(ex)
    .await
}

pub async fn count<'e>(ex: impl Exec<'e>, account_id: &AccountId) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE account_id = $1")
        .bind(account_id)
        .fetch_one(ex)
        .await
}

/// A member's service access. Only engineers are ever limited, so only their rows are
/// read.
pub async fn service_access<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    user_id: &UserId,
    role: Role,
) -> sqlx::Result<ServiceAccess> {
    if role != Role::Engineer {
        return Ok(ServiceAccess::All);
    }
    let rows = service_permissions(ex, account_id, user_id).await?;
    Ok(ServiceAccess::of(role, rows))
}

/// The member of `account_id` with this (normalised) email: (user id, email). Only
/// members are ever found, so nothing about other accounts' users shows through.
pub async fn find_by_email<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    email: &str,
) -> sqlx::Result<Option<(UserId, String)>> {
    sqlx::query_as(
        "SELECT u.id, u.email FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.account_id = $1 AND u.email = $2",
    )
    .bind(account_id)
    .bind(email)
    .fetch_optional(ex)
    .await
}

/// The email of a member of `account_id`, by user id.
pub async fn email_of<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    user_id: &UserId,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "SELECT u.email FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.account_id = $1 AND m.user_id = $2",
    )
    .bind(account_id)
    .bind(user_id)
    .fetch_optional(ex)
    .await
}
