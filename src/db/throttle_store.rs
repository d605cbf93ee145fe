//! Failure counters in fixed windows, shared by every node through the database.

use super::Exec;

/// Counts one failure for `key` in the current window (an expired window restarts at
/// one). The failure that reaches `limit` restarts the window, so the lock that follows
/// lasts a whole window.
pub async fn record_failure<'e>(
    ex: impl Exec<'e>,
    key: &str,
    now: i64,
    window_seconds: i64,
    limit: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO throttle (key, window_start, failures) VALUES ($1, $2, 1) \
         ON CONFLICT (key) DO UPDATE SET \
           failures = CASE WHEN throttle.window_start <= $3 THEN 1 ELSE throttle.failures + 1 END, \
           window_start = CASE WHEN throttle.window_start <= $3 THEN $2 \
                               WHEN throttle.failures + 1 >= $4 THEN $2 \
                               ELSE throttle.window_start END",
    )
    .bind(key)
    .bind(now)
    .bind(now - window_seconds)
    .bind(limit)
    .execute(ex)
    .await
    .map(|_| ())
}

/// Failures counted for `key` in the current window, and when that window started.
pub async fn failures<'e>(
    ex: impl Exec<'e>,
    key: &str,
    now: i64,
    window_seconds: i64,
) -> sqlx::Result<Option<(i64, i64)>> {
    sqlx::query_as(
        "SELECT failures, window_start FROM throttle WHERE key = $1 AND window_start > $2",
    )
    .bind(key)
    .bind(now - window_seconds)
    .fetch_optional(ex)
    .await
}

pub async fn clear<'e>(ex: impl Exec<'e>, key: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM throttle WHERE key = $1")
        .bind(key)
        .execute(ex)
        .await
        .map(|_| ())
}
