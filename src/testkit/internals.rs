//! Everything the kit takes from the rest of the crate, in this one file. When the
//! crate's insides move (modules, ids, visibility), this is the file to adapt: the kit's
//! other files, the tests, the benchmarks and the examples only see what it offers.

use std::net::SocketAddr;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use sqlx::AnyPool;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::app::Server;
use crate::clock::Clock;
use crate::config::Config;
use crate::db::event_store::{self, NewEvent};
use crate::db::{member_store, user_store, Backend};
use crate::domain::access::{self, EventFacts};
use crate::domain::ids::{AccountId, ServiceId, TokenId, UserId};
use crate::domain::password::Password;
use crate::domain::{crypto, random, secret, totp};
use crate::ops::token_cache::{self, Change};
use crate::ops::{first_run, membership, service_catalog, token_lifecycle};
use crate::state::AppState;

use super::{EventSpec, TokenSpec};

pub use crate::domain::roles::{Role, Scope, ScopeSet, ServicePermission};
pub use crate::domain::secret::TokenKind;
pub use crate::domain::token_policy::TokenPolicy;
pub use crate::ops::token_lifecycle::{ImportError, IssueError};

/// The application state of one running server: the kit passes it around opaquely.
pub type State = AppState;

/// The name of the session cookie the panel sets.
pub const SESSION_COOKIE: &str = crate::web::SESSION_COOKIE;

/// The length of a TOTP step, in seconds.
pub const TOTP_STEP: i64 = totp::STEP_SECONDS;

/// The TOTP code of `secret` (base32) at Unix time `unix`.
pub fn totp_code(secret: &str, unix: i64) -> Option<String> {
    totp::code_at(secret, unix)
}

/// A date as the pages write it (`2026-11-28`).
pub fn page_date(unix: i64) -> String {
    crate::web::page::date(unix)
}

/// A moment as the pages write it exactly (`2026-11-28 14:05 UTC`): the tooltip of
/// their relative times.
pub fn page_date_time(unix: i64) -> String {
    crate::web::page::date_time(unix)
}

/// The digest stored for a token string.
pub fn digest(key: &str) -> String {
    secret::digest(key)
}

/// Whether a string has the shape of a token the panel issues (prefix, body, checksum).
pub fn is_token_shaped(key: &str) -> bool {
    secret::check_shape(key).is_ok()
}

/// A well-formed token string that was never issued.
pub fn unissued_key(kind: TokenKind) -> String {
    secret::TokenSecret::generate(kind).expose().to_owned()
}

pub fn random_id() -> String {
    random::id()
}

pub fn random_base62(len: usize) -> String {
    random::base62(len)
}

/// A fresh server key, as `SECRET_KEY` takes it.
pub fn generated_secret_key() -> String {
    crypto::SecretKey::generate().to_hex()
}

/// The settings of a test server on `database_url`.
pub fn config(database_url: &str, secret_key: Option<String>, trust_forwarded_for: bool) -> Config {
    let mut config = Config::for_database(database_url);
    config.secret_key = secret_key;
    config.trust_forwarded_for = trust_forwarded_for;
    config.metrics_bind = Some("127.0.0.1:0".to_owned());
    config
}

/// A fingerprint of the migration set (versions and checksums), so a database migrated
/// by one set is never taken for another.
pub fn migrations_fingerprint() -> String {
    let mut hash = Sha256::new();
    let sets = [
        &crate::db::MIGRATOR,
        &crate::db::SQLITE_MIGRATOR,
        &crate::db::POSTGRES_MIGRATOR,
    ];
    for migration in sets.into_iter().flat_map(|set| set.iter()) {
        hash.update(migration.version.to_be_bytes());
        hash.update(&migration.checksum[..]);
    }
    hash.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Creates (SQLite) or opens `url` and applies the migrations, then lets go of it.
pub async fn migrate(url: &str) -> Result<(), String> {
    let db = crate::db::connect(url).await.map_err(|e| e.to_string())?;
    let migrated = db.migrate().await.map_err(|e| e.to_string());
    if db.backend == Backend::Sqlite {
        // Fold the write-ahead log into the file, which is then copied as it is.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&db.pool)
            .await
            .map_err(|e| e.to_string())?;
    }
    db.pool.close().await;
    migrated
}

/// The clock of a test server: the system clock, moved forward by the test.
#[derive(Debug, Clone, Default)]
pub struct TestClock(Arc<crate::clock::ShiftedClock>);

impl TestClock {
    pub fn advance(&self, seconds: i64) {
        self.0.advance(seconds);
    }

    /// Stops the clock: only `advance` moves it from now on (exact boundaries).
    pub fn freeze(&self) {
        self.0.freeze();
    }

    /// Unix seconds, the unit every timestamp is stored in.
    pub fn unix(&self) -> i64 {
        self.0.unix()
    }

    pub fn now(&self) -> time::OffsetDateTime {
        self.0.now()
    }
}

/// A server running in the background.
pub struct Running {
    pub state: State,
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    pub shutdown: oneshot::Sender<()>,
    pub task: JoinHandle<()>,
}

pub async fn start_server(config: &Config, clock: &TestClock) -> Running {
    let server = Server::build(config, clock.0.clone())
        .await
        .expect("server starts");
    let addr = server.addr;
    let metrics_addr = server.metrics_addr;
    let state = server.state.clone();
    let (shutdown, stop) = oneshot::channel();
    let task = tokio::spawn(async move {
        server
            .run(async {
                let _ = stop.await;
            })
            .await
            .expect("server runs");
    });
    Running {
        state,
        addr,
        metrics_addr,
        shutdown,
        task,
    }
}

pub fn pool(state: &State) -> &AnyPool {
    &state.db.pool
}

pub fn is_postgres(state: &State) -> bool {
    state.db.backend == Backend::Postgres
}

fn now(state: &State) -> i64 {
    state.clock.unix()
}

pub async fn create_account(state: &State, name: &str) -> String {
    first_run::create_account(&state.db, name, now(state))
        .await
        .expect("create an account")
        .to_string()
}

pub async fn create_service(state: &State, account: &str, name: &str) -> String {
    service_catalog::create_for_operator(&state.db, &AccountId::from_raw(account), name, now(state))
        .await
        .expect("create a service")
        .to_string()
}

/// A user with a member role in `account`; without a password they cannot sign in.
pub async fn create_member(
    state: &State,
    account: &str,
    email: &str,
    name: &str,
    password: Option<&str>,
    role: Role,
) -> String {
    let hash = match password {
        Some(password) => Some(
            state
                .passwords
                .hash(&Password::new(password))
                .await
                .expect("hash a password"),
        ),
        None => None,
    };
    membership::create_member(
        &state.db,
        &AccountId::from_raw(account),
        email,
        name,
        hash.as_deref(),
        role,
        now(state),
    )
    .await
    .expect("create a member")
    .expect("the email is free")
    .to_string()
}

/// Many password-less members at once, in one transaction: (email, name, role) each.
pub async fn create_members(
    state: &State,
    account: &str,
    members: &[(String, String, Role)],
) -> Vec<String> {
    let account = AccountId::from_raw(account);
    let mut ids = Vec::with_capacity(members.len());
    for (email, name, role) in members {
        let id =
            membership::create_member(&state.db, &account, email, name, None, *role, now(state))
                .await
                .expect("create a member")
                .expect("the email is free");
        ids.push(id.to_string());
    }
    ids
}

pub async fn add_member(state: &State, account: &str, user: &str, role: Role) {
    member_store::add(
        pool(state),
        &AccountId::from_raw(account),
        &UserId::from_raw(user),
        role,
        now(state),
    )
    .await
    .expect("add a member");
    member_changed(state, account, user).await;
}

pub async fn limit_to(
    state: &State,
    account: &str,
    user: &str,
    service: &str,
    permission: ServicePermission,
) {
    member_store::set_service_permission(
        pool(state),
        &AccountId::from_raw(account),
        &UserId::from_raw(user),
        &ServiceId::from_raw(service),
        permission,
    )
    .await
    .expect("limit a member to a service");
    member_changed(state, account, user).await;
}

/// Every node forgets what it holds of a member's tokens, as the panel's own changes
/// make it do.
async fn member_changed(state: &State, account: &str, user: &str) {
    let change = Change::Member(AccountId::from_raw(account), UserId::from_raw(user));
    token_cache::announce(state, &[change])
        .await
        .expect("announce a membership change");
}

/// Every node forgets every token it holds, as after an edit made by hand
/// (`tokenpanel forget-cached-tokens`).
pub async fn forget_cached_tokens(state: &State) {
    token_cache::announce(state, &[Change::Everything])
        .await
        .expect("announce a change to every token");
}

/// Every node forgets what it holds of a user's tokens (after an operator's edit).
pub async fn user_changed(state: &State, user: &str) {
    token_cache::announce(state, &[Change::User(UserId::from_raw(user))])
        .await
        .expect("announce a change to a user");
}

/// The token cache's counters on this node: (hits, loads, flushes, entries).
pub fn token_cache_stats(state: &State) -> (u64, u64, u64, usize) {
    let stats = state.tokens.stats();
    (stats.hits, stats.loads, stats.flushes, stats.entries)
}

/// Whether this node's token cache is serving (on PostgreSQL: it is listening).
pub fn token_cache_live(state: &State) -> bool {
    state.tokens.is_live()
}

/// The PostgreSQL application name of the token cache's LISTEN connections.
pub const TOKEN_CACHE_LISTENER: &str = token_cache::LISTENER_NAME;

pub async fn service_limits(
    state: &State,
    account: &str,
    user: &str,
) -> Vec<(String, ServicePermission)> {
    member_store::service_permissions(
        pool(state),
        &AccountId::from_raw(account),
        &UserId::from_raw(user),
    )
    .await
    .expect("read service limits")
    .into_iter()
    .map(|(service, permission)| (service.to_string(), permission))
    .collect()
}

/// Issues a token as the pages and the API would after their checks: (id, string).
pub async fn issue(state: &State, spec: &TokenSpec) -> Result<(String, String), IssueError> {
    let scopes = ScopeSet::parse(&spec.scope).expect("a valid scope");
    let services: Vec<ServiceId> = spec.services.iter().map(ServiceId::from_raw).collect();
    let allowlist =
        crate::domain::cidr::Allowlist::parse_input(spec.allowed_cidrs.iter().map(String::as_str))
            .expect("a valid allowlist");
    let request = token_lifecycle::TokenRequest {
        kind: spec.kind,
        account_id: &AccountId::from_raw(spec.account_id.clone()),
        actor_id: &UserId::from_raw(spec.actor_id.clone()),
        name: &spec.name,
        scopes: &scopes,
        services: &services,
        role: spec.role,
        tls_access: spec.tls_access,
        expires_at: spec.expires_at,
        description: spec.description.as_deref(),
        allowed_cidrs: allowlist.as_ref(),
        rolled: None,
        ip: None,
    };
    let issued = token_lifecycle::issue(state, &request).await?;
    Ok((issued.id.to_string(), issued.secret.expose().to_owned()))
}

/// Turns on two-factor authentication for `user` with a fresh secret, as enrolment
/// does; returns the secret (base32).
pub async fn enrol_two_factor(state: &State, user: &str) -> String {
    let secret = totp::generate_secret();
    let user = UserId::from_raw(user);
    let sealed = crate::ops::authentication::seal_totp_secret(state, &user, &secret);
    user_store::enable_totp(pool(state), &user, &sealed, 0)
        .await
        .expect("store the two-factor secret");
    secret
}

pub async fn setup_path(state: &State) -> Option<String> {
    first_run::setup_path(state)
        .await
        .expect("read or make the setup secret")
}

pub async fn sweep_rolled(state: &State) -> u64 {
    token_lifecycle::sweep_rolled(state)
        .await
        .expect("sweep rolled tokens")
}

pub async fn sweep_unused(state: &State) -> u64 {
    token_lifecycle::sweep_unused(state)
        .await
        .expect("sweep unused tokens")
}

pub async fn import_legacy_key(
    state: &State,
    account: &str,
    key: &str,
) -> Result<String, ImportError> {
    token_lifecycle::import_legacy_key(state, &AccountId::from_raw(account), key)
        .await
        .map(|id| id.to_string())
}

pub fn usage_writes(state: &State) -> u64 {
    state.usage.writes()
}

/// Writes a use at `at` of every token in the database through
/// `token_store::record_uses`, in transactions of `per_transaction` uses, as a flush
/// writes them, or with `one_a_statement` one UPDATE a use (how uses were written
/// before). For the token-use benchmark; returns the uses written.
pub async fn write_a_use_of_every_token(
    state: &State,
    at: i64,
    per_transaction: usize,
    one_a_statement: bool,
) -> usize {
    use crate::db::token_store::{record_uses, TokenUse};
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM tokens ORDER BY id")
        .fetch_all(&state.db.pool)
        .await
        .expect("token ids");
    for chunk in ids.chunks(per_transaction.max(1)) {
        let uses: Vec<TokenUse<'_>> = chunk
            .iter()
            .map(|id| TokenUse {
                id,
                at,
                ip: "192.0.2.10",
                agent: Some("bench/1"),
            })
            .collect();
        let mut tx = state.db.begin().await.expect("a transaction");
        if one_a_statement {
            for one in uses.chunks(1) {
                record_uses(&mut tx, one).await.expect("uses written");
            }
        } else {
            record_uses(&mut tx, &uses).await.expect("uses written");
        }
        tx.commit().await.expect("uses committed");
    }
    ids.len()
}

pub fn password_checks(state: &State) -> u64 {
    state.passwords.computed()
}

/// Records an event as the panel would have, at Unix time `at`.
pub async fn record_event(state: &State, event: &EventSpec<'_>, at: i64) {
    let account = event.account_id.map(AccountId::from_raw);
    let actor = event.actor_id.map(UserId::from_raw);
    let token = event.token_id.map(TokenId::from_raw);
    let service = event.service_id.map(ServiceId::from_raw);
    let mut new = NewEvent::new(
        event.event_type.parse().expect("a known event type"),
        event.description,
    )
    .actor(actor.as_ref())
    .ip(event.ip);
    if let Some(account) = &account {
        new = new.account(account);
    }
    if let Some(token) = &token {
        new = new.token(token);
    }
    if let Some(service) = &service {
        new = new.service(service);
    }
    if let Some(metadata) = &event.metadata {
        new = new.metadata(metadata.clone());
    }
    event_store::record(pool(state), &new, at)
        .await
        .expect("record an event");
}

/// Who looks at the event log, for `visible_by_rule`.
#[derive(Debug, Clone)]
pub enum Viewer {
    /// A person, by user id.
    User(String),
    /// An automation token, by token id.
    Token(String),
}

/// The ids of the events of `account` that the domain rule lets `viewer` (with `role`,
/// limited to `limits` when an engineer is) see: what the event log's SQL must agree with.
pub async fn visible_by_rule(
    state: &State,
    account: &str,
    role: Role,
    viewer: Viewer,
    limits: Option<Vec<String>>,
) -> Vec<String> {
    let viewer = match viewer {
        Viewer::User(id) => access::Viewer::User(UserId::from_raw(id)),
        Viewer::Token(id) => access::Viewer::Token(TokenId::from_raw(id)),
    };
    let limits = limits.map(|ids| ids.into_iter().map(ServiceId::from_raw).collect());
    let scope = access::event_scope(role, viewer, limits);
    event_store::recent(pool(state), i64::MAX)
        .await
        .expect("read the events")
        .into_iter()
        .filter(|e| e.account_id.as_ref().is_some_and(|a| *a == *account))
        .filter(|e| {
            access::event_visible(
                &scope,
                &EventFacts {
                    actor_id: e.actor_id.as_ref(),
                    token_id: e.token_id.as_ref(),
                    service_id: e.service_id.as_ref(),
                },
            )
        })
        .map(|e| e.id)
        .collect()
}

/// Sets an account's token policy as Security > Token policy does (with its event).
pub async fn set_token_policy(state: &State, account: &str, actor: &str, policy: &TokenPolicy) {
    crate::ops::account_security::update_token_policy(
        state,
        &AccountId::from_raw(account),
        &UserId::from_raw(actor),
        policy,
        "127.0.0.1",
    )
    .await
    .expect("save the token policy");
}

/// A token cache filled with typical tokens, for the memory benchmark
/// (`benches/token_cache_memory.rs`): user tokens with 22-character ids, a name of about
/// 20 characters, the `global` scope, an expiry and a last use, no description,
/// allowlist or services; the owner an engineer with access to every service.
pub struct FilledTokenCache {
    cache: token_cache::TokenCache,
    entries: usize,
    now: i64,
}

/// The key of the `i`th synthetic token (made without allocating: the benchmark counts
/// the allocations of a hit).
fn synthetic_key(i: usize) -> [u8; 32] {
    Sha256::digest((i as u64).to_le_bytes()).into()
}

/// A cache holding `entries` synthetic tokens, loaded at `now`.
pub fn filled_token_cache(entries: usize, now: i64) -> FilledTokenCache {
    use crate::db::token_store::{Presented, Token};
    let cache = token_cache::TokenCache::new(Backend::Sqlite);
    let accounts: Vec<AccountId> = (0..100).map(|_| AccountId::generate()).collect();
    for i in 0..entries {
        let token = Token {
            name: format!("deploy token {i:07}"),
            scope: ScopeSet::new(vec![Scope::Global]),
            created_at: now - 86_400,
            expires_at: Some(now + 86_400 * 90),
            last_used_at: Some(now - 3_600),
            last_used_ip: Some("192.0.2.10".to_owned()),
            last_used_agent: Some("curl/8.5.0".to_owned()),
            ..Token::fixture(
                TokenId::generate().as_str(),
                accounts[i % accounts.len()].as_str(),
                Some(UserId::generate().as_str()),
            )
        };
        let presented = Presented {
            member_role: Some(Role::Engineer),
            ..Presented::fixture(token)
        };
        cache.keep_loaded(
            &synthetic_key(i),
            presented,
            access::ServiceAccess::All,
            now,
        );
    }
    FilledTokenCache {
        cache,
        entries,
        now,
    }
}

impl FilledTokenCache {
    /// The entries held.
    pub fn len(&self) -> usize {
        self.cache.stats().entries
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Uses every token held once, as a request from `ip` with `agent` would (the
    /// caller's hit path, building the token it hands on); returns the hits.
    pub fn use_each(&self, ip: &str, agent: Option<&str>) -> usize {
        (0..self.entries)
            .filter_map(|i| self.cache.hit(&synthetic_key(i), self.now, ip, agent))
            .map(std::hint::black_box)
            .count()
    }
}
