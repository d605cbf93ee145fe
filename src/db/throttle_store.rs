//! Attempt counters in fixed windows, shared by every node through the database.
//! An attempt is counted (reserved) before it is checked, in one statement, so
//! concurrent attempts each see their own count.

use super::Exec;

/// Counts one attempt for `key` and returns the attempts in the current window, this one
/// included, and when the window started. An expired window restarts at one; the
/// attempt that reaches `limit` restarts the window, so the refusal that follows lasts a
/// whole window.
pub async fn reserve<'e>(
    ex: impl Exec<'e>,
    key: &str,
    now: i64,
    window_seconds: i64,
    limit: i64,
) -> sqlx::Result<(i64, i64)> {
    sqlx::query_as(
        "INSERT INTO throttle (key, window_start, failures) VALUES ($1, $2, 1) \
         ON CONFLICT (key) DO UPDATE SET \
           failures = CASE WHEN throttle.window_start <= $3 THEN 1 ELSE throttle.failures + 1 END, \
           window_start = CASE WHEN throttle.window_start <= $3 THEN $2 \
                               WHEN throttle.failures + 1 = $4 THEN $2 \
                               ELSE throttle.window_start END \
         RETURNING failures, window_start",
    )
    .bind(key)
    .bind(now)
    .bind(now - window_seconds)
    .bind(limit)
    .fetch_one(ex)
    .await
}

/// Gives one attempt back (it succeeded, so it should not count against the others
/// sharing the counter).
pub async fn release<'e>(ex: impl Exec<'e>, key: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE throttle SET failures = failures - 1 WHERE key = $1 AND failures > 0")
        .bind(key)
        .execute(ex)
        .await
        .map(|_| ())
}

/// Attempts counted for `key` in the current window, and when that window started.
pub async fn attempts<'e>(
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

/// Deletes counters whose window started before `before`: they count nothing any more.
pub async fn sweep<'e>(ex: impl Exec<'e>, before: i64) -> sqlx::Result<u64> {
    sqlx::query("DELETE FROM throttle WHERE window_start < $1")
        .bind(before)
        .execute(ex)
        .await
        .map(|r| r.rows_affected())
}
