//! The devnet's clock: wall time plus an offset that `dev_increaseTime` moves forward, so
//! that tests and demos can let an hour of chain time pass in a moment. Every validator of a
//! devnet reads the same clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicU64>,
}

impl Clock {
    /// Milliseconds since the Unix epoch, plus the offset.
    pub fn now_ms(&self) -> u64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        wall + self.offset_ms.load(Ordering::Relaxed)
    }

    /// Moves the clock forward; returns the total offset.
    pub fn advance(&self, ms: u64) -> u64 {
        self.offset_ms.fetch_add(ms, Ordering::Relaxed) + ms
    }
}
