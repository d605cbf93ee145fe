//! Time is injected so that expiry rules (sudo mode, token expiry, throttling windows)
//! can be tested without sleeping.

#[cfg(any(test, feature = "testkit"))]
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use time::OffsetDateTime;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> OffsetDateTime;

    /// Unix seconds, the unit every timestamp is stored in.
    fn unix(&self) -> i64 {
        self.now().unix_timestamp()
    }
}

#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// The system clock shifted by an offset that tests move forward.
#[cfg(any(test, feature = "testkit"))]
#[derive(Debug, Default)]
pub struct ShiftedClock {
    offset_seconds: AtomicI64,
    /// Unix seconds the clock stands still at (0: it runs with the system clock).
    frozen_at: AtomicI64,
}

#[cfg(any(test, feature = "testkit"))]
impl ShiftedClock {
    pub fn advance(&self, seconds: i64) {
        self.offset_seconds.fetch_add(seconds, Ordering::SeqCst);
    }

    /// Stops the clock where it is: from now on only `advance` moves it, so tests of
    /// exact boundaries do not depend on how long the machine takes.
    pub fn freeze(&self) {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        self.frozen_at.store(now, Ordering::SeqCst);
    }
}

#[cfg(any(test, feature = "testkit"))]
impl Clock for ShiftedClock {
    fn now(&self) -> OffsetDateTime {
        let base = match self.frozen_at.load(Ordering::SeqCst) {
            0 => OffsetDateTime::now_utc(),
            at => OffsetDateTime::from_unix_timestamp(at).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        };
        base + time::Duration::seconds(self.offset_seconds.load(Ordering::SeqCst))
    }
}

pub type SharedClock = Arc<dyn Clock>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifted_clock_moves_forward() {
        let clock = ShiftedClock::default();
        let before = clock.unix();
        clock.advance(600);
        assert!(clock.unix() >= before + 600);
    }

    #[test]
    fn a_frozen_clock_moves_only_when_advanced() {
        let clock = ShiftedClock::default();
        clock.freeze();
        let at = clock.unix();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(clock.unix(), at);
        clock.advance(59);
        assert_eq!(clock.unix(), at + 59);
    }
}
