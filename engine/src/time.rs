//! Time as the engine sees it: a value passed in, never read from a clock.
//!
//! Owns part of I4: every operation receives `now`, so expiry is decided at
//! exactly the instant the caller names, and tests move time by hand. The
//! engine counts milliseconds and knows no calendar: RFC 3339 is written and
//! read at the server's edge (`boxoffice::wire::time`).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Milliseconds since the Unix epoch (UTC). The engine never reads a clock;
/// callers pass `now` into every operation.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub const ZERO: Timestamp = Timestamp(0);

    pub const fn from_millis(ms: u64) -> Self {
        Timestamp(ms)
    }

    pub const fn from_secs(s: u64) -> Self {
        Timestamp(s.saturating_mul(1000))
    }

    pub const fn as_millis(self) -> u64 {
        self.0
    }

    pub const fn plus_ms(self, ms: u64) -> Self {
        Timestamp(self.0.saturating_add(ms))
    }

    pub const fn plus_secs(self, s: u64) -> Self {
        self.plus_ms(s.saturating_mul(1000))
    }

    pub const fn minus_ms(self, ms: u64) -> Self {
        Timestamp(self.0.saturating_sub(ms))
    }

    /// Milliseconds from `earlier` to `self`, zero if `earlier` is later.
    pub const fn ms_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// Milliseconds since the epoch, for messages and logs; calendars belong to
/// the edge (the server writes RFC 3339).
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ms after the Unix epoch", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Timestamp::from_secs(2);
        assert_eq!(t.plus_ms(5).as_millis(), 2_005);
        assert_eq!(t.minus_ms(5_000), Timestamp::ZERO);
        assert_eq!(Timestamp(u64::MAX).plus_secs(1), Timestamp(u64::MAX));
        assert_eq!(t.ms_since(t.plus_ms(1)), 0);
        assert_eq!(t.to_string(), "2000 ms after the Unix epoch");
    }
}
