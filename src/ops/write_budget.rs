//! The API's hourly write budget: each user (an automation token counts as its own
//! user) may make `Settings::api_writes_per_hour` write requests per clock hour, as
//! Fastly limits its API. Counted in the database, so several nodes share one budget.

use crate::db::write_budget_store;
use crate::domain::ids::{TokenId, UserId};

use super::Context;

const WINDOW_SECONDS: i64 = 3600;

/// Whose budget a write is charged to.
#[derive(Debug, Clone, Copy)]
pub enum Spender<'a> {
    User(&'a UserId),
    /// An automation token belongs to no one: it has a budget of its own.
    Token(&'a TokenId),
}

impl Spender<'_> {
    fn key(self) -> String {
        match self {
            Spender::User(id) => format!("user:{id}"),
            Spender::Token(id) => format!("token:{id}"),
        }
    }
}

/// The budget after one write was charged to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub limit: i64,
    /// Writes counted in this window, the one just charged included.
    pub used: i64,
    /// When the window ends and the budget is whole again (Unix seconds).
    pub reset_at: i64,
}

impl Budget {
    pub fn remaining(&self) -> i64 {
        (self.limit - self.used).max(0)
    }

    /// Whether the write just charged went past the budget (and must be refused).
    pub fn exceeded(&self) -> bool {
        self.used > self.limit
    }
}

/// The clock hour `now` falls in: the same window on every node.
pub fn window_start(now: i64) -> i64 {
    now - now.rem_euclid(WINDOW_SECONDS)
}

/// Charges one write to `spender`. Refused writes are counted too, so hammering past
/// the limit does not earn anything back.
pub async fn charge(ctx: &Context, spender: Spender<'_>) -> sqlx::Result<Budget> {
    let start = window_start(ctx.clock.unix());
    let used = write_budget_store::charge(&ctx.db.pool, &spender.key(), start).await?;
    Ok(Budget {
        limit: ctx.settings.api_writes_per_hour,
        used,
        reset_at: start + WINDOW_SECONDS,
    })
}

/// Deletes the counters of past hours (housekeeping).
pub async fn sweep(ctx: &Context) -> sqlx::Result<u64> {
    write_budget_store::delete_before(&ctx.db.pool, window_start(ctx.clock.unix())).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_clock_hours() {
        assert_eq!(window_start(1_800_000_000), 1_800_000_000);
        assert_eq!(window_start(1_800_000_000 + 3599), 1_800_000_000);
        assert_eq!(window_start(1_800_000_000 + 3600), 1_800_003_600);
    }

    #[test]
    fn the_last_allowed_write_leaves_zero() {
        let budget = |used| Budget {
            limit: 3,
            used,
            reset_at: 0,
        };
        assert_eq!((budget(1).remaining(), budget(1).exceeded()), (2, false));
        assert_eq!((budget(3).remaining(), budget(3).exceeded()), (0, false));
        assert_eq!((budget(4).remaining(), budget(4).exceeded()), (0, true));
    }
}
