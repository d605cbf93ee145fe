//! Counters of API write requests per clock hour, shared by every node.

use super::Exec;

/// Counts one write for `key` in the window starting at `window_start` (a counter of an
/// earlier window starts again at one) and returns the writes counted in the window,
/// this one included. One statement, so concurrent writes on several nodes each get
/// their own count.
pub async fn charge<'e>(ex: impl Exec<'e>, key: &str, window_start: i64) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO api_write_budget (key, window_start, writes) VALUES ($1, $2, 1) \
         ON CONFLICT (key) DO UPDATE SET \
           writes = CASE WHEN api_write_budget.window_start = $2 THEN api_write_budget.writes + 1 ELSE 1 END, \
           window_start = $2 \
         RETURNING writes",
    )
    .bind(key)
    .bind(window_start)
    .fetch_one(ex)
    .await
}

/// Deletes the counters of windows that started before `window_start`.
pub async fn delete_before<'e>(ex: impl Exec<'e>, window_start: i64) -> sqlx::Result<u64> {
    sqlx::query("DELETE FROM api_write_budget WHERE window_start < $1")
        .bind(window_start)
        .execute(ex)
        .await
        .map(|r| r.rows_affected())
}
