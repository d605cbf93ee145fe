//! The verified-token cache: what `token_store::authenticate` found for a presented key
//! (the decoded token row with its owner's membership and services) and the owner's
//! service access, kept in memory under the SHA-256 of the key, so that a token in use
//! costs no database round trip. It holds the row, never a verdict: expiry (and every
//! other per-request rule) is checked by the caller against the clock on every hit.
//! Each entry is a compact copy of the row ([`entry`]: about 275 bytes for a typical
//! token, map slot included, so a full cache of [`MAX_ENTRIES`] takes about 26 MiB;
//! `benches/token_cache_memory.rs` measures it).
//!
//! Invalidation has one entry point, [`commit`]: every operation that changes what a
//! token may do (revocation, sudo elevation, the sweep, a role or service-limit change,
//! a removal, a password change, an accepted invitation, a deleted service) commits its
//! transaction through it with the [`Change`]s it made. The change is announced inside
//! the transaction, so other nodes hear of it exactly when it commits, and forgotten on
//! this node right after the commit:
//!
//! - PostgreSQL: `pg_notify` on [`CHANNEL`]; every node LISTENs on a connection of its
//!   own ([`listen`]). The cache serves entries only while that connection is up; when
//!   it drops (a notification may have been missed), the cache is emptied and stays
//!   unused until LISTEN is re-established.
//! - SQLite: a row in `token_cache_log`, which every process on the file polls every
//!   [`POLL_EVERY`] ([`poll_log`]); rows older than ten minutes are deleted.
//!
//! A loader that read the database before a change committed never stores what it
//! read once the change has been forgotten: every change bumps a generation, and an
//! entry is stored only if the generation has not moved since its load began. Entries
//! also expire after [`TTL_SECONDS`] (a safety net for edits made outside the panel;
//! [`announce`] lets an operator's tool send a change without a transaction). The cache
//! holds at most [`MAX_ENTRIES`]. Unknown keys are never cached; the database is asked
//! about them at most [`UNKNOWN_PER_WINDOW`] times per client address per
//! [`UNKNOWN_WINDOW_SECONDS`] (a key held past its time is not unknown: its reload is
//! never refused).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sqlx::{Any, Transaction};

use super::Context;
use crate::db::token_store::{self, Presented};
use crate::db::{member_store, Backend, Db};
use crate::domain::access::ServiceAccess;
use crate::domain::ids::{AccountId, TokenId, UserId};
use crate::domain::secret::{self, TokenKind};
pub use entry::{Address, Agents, Cached, LastUse};

mod entry;

/// The PostgreSQL channel changes are announced on.
pub const CHANNEL: &str = "tokenpanel_token_cache";
/// Entries are reloaded after this long, whatever was announced.
pub const TTL_SECONDS: i64 = 30;
/// The most entries kept.
pub const MAX_ENTRIES: usize = 100_000;
/// How often a SQLite process reads the change log.
pub const POLL_EVERY: Duration = Duration::from_millis(200);
/// Unknown keys one client address may have looked up per window; past it, 429.
pub const UNKNOWN_PER_WINDOW: u32 = 30;
pub const UNKNOWN_WINDOW_SECONDS: i64 = 60;
/// The PostgreSQL application name of the listening connection.
pub const LISTENER_NAME: &str = "tokenpanel token cache";

const SHARDS: usize = 16;
const PER_SHARD: usize = MAX_ENTRIES / SHARDS;
/// Longest NOTIFY payload sent; past it, "forget everything" is sent instead.
const MAX_PAYLOAD: usize = 7_000;
/// Client addresses the unknown-key gate remembers at most.
const MAX_ADDRESSES: usize = 10_000;
/// Change-log rows older than this are deleted.
const LOG_KEEP_SECONDS: i64 = 600;

/// Something that changed what one or more tokens may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// These tokens were revoked, deleted, put in sudo mode or otherwise changed.
    Tokens(Vec<TokenId>),
    /// The user's standing changed everywhere (password, lock, deletion).
    User(UserId),
    /// The user's membership of the account changed (role, service limits, removal,
    /// an accepted invitation).
    Member(AccountId, UserId),
    /// Something account-wide changed (a deleted service).
    Account(AccountId),
    /// Anything may have changed.
    Everything,
}

impl Change {
    pub fn token(id: &TokenId) -> Change {
        Change::Tokens(vec![id.clone()])
    }

    fn matches(&self, entry: &Cached) -> bool {
        match self {
            Change::Tokens(ids) => ids.iter().any(|id| id.as_str() == entry.id()),
            Change::User(user) => entry.user_id() == Some(user.as_str()),
            Change::Member(account, user) => {
                entry.account_id() == account.as_str() && entry.user_id() == Some(user.as_str())
            }
            Change::Account(account) => entry.account_id() == account.as_str(),
            Change::Everything => true,
        }
    }

    /// One line per change: `t id id…`, `u user`, `m account user`, `a account`, `*`.
    fn encode(&self, out: &mut String) {
        if !out.is_empty() {
            out.push('\n');
        }
        match self {
            Change::Tokens(ids) => {
                out.push('t');
                for id in ids {
                    out.push(' ');
                    out.push_str(id.as_str());
                }
            }
            Change::User(user) => {
                out.push_str("u ");
                out.push_str(user.as_str());
            }
            Change::Member(account, user) => {
                out.push_str("m ");
                out.push_str(account.as_str());
                out.push(' ');
                out.push_str(user.as_str());
            }
            Change::Account(account) => {
                out.push_str("a ");
                out.push_str(account.as_str());
            }
            Change::Everything => out.push('*'),
        }
    }

    /// The changes of a payload; anything unreadable reads as `Everything`.
    fn decode(payload: &str) -> Vec<Change> {
        payload
            .lines()
            .map(|line| {
                let mut words = line.split(' ');
                let kind = words.next().unwrap_or("");
                let rest: Vec<&str> = words.filter(|w| !w.is_empty()).collect();
                match (kind, rest.as_slice()) {
                    ("t", ids) if !ids.is_empty() => {
                        Change::Tokens(ids.iter().map(|id| TokenId::from_raw(*id)).collect())
                    }
                    ("u", [user]) => Change::User(UserId::from_raw(*user)),
                    ("m", [account, user]) => {
                        Change::Member(AccountId::from_raw(*account), UserId::from_raw(*user))
                    }
                    ("a", [account]) => Change::Account(AccountId::from_raw(*account)),
                    _ => Change::Everything,
                }
            })
            .collect()
    }
}

fn payload(changes: &[Change]) -> String {
    let mut out = String::new();
    for change in changes {
        change.encode(&mut out);
    }
    if out.len() > MAX_PAYLOAD {
        return "*".to_owned();
    }
    out
}

/// What an entry is kept under: the first 16 bytes of the SHA-256 of its key. Half the
/// digest is as good as all of it here: finding another key whose digest starts with the
/// same 128 bits as one of the tokens held (a second preimage, against up to
/// [`MAX_ENTRIES`] targets at once) takes about 2^128 / 2^17 = 2^111 hashes, out of
/// anyone's reach. Each of the map's slots is 16 bytes smaller for it (slots are made
/// for about 1.3 entries each), and a lookup hashes half the bytes.
type Key = [u8; 16];

/// The key an entry is kept under for a key whose SHA-256 is `digest`.
fn key_of(digest: &[u8; 32]) -> Key {
    let mut key = [0; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

type Shard = HashMap<Key, Arc<Cached>>;

/// What a lookup found.
pub enum Lookup {
    Found(Arc<Cached>),
    /// No token has this key.
    Unknown,
    /// This address has looked up too many unknown keys; retry after so many seconds.
    Throttled(i64),
}

/// What the cache holds under a key.
enum Held {
    Fresh(Arc<Cached>),
    /// Past [`TTL_SECONDS`]: to be read again.
    Stale,
    Absent,
}

/// Counters, for tests and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub hits: u64,
    pub loads: u64,
    pub flushes: u64,
    pub entries: usize,
}

struct Inner {
    shards: Vec<Mutex<Shard>>,
    /// Bumped by every change, before entries are dropped.
    generation: AtomicU64,
    /// False while a PostgreSQL node is not listening: then nothing is served from or
    /// stored in the cache.
    live: AtomicBool,
    unknown: Mutex<HashMap<String, (i64, u32)>>,
    /// The user agents the entries' last uses share.
    agents: Agents,
    hits: AtomicU64,
    loads: AtomicU64,
    flushes: AtomicU64,
}

/// The cache of one node; clones share it.
#[derive(Clone)]
pub struct TokenCache(Arc<Inner>);

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("stats", &self.stats())
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock leaves a map that is still usable.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl TokenCache {
    /// A cache for `backend`: on PostgreSQL it stays unused until [`listen`] runs.
    pub fn new(backend: Backend) -> TokenCache {
        TokenCache(Arc::new(Inner {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            generation: AtomicU64::new(0),
            live: AtomicBool::new(backend == Backend::Sqlite),
            unknown: Mutex::new(HashMap::new()),
            agents: Agents::default(),
            hits: AtomicU64::new(0),
            loads: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
        }))
    }

    fn shard(&self, key: &Key) -> &Mutex<Shard> {
        &self.0.shards[usize::from(key[0]) % SHARDS]
    }

    pub fn stats(&self) -> Stats {
        Stats {
            hits: self.0.hits.load(Ordering::Relaxed),
            loads: self.0.loads.load(Ordering::Relaxed),
            flushes: self.0.flushes.load(Ordering::Relaxed),
            entries: self.0.shards.iter().map(|s| lock(s).len()).sum(),
        }
    }

    /// Whether entries are being served (false on a PostgreSQL node not listening).
    pub fn is_live(&self) -> bool {
        self.0.live.load(Ordering::Acquire)
    }

    /// The token with this key: from memory, or from the database (and then kept).
    pub async fn lookup(
        &self,
        db: &Db,
        digest: &[u8; 32],
        now: i64,
        ip: &str,
    ) -> sqlx::Result<Lookup> {
        let key = &key_of(digest);
        let live = self.is_live();
        let held = if live {
            self.held(key, now)
        } else {
            Held::Absent
        };
        let stale = match held {
            Held::Fresh(entry) => {
                self.0.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(Lookup::Found(entry));
            }
            Held::Stale => true,
            Held::Absent => false,
        };
        // A key held past its time was a token's a moment ago (a change to it would have
        // dropped it): its reload is no unknown key's lookup, so the gate, which another
        // client behind the same address (a NAT) may have tripped, does not stop it.
        if !stale {
            if let Some(wait) = self.unknown_wait(ip, now) {
                return Ok(Lookup::Throttled(wait));
            }
        }
        let generation = self.0.generation.load(Ordering::Acquire);
        let Some((presented, access)) = load(db, digest).await? else {
            if stale {
                // Gone by other means than the panel: its next lookup is gated.
                lock(self.shard(key)).remove(key);
            }
            self.note_unknown(ip, now);
            return Ok(Lookup::Unknown);
        };
        self.0.loads.fetch_add(1, Ordering::Relaxed);
        let entry = Arc::new(self.0.agents.entry(presented, access, now));
        if live {
            let mut shard = lock(self.shard(key));
            // A change announced since the load began may not be in what was read.
            if self.is_live() && self.0.generation.load(Ordering::Acquire) == generation {
                keep(&mut shard, key, entry.clone(), now);
            }
        }
        Ok(Lookup::Found(entry))
    }

    /// What is held under `key`: an entry loaded less than [`TTL_SECONDS`] ago is fresh.
    fn held(&self, key: &Key, now: i64) -> Held {
        let shard = lock(self.shard(key));
        match shard.get(key) {
            None => Held::Absent,
            Some(entry) if now - entry.loaded_at < TTL_SECONDS && now >= entry.loaded_at => {
                Held::Fresh(entry.clone())
            }
            Some(_) => Held::Stale,
        }
    }

    /// The entry under `key` if it is fresh (tests and the memory benchmark).
    #[cfg(any(test, feature = "testkit"))]
    fn fresh(&self, digest: &[u8; 32], now: i64) -> Option<Arc<Cached>> {
        match self.held(&key_of(digest), now) {
            Held::Fresh(entry) => Some(entry),
            Held::Stale | Held::Absent => None,
        }
    }

    /// Notes a use of `entry` by this node and returns the token's last use before it:
    /// the latest this node saw (or the database had when the entry was loaded).
    pub fn used(&self, entry: &Cached, at: i64, ip: &str, agent: Option<&str>) -> LastUse {
        self.0.agents.used(entry, at, ip, agent)
    }

    /// Drops every entry a change touches, on this node.
    pub fn forget(&self, changes: &[Change]) {
        if changes.is_empty() {
            return;
        }
        self.0.generation.fetch_add(1, Ordering::AcqRel);
        if changes.contains(&Change::Everything) {
            self.clear();
            return;
        }
        for shard in &self.0.shards {
            lock(shard).retain(|_, entry| !changes.iter().any(|change| change.matches(entry)));
        }
    }

    fn clear(&self) {
        self.0.flushes.fetch_add(1, Ordering::Relaxed);
        for shard in &self.0.shards {
            lock(shard).clear();
        }
    }

    /// Stops serving (and storing) entries until `resume`: the notifications that keep
    /// them fresh are not arriving.
    fn suspend(&self) {
        self.0.live.store(false, Ordering::Release);
        self.0.generation.fetch_add(1, Ordering::AcqRel);
        self.clear();
    }

    /// Serves entries again, from an empty cache.
    fn resume(&self) {
        self.0.generation.fetch_add(1, Ordering::AcqRel);
        self.clear();
        self.0.live.store(true, Ordering::Release);
    }

    /// Seconds to wait when `ip` has looked up too many unknown keys.
    fn unknown_wait(&self, ip: &str, now: i64) -> Option<i64> {
        let map = lock(&self.0.unknown);
        let (start, count) = *map.get(ip)?;
        let end = start + UNKNOWN_WINDOW_SECONDS;
        (count >= UNKNOWN_PER_WINDOW && now < end).then_some(end - now)
    }

    fn note_unknown(&self, ip: &str, now: i64) {
        let mut map = lock(&self.0.unknown);
        if map.len() >= MAX_ADDRESSES && !map.contains_key(ip) {
            map.retain(|_, (start, _)| now < *start + UNKNOWN_WINDOW_SECONDS);
            if map.len() >= MAX_ADDRESSES {
                // Still full of live windows: start over rather than grow.
                map.clear();
            }
        }
        let slot = map.entry(ip.to_owned()).or_insert((now, 0));
        if now >= slot.0 + UNKNOWN_WINDOW_SECONDS {
            *slot = (now, 0);
        }
        slot.1 += 1;
    }
}

/// For the memory benchmark: entries stored and hit without a database.
#[cfg(feature = "testkit")]
impl TokenCache {
    /// Stores what a load of `key` would have read.
    pub fn keep_loaded(
        &self,
        digest: &[u8; 32],
        presented: Presented,
        access: ServiceAccess,
        now: i64,
    ) {
        let entry = Arc::new(self.0.agents.entry(presented, access, now));
        let key = &key_of(digest);
        keep(&mut lock(self.shard(key)), key, entry, now);
    }

    /// A hit on `key`, as `api::caller` makes one, and the token it shows.
    pub fn hit(
        &self,
        digest: &[u8; 32],
        now: i64,
        ip: &str,
        agent: Option<&str>,
    ) -> Option<token_store::Token> {
        let entry = self.fresh(digest, now)?;
        Some(entry.token_as_of(&self.used(&entry, now, ip, agent)))
    }
}

/// Stores an entry, making room first when the shard is full.
fn keep(shard: &mut Shard, key: &Key, entry: Arc<Cached>, now: i64) {
    if shard.len() >= PER_SHARD && !shard.contains_key(key) {
        evict(shard, now);
    }
    shard.insert(*key, entry);
}

/// Makes room in a full shard: entries past their time first, else one at random.
fn evict(shard: &mut Shard, now: i64) {
    shard.retain(|_, e| now - e.loaded_at < TTL_SECONDS);
    if shard.len() >= PER_SHARD {
        if let Some(key) = shard.keys().next().copied() {
            shard.remove(&key);
        }
    }
}

/// Reads a token and, for a user token whose owner is a member, the owner's service
/// access.
async fn load(db: &Db, digest: &[u8; 32]) -> sqlx::Result<Option<(Presented, ServiceAccess)>> {
    let Some(presented) = token_store::authenticate(&db.pool, &secret::hex(digest)).await? else {
        return Ok(None);
    };
    let token = &presented.token;
    let access = match (token.kind, &token.user_id, presented.member_role) {
        (TokenKind::User, Some(user), Some(role)) if !presented.owner_locked => {
            member_store::service_access(&db.pool, &token.account_id, user, role).await?
        }
        _ => ServiceAccess::All,
    };
    Ok(Some((presented, access)))
}

/// Records the changes in `tx` (a NOTIFY on PostgreSQL, a log row on SQLite), commits
/// it, then forgets them on this node. Every write that changes what a token may do
/// commits this way.
pub async fn commit(
    ctx: &Context,
    mut tx: Transaction<'_, Any>,
    changes: &[Change],
) -> sqlx::Result<()> {
    // A sweep that deleted nothing changed nothing.
    let changes: Vec<Change> = changes
        .iter()
        .filter(|c| !matches!(c, Change::Tokens(ids) if ids.is_empty()))
        .cloned()
        .collect();
    record(&mut tx, ctx.db.backend, ctx.clock.unix(), &changes).await?;
    tx.commit().await?;
    ctx.tokens.forget(&changes);
    Ok(())
}

/// Announces changes made outside a transaction of ours (an operator's edit, a test
/// setting a scene): every node forgets them.
pub async fn announce(ctx: &Context, changes: &[Change]) -> sqlx::Result<()> {
    let tx = ctx.db.begin().await?;
    commit(ctx, tx, changes).await
}

async fn record(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    now: i64,
    changes: &[Change],
) -> sqlx::Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let payload = payload(changes);
    match backend {
        // Delivered when (and only if) the transaction commits.
        Backend::Postgres => {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(payload)
                .execute(&mut **tx)
                .await?;
        }
        // SQLite writes one transaction at a time, so the next sequence number is taken
        // under the write lock and sequence order is commit order.
        Backend::Sqlite => {
            sqlx::query(
                "INSERT INTO token_cache_log (seq, changes, created_at) \
                 SELECT COALESCE(MAX(seq), 0) + 1, $1, $2 FROM token_cache_log",
            )
            .bind(payload)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

/// Keeps a PostgreSQL node's cache in step with every node's changes until the task
/// is aborted: LISTEN on a connection of its own; while it is down, the cache is
/// emptied and unused.
pub async fn listen(cache: TokenCache, url: String) {
    use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
    use std::str::FromStr;
    loop {
        let connected = async {
            let options = PgConnectOptions::from_str(&url)?.application_name(LISTENER_NAME);
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await?;
            let mut listener = PgListener::connect_with(&pool).await?;
            // A lost connection ends this listener; a new one is made below.
            listener.eager_reconnect(false);
            listener.ignore_pool_close_event(true);
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>((pool, listener))
        }
        .await;
        let (pool, mut listener) = match connected {
            Ok(both) => both,
            Err(e) => {
                tracing::warn!(error = %e, "token cache: cannot LISTEN; tokens are read from the database");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        // Listening from here on: whatever changed before is read afresh.
        cache.resume();
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => cache.forget(&Change::decode(notification.payload())),
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "token cache: the LISTEN connection failed");
                    break;
                }
            }
        }
        cache.suspend();
        drop(listener);
        pool.close().await;
    }
}

/// Keeps a SQLite process's cache in step with the other processes on the file until
/// the task is aborted: reads `token_cache_log` every `POLL_EVERY`.
pub async fn poll_log(cache: TokenCache, ctx: Context) {
    let mut seen: Option<i64> = None;
    let mut every = tokio::time::interval(POLL_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut polls: u64 = 0;
    loop {
        every.tick().await;
        polls += 1;
        if let Err(e) = poll_once(&cache, &ctx, &mut seen, polls % 300 == 0).await {
            tracing::warn!(error = %e, "token cache: cannot read the change log");
        }
    }
}

async fn poll_once(
    cache: &TokenCache,
    ctx: &Context,
    seen: &mut Option<i64>,
    prune: bool,
) -> sqlx::Result<()> {
    let pool = &ctx.db.pool;
    let Some(after) = *seen else {
        let last: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM token_cache_log")
            .fetch_one(pool)
            .await?;
        *seen = Some(last.unwrap_or(0));
        return Ok(());
    };
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT seq, changes FROM token_cache_log WHERE seq > $1 ORDER BY seq LIMIT 1000",
    )
    .bind(after)
    .fetch_all(pool)
    .await?;
    let mut expected = after + 1;
    for (seq, changes) in rows {
        if seq != expected {
            // Rows this process never read were deleted: it was away too long.
            cache.forget(&[Change::Everything]);
        } else {
            cache.forget(&Change::decode(&changes));
        }
        expected = seq + 1;
        *seen = Some(seq);
    }
    if prune {
        sqlx::query("DELETE FROM token_cache_log WHERE created_at < $1")
            .bind(ctx.clock.unix() - LOG_KEEP_SECONDS)
            .execute(pool)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::token_store::Token;

    #[test]
    fn changes_survive_the_payload() {
        let changes = vec![
            Change::Tokens(vec![TokenId::from_raw("t1"), TokenId::from_raw("t2")]),
            Change::User(UserId::from_raw("u1")),
            Change::Member(AccountId::from_raw("a1"), UserId::from_raw("u2")),
            Change::Account(AccountId::from_raw("a2")),
            Change::Everything,
        ];
        assert_eq!(Change::decode(&payload(&changes)), changes);
        assert_eq!(Change::decode("t"), vec![Change::Everything]);
        assert_eq!(Change::decode("m a1"), vec![Change::Everything]);
        assert_eq!(Change::decode("garbage here"), vec![Change::Everything]);
        let many: Vec<TokenId> = (0..2000)
            .map(|i| TokenId::from_raw(format!("t{i}")))
            .collect();
        assert_eq!(payload(&[Change::Tokens(many)]), "*");
    }

    /// An entry for token `id` of `account`, owned by `user` (None: an automation token).
    fn entry(agents: &Agents, id: &str, account: &str, user: Option<&str>) -> Cached {
        let presented = Presented::fixture(Token::fixture(id, account, user));
        agents.entry(presented, ServiceAccess::All, 0)
    }

    #[test]
    fn changes_touch_the_entries_they_name() {
        let agents = Agents::default();
        let entries = [
            entry(&agents, "t1", "a1", Some("u1")),
            entry(&agents, "t2", "a1", None),
            entry(&agents, "t3", "a2", Some("u1")),
            entry(&agents, "t10", "a2", Some("u2")),
        ];
        let tokens =
            |ids: &[&str]| Change::Tokens(ids.iter().map(|id| TokenId::from_raw(*id)).collect());
        let account = |a: &str| AccountId::from_raw(a);
        let user = |u: &str| UserId::from_raw(u);
        let cases = [
            (tokens(&["t1"]), [true, false, false, false]),
            (tokens(&["t2", "t3"]), [false, true, true, false]),
            // Ids are compared whole: no prefix matches.
            (tokens(&["t"]), [false, false, false, false]),
            (Change::User(user("u1")), [true, false, true, false]),
            (Change::User(user("u")), [false, false, false, false]),
            (
                Change::Member(account("a1"), user("u1")),
                [true, false, false, false],
            ),
            (
                Change::Member(account("a2"), user("u1")),
                [false, false, true, false],
            ),
            (
                Change::Member(account("a1"), user("u2")),
                [false, false, false, false],
            ),
            (Change::Account(account("a1")), [true, true, false, false]),
            (Change::Account(account("a2")), [false, false, true, true]),
            (Change::Everything, [true, true, true, true]),
        ];
        for (change, expected) in cases {
            for (entry, touched) in entries.iter().zip(expected) {
                assert_eq!(
                    change.matches(entry),
                    touched,
                    "{change:?} on {}",
                    entry.id()
                );
            }
        }
    }

    #[test]
    fn forgetting_drops_only_what_a_change_touches() {
        let cache = TokenCache::new(Backend::Sqlite);
        let held = [
            ("t1", "a1", Some("u1")),
            ("t2", "a1", None),
            ("t3", "a2", Some("u1")),
        ];
        for (i, (id, account, user)) in held.into_iter().enumerate() {
            let key = [i as u8; 16];
            let entry = Arc::new(entry(&cache.0.agents, id, account, user));
            keep(&mut lock(cache.shard(&key)), &key, entry, 0);
        }
        let ids = |cache: &TokenCache| -> Vec<String> {
            (0..3u8)
                .filter_map(|i| cache.fresh(&[i; 32], 1))
                .map(|e| e.id().to_owned())
                .collect()
        };
        assert_eq!(ids(&cache), ["t1", "t2", "t3"]);
        cache.forget(&[Change::Member(
            AccountId::from_raw("a1"),
            UserId::from_raw("u1"),
        )]);
        assert_eq!(ids(&cache), ["t2", "t3"]);
        cache.forget(&[Change::User(UserId::from_raw("u1"))]);
        assert_eq!(ids(&cache), ["t2"]);
        // Past the time to live, an entry is not served.
        assert!(cache.fresh(&[1; 32], TTL_SECONDS).is_none());
        cache.forget(&[Change::Everything]);
        assert_eq!(cache.stats().entries, 0);
    }

    #[test]
    fn unknown_keys_are_limited_per_address() {
        let cache = TokenCache::new(Backend::Sqlite);
        for _ in 0..UNKNOWN_PER_WINDOW {
            assert_eq!(cache.unknown_wait("10.0.0.1", 1000), None);
            cache.note_unknown("10.0.0.1", 1000);
        }
        assert_eq!(cache.unknown_wait("10.0.0.1", 1010), Some(50));
        assert_eq!(cache.unknown_wait("10.0.0.2", 1010), None);
        assert_eq!(cache.unknown_wait("10.0.0.1", 1060), None);
        cache.note_unknown("10.0.0.1", 1060);
        assert_eq!(cache.unknown_wait("10.0.0.1", 1061), None);
    }
}
