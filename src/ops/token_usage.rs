//! Last-used time, address and user agent of tokens, coalesced in memory and written
//! about once a second, so a busy token costs one UPDATE per flush, not one per request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::db::{token_store, Db};
use crate::domain::ids::TokenId;
use crate::telemetry::Metrics;

/// How often the buffer is written out.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Uses written per transaction.
const CHUNK: usize = 2_000;
/// A flush of at least this many uses gives the memory it freed back to the system
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

#[derive(Debug, Clone, PartialEq, Eq)]
struct Use {
    at: i64,
    ip: String,
    agent: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TokenUsage {
    pending: Arc<Mutex<HashMap<TokenId, Use>>>,
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

impl TokenUsage {
    fn lock(&self) -> MutexGuard<'_, HashMap<TokenId, Use>> {
        // A panic while holding the lock leaves a map that is still usable.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes one use of a token; cheap, never touches the database.
    pub fn note(&self, token_id: &TokenId, at: i64, ip: &str, agent: Option<&str>) {
        let agent = agent.map(clip_agent);
        let mut pending = self.lock();
        match pending.get_mut(token_id) {
            Some(last) => {
                if at >= last.at {
                    last.at = at;
                    if last.ip != ip {
                        ip.clone_into(&mut last.ip);
                    }
                    if last.agent.as_deref() != agent {
                        last.agent = agent.map(str::to_owned);
                    }
                }
            }
            None => {
                pending.insert(
                    token_id.clone(),
                    Use {
                        at,
                        ip: ip.to_owned(),
                        agent: agent.map(str::to_owned),
                    },
                );
            }
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

    /// UPDATE statements written so far (for tests).
    #[cfg(any(test, feature = "testkit"))]
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Writes the uses pending when it starts, [`CHUNK`] at a time, each chunk in a
    /// transaction of its own. On failure the chunk's uses go back into the buffer
    /// (unless a newer use arrived meanwhile) for the next flush; the chunks written
    /// before it stay written and are counted in the flush-size metric.
    ///
    /// Chunks, because at full load with many keys a flush on SQLite falls seconds
    /// behind and the buffer holds a use of nearly every token: taken whole, the batch
    /// in flight was a second copy of it (about 14 MB at 100,000 tokens).
    pub async fn flush(&self, db: &Db, metrics: &Metrics) -> sqlx::Result<usize> {
        let due = self.pending();
        let mut written = 0;
        while written < due {
            let chunk = self.take(CHUNK.min(due - written));
            if chunk.is_empty() {
                break;
            }
            if let Err(e) = write(db, &chunk).await {
                let mut pending = self.lock();
                for (id, used) in chunk {
                    pending.entry(id).or_insert(used);
                }
                if written > 0 {
                    metrics.usage_flushed(written);
                }
                return Err(e);
            }
            written += chunk.len();
            self.writes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        *self.written_at.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        if written > 0 {
            metrics.usage_flushed(written);
        }
        if written >= LARGE_FLUSH {
            // What the uses took was spread over the arenas of the threads that noted
            // them; without a trim glibc keeps it after the burst.
            crate::allocator::give_back_free_memory();
        }
        Ok(written)
    }

    /// Takes up to `most` pending uses out of the buffer. The last ones out take the
    /// map itself: a drained map would keep its table, which after a burst holds a slot
    /// for every token used.
    fn take(&self, most: usize) -> Vec<(TokenId, Use)> {
        let mut pending = self.lock();
        if pending.len() <= most {
            return std::mem::take(&mut *pending).into_iter().collect();
        }
        let ids: Vec<TokenId> = pending.keys().take(most).cloned().collect();
        ids.iter()
            .filter_map(|id| pending.remove_entry(id))
            .collect()
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

/// Writes `uses` in one transaction.
async fn write(db: &Db, uses: &[(TokenId, Use)]) -> sqlx::Result<()> {
    let mut tx = db.begin().await?;
    for (id, used) in uses {
        token_store::record_use(&mut *tx, id, used.at, &used.ip, used.agent.as_deref()).await?;
    }
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_of_one_token_coalesce_into_the_latest() {
        let log = TokenUsage::default();
        log.note(&TokenId::from_raw("t1"), 100, "10.0.0.1", Some("curl/8"));
        log.note(&TokenId::from_raw("t1"), 101, "10.0.0.2", None);
        log.note(&TokenId::from_raw("t1"), 99, "10.0.0.3", Some("late"));
        log.note(
            &TokenId::from_raw("t2"),
            100,
            "10.0.0.1",
            Some(&"x".repeat(1000)),
        );
        assert_eq!(log.pending(), 2);
        let pending = log.lock();
        assert_eq!(
            pending.get(&TokenId::from_raw("t1")),
            Some(&Use {
                at: 101,
                ip: "10.0.0.2".into(),
                agent: None
            })
        );
        assert_eq!(
            pending
                .get(&TokenId::from_raw("t2"))
                .and_then(|u| u.agent.as_ref())
                .map(String::len),
            Some(MAX_AGENT_CHARS)
        );
    }

    #[test]
    fn uses_are_taken_in_chunks_and_the_last_take_releases_the_table() {
        let log = TokenUsage::default();
        for i in 0..5 {
            log.note(&TokenId::from_raw(format!("t{i}")), 100, "10.0.0.1", None);
        }
        let first = log.take(2);
        assert_eq!(first.len(), 2);
        assert_eq!(log.pending(), 3);
        let rest = log.take(5);
        assert_eq!(rest.len(), 3);
        assert_eq!(log.pending(), 0);
        assert_eq!(log.lock().capacity(), 0);
        let mut ids: Vec<String> = first
            .iter()
            .chain(&rest)
            .map(|(id, _)| id.as_str().to_owned())
            .collect();
        ids.sort();
        assert_eq!(ids, ["t0", "t1", "t2", "t3", "t4"]);
    }
}
