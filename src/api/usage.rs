//! Last-used time, address and user agent of tokens, coalesced in memory and written
//! about once a second, so a busy token costs one UPDATE per flush, not one per request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::db::{tokens, Db};

/// How often the buffer is written out.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// User agents are kept to this many characters.
const MAX_AGENT_CHARS: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Use {
    at: i64,
    ip: String,
    agent: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct UsageLog {
    pending: Arc<Mutex<HashMap<String, Use>>>,
    writes: Arc<AtomicU64>,
}

impl UsageLog {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Use>> {
        // A panic while holding the lock leaves a map that is still usable.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes one use of a token; cheap, never touches the database.
    pub fn note(&self, token_id: &str, at: i64, ip: &str, agent: Option<&str>) {
        let agent = agent.map(|a| match a.char_indices().nth(MAX_AGENT_CHARS) {
            Some((cut, _)) => &a[..cut],
            None => a,
        });
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
                    token_id.to_owned(),
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

    /// UPDATE statements written so far (for tests and metrics).
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Writes every pending use in one transaction. On failure the uses go back into
    /// the buffer (unless a newer use arrived meanwhile) for the next flush.
    pub async fn flush(&self, db: &Db) -> sqlx::Result<usize> {
        let batch: Vec<(String, Use)> = self.lock().drain().collect();
        if batch.is_empty() {
            return Ok(0);
        }
        let result = async {
            let mut tx = db.pool.begin().await?;
            for (id, used) in &batch {
                tokens::record_use(&mut *tx, id, used.at, &used.ip, used.agent.as_deref()).await?;
            }
            tx.commit().await
        }
        .await;
        match result {
            Ok(()) => {
                self.writes.fetch_add(batch.len() as u64, Ordering::Relaxed);
                Ok(batch.len())
            }
            Err(e) => {
                let mut pending = self.lock();
                for (id, used) in batch {
                    pending.entry(id).or_insert(used);
                }
                Err(e)
            }
        }
    }

    /// Flushes every `FLUSH_EVERY` until the task is aborted.
    pub async fn run(self, db: Db) {
        let mut every = tokio::time::interval(FLUSH_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Err(e) = self.flush(&db).await {
                tracing::warn!(error = %e, "could not record token use");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_of_one_token_coalesce_into_the_latest() {
        let log = UsageLog::default();
        log.note("t1", 100, "10.0.0.1", Some("curl/8"));
        log.note("t1", 101, "10.0.0.2", None);
        log.note("t1", 99, "10.0.0.3", Some("late"));
        log.note("t2", 100, "10.0.0.1", Some(&"x".repeat(1000)));
        assert_eq!(log.pending(), 2);
        let pending = log.lock();
        assert_eq!(
            pending.get("t1"),
            Some(&Use {
                at: 101,
                ip: "10.0.0.2".into(),
                agent: None
            })
        );
        assert_eq!(
            pending
                .get("t2")
                .and_then(|u| u.agent.as_ref())
                .map(String::len),
            Some(MAX_AGENT_CHARS)
        );
    }
}
