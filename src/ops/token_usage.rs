//! Last-used time, address and user agent of tokens, written about once a second, so a
//! busy token costs one row of one UPDATE per flush, not a write per request.
//!
//! The use itself is kept where the answer reads it, in the token's cache entry
//! ([`Cached`]); this buffer only queues the entries with a use not yet written, once
//! each. So a flush that falls behind (SQLite at full load with every key) holds a
//! pointer per token, not a second copy of each use.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::db::token_store::{self, TokenUse};
use crate::db::Db;
use crate::ops::token_cache::{Cached, LastUse};
use crate::telemetry::Metrics;

/// How often the buffer is written out.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Uses written per transaction: SQLite's one writer is let go between chunks.
const CHUNK: usize = 2_000;
/// A flush of at least this many uses gives the memory freed since back to the system
/// (a trim walks the allocator's arenas: not worth it after a small flush).
const LARGE_FLUSH: usize = 10_000;
/// User agents are kept to this many characters.
const MAX_AGENT_CHARS: usize = 256;

/// A user agent as it is kept: its first `MAX_AGENT_CHARS` characters.
pub fn clip_agent(agent: &str) -> &str {
    match agent.char_indices().nth(MAX_AGENT_CHARS) {
        Some((cut, _)) => &agent[..cut],
        None => agent,
    }
}

#[derive(Debug, Clone)]
pub struct TokenUsage {
    /// Entries whose last use is not yet written, each once.
    pending: Arc<Mutex<Vec<Arc<Cached>>>>,
    writes: Arc<AtomicU64>,
    /// When the buffer was last written (or the server started), for the metrics.
    written_at: Arc<Mutex<Instant>>,
}

impl Default for TokenUsage {
    fn default() -> Self {
        TokenUsage {
            pending: Arc::default(),
            writes: Arc::default(),
            written_at: Arc::new(Mutex::new(Instant::now())),
        }
    }
}

/// A use read out of its entry, to be written.
struct Due {
    entry: Arc<Cached>,
    at: i64,
    ip: String,
    /// The use as the entry had it, for its user agent (shared, not copied).
    used: LastUse,
}

impl TokenUsage {
    fn lock(&self) -> MutexGuard<'_, Vec<Arc<Cached>>> {
        // A panic while holding the lock leaves a list that is still usable.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues the use just noted in `entry` (`TokenCache::used`) for the next flush;
    /// cheap (an atomic flag, the lock only for the first use since the last write),
    /// never touches the database.
    pub fn note(&self, entry: &Arc<Cached>) {
        if entry.mark_unwritten() {
            self.lock().push(entry.clone());
        }
    }

    /// Tokens with a use not yet written.
    pub fn pending(&self) -> usize {
        self.lock().len()
    }

    /// Time since the buffer was last written out.
    pub fn since_written(&self) -> Duration {
        self.written_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
    }

    /// Uses written so far (for tests).
    #[cfg(any(test, feature = "testkit"))]
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Writes the uses pending when it starts, [`CHUNK`] at a time, each chunk in a
    /// transaction of its own. On failure the entries of that chunk and of the chunks
    /// not yet written go back into the buffer (those a newer use has not already put
    /// back) for the next flush; the chunks written before it stay written and are
    /// counted in the flush-size metric.
    pub async fn flush(&self, db: &Db, metrics: &Metrics) -> sqlx::Result<usize> {
        let due = std::mem::take(&mut *self.lock());
        let mut written = 0;
        let mut chunks = due.chunks(CHUNK);
        while let Some(chunk) = chunks.next() {
            let uses = match write(db, chunk).await {
                Ok(uses) => uses,
                Err(e) => {
                    self.put_back(chunk, chunks.flatten());
                    if written > 0 {
                        metrics.usage_flushed(written);
                    }
                    return Err(e);
                }
            };
            written += uses;
            self.writes.fetch_add(uses as u64, Ordering::Relaxed);
        }
        *self.written_at.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        if written > 0 {
            metrics.usage_flushed(written);
        }
        if written >= LARGE_FLUSH {
            // After a burst of that many tokens (the entries it reloaded, the rows it
            // read) glibc would keep what it freed.
            crate::allocator::give_back_free_memory();
        }
        Ok(written)
    }

    /// Queues again what a failed flush did not write: the chunk that failed (its uses
    /// were read out, so each goes back unless a newer use already queued it) and the
    /// chunks after it (never read out: still marked).
    fn put_back<'a>(&self, failed: &[Arc<Cached>], unread: impl Iterator<Item = &'a Arc<Cached>>) {
        let mut pending = self.lock();
        for entry in failed {
            if entry.mark_unwritten() {
                pending.push(entry.clone());
            }
        }
        pending.extend(unread.cloned());
    }

    /// Flushes every `FLUSH_EVERY` until the task is aborted.
    pub async fn run(self, db: Db, metrics: Arc<Metrics>) {
        let mut every = tokio::time::interval(FLUSH_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            match self.flush(&db, &metrics).await {
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not record token use"),
            }
        }
    }
}

/// The uses of `entries` to write: their latest, one a token (after a token's entry is
/// dropped and loaded again, both may be queued).
fn latest_uses(entries: &[Arc<Cached>]) -> Vec<Due> {
    let mut due: Vec<Due> = entries
        .iter()
        .filter_map(|entry| {
            let used = entry.use_to_write();
            Some(Due {
                at: used.at()?,
                ip: used.ip_text().unwrap_or_default(),
                used,
                entry: entry.clone(),
            })
        })
        .collect();
    due.sort_unstable_by(|a, b| a.entry.id().cmp(b.entry.id()).then(b.at.cmp(&a.at)));
    due.dedup_by(|later, kept| later.entry.id() == kept.entry.id());
    due
}

/// Writes the latest uses of `entries` in one transaction; how many it wrote.
async fn write(db: &Db, entries: &[Arc<Cached>]) -> sqlx::Result<usize> {
    let due = latest_uses(entries);
    let uses: Vec<TokenUse<'_>> = due
        .iter()
        .map(|due| TokenUse {
            id: due.entry.id(),
            at: due.at,
            ip: &due.ip,
            agent: due.used.agent(),
        })
        .collect();
    let mut tx = db.begin().await?;
    token_store::record_uses(&mut tx, &uses).await?;
    tx.commit().await?;
    Ok(uses.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::token_store::{Presented, Token};
    use crate::domain::access::ServiceAccess;
    use crate::ops::token_cache::Agents;

    fn entry(agents: &Agents, id: &str) -> Arc<Cached> {
        let presented = Presented::fixture(Token::fixture(id, "a1", Some("u1")));
        Arc::new(agents.entry(presented, ServiceAccess::All, 0))
    }

    /// What the caller does on each hit.
    fn hit(
        agents: &Agents,
        usage: &TokenUsage,
        entry: &Arc<Cached>,
        at: i64,
        ip: &str,
        agent: Option<&str>,
    ) {
        agents.used(entry, at, ip, agent);
        usage.note(entry);
    }

    #[test]
    fn a_token_is_queued_once_until_its_use_is_read_out() {
        let (agents, usage) = (Agents::default(), TokenUsage::default());
        let (t1, t2) = (entry(&agents, "t1"), entry(&agents, "t2"));
        hit(&agents, &usage, &t1, 100, "10.0.0.1", Some("curl/8"));
        hit(&agents, &usage, &t1, 101, "10.0.0.2", None);
        hit(
            &agents,
            &usage,
            &t2,
            100,
            "10.0.0.1",
            Some(&"x".repeat(1000)),
        );
        assert_eq!(usage.pending(), 2);
        let due = latest_uses(&std::mem::take(&mut *usage.lock()));
        let shown: Vec<(&str, i64, &str, Option<usize>)> = due
            .iter()
            .map(|d| {
                (
                    d.entry.id(),
                    d.at,
                    d.ip.as_str(),
                    d.used.agent().map(str::len),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                ("t1", 101, "10.0.0.2", None),
                ("t2", 100, "10.0.0.1", Some(MAX_AGENT_CHARS))
            ]
        );
        // Read out: the next use queues the entry again.
        hit(&agents, &usage, &t1, 102, "10.0.0.2", None);
        assert_eq!(usage.pending(), 1);
    }

    #[test]
    fn a_token_queued_by_two_entries_is_written_once_with_its_latest_use() {
        let agents = Agents::default();
        // Its entry was dropped (a change) and loaded again while a use was queued.
        let (old, new) = (entry(&agents, "t1"), entry(&agents, "t1"));
        agents.used(&new, 105, "10.0.0.5", Some("new"));
        agents.used(&old, 100, "10.0.0.1", Some("old"));
        for entries in [[old.clone(), new.clone()], [new.clone(), old.clone()]] {
            old.mark_unwritten();
            new.mark_unwritten();
            let due = latest_uses(&entries);
            assert_eq!(due.len(), 1);
            assert_eq!((due[0].at, due[0].ip.as_str()), (105, "10.0.0.5"));
        }
    }

    #[tokio::test]
    async fn a_failed_flush_keeps_every_use_for_the_next() {
        let (agents, usage) = (Agents::default(), TokenUsage::default());
        // A database without the tokens table: every write fails.
        let path = std::env::temp_dir().join(format!(
            "tokenpanel-usage-{}-{}.db",
            std::process::id(),
            crate::domain::ids::TokenId::generate()
        ));
        let db = crate::db::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("a database");
        let entries: Vec<Arc<Cached>> = (0..CHUNK + 5)
            .map(|i| entry(&agents, &format!("t{i}")))
            .collect();
        for (i, e) in entries.iter().enumerate() {
            hit(&agents, &usage, e, 100 + i as i64, "10.0.0.1", None);
        }
        let metrics = Metrics::new();
        assert!(usage.flush(&db, &metrics).await.is_err());
        assert_eq!(
            usage.pending(),
            CHUNK + 5,
            "the failed chunk and the one after it"
        );
        assert_eq!(usage.writes(), 0);
        // A use while the entries wait queues none twice.
        hit(&agents, &usage, &entries[0], 200, "10.0.0.1", None);
        hit(&agents, &usage, &entries[CHUNK], 200, "10.0.0.1", None);
        assert_eq!(usage.pending(), CHUNK + 5);
        db.pool.close().await;
        let _ = std::fs::remove_file(&path);
    }
}
