//! The wall clock, behind a port so tests can pin time.

use chrono::{DateTime, SubsecRound, Utc};

use crate::ports::Clock;

/// The real clock. Timestamps are truncated to microseconds, the precision every store keeps,
/// so a value read back equals the value written.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}
