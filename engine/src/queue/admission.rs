//! Admission pacing and admitted sessions (owns I7, and the pass half of I4).
//!
//! Two gates, both must agree before anyone is let in:
//! - **GCRA** spacing: one admission every `T = ceil(1e9 / admit_per_s)` ns
//!   with a burst tolerance of 100 ms, so admissions spread smoothly over the
//!   ticks instead of arriving as one burst a second;
//! - an exact **sliding log** of the admission instants of the last second:
//!   at most `admit_per_s` instants in `(now - 1000 ms, now]`. This is the hard
//!   cap, so no window `[t, t + 1000 ms)` ever holds more than `admit_per_s`
//!   admissions whatever the tick cadence.
//!
//! Each admission also gets a GCRA *slot time* (`max(tat, now)`); the ETA uses
//! the mean spacing of the last [`ETA_SAMPLES`] slot times. While admission is
//! rate-bound the slots are exactly `T` apart, so the ETA of a waiting user
//! only falls as the line moves.
//!
//! Sessions are kept by uid and by expiry; a session is over at `expires_at`
//! for every read at once, before any sweep journals it.

use super::Admission;
use crate::time::Timestamp;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// GCRA burst tolerance.
pub(crate) const BURST_NS: u64 = 100_000_000;
/// Length of the rate window.
pub(crate) const WINDOW_MS: u64 = 1000;
/// Admissions the ETA is measured over.
pub(crate) const ETA_SAMPLES: usize = 64;

#[inline]
pub(crate) fn spacing_ns(admit_per_s: u32) -> u64 {
    1_000_000_000u64.div_ceil(u64::from(admit_per_s.max(1)))
}

#[inline]
fn ns(ms: u64) -> u64 {
    ms.saturating_mul(1_000_000)
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RateGate {
    /// GCRA theoretical arrival time, ns since the epoch.
    pub(crate) tat_ns: u64,
    /// Admission instants (ms) of the last second, oldest first.
    pub(crate) recent: VecDeque<u64>,
    /// GCRA slot times (ns) of the last admissions, oldest first.
    pub(crate) slots: VecDeque<u64>,
}

impl RateGate {
    /// May one more user be admitted at `now_ms`?
    pub(crate) fn allows(&self, now_ms: u64, admit_per_s: u32) -> bool {
        if let Some(&last) = self.recent.back() {
            // The clock went backwards: wait rather than reorder instants.
            if now_ms < last {
                return false;
            }
        }
        if self.tat_ns > ns(now_ms).saturating_add(BURST_NS) {
            return false;
        }
        let old = self
            .recent
            .partition_point(|&a| a.saturating_add(WINDOW_MS) <= now_ms);
        ((self.recent.len() - old) as u64) < u64::from(admit_per_s)
    }

    /// Record an admission at `at_ms`.
    pub(crate) fn record(&mut self, at_ms: u64, admit_per_s: u32) {
        let slot = self.tat_ns.max(ns(at_ms));
        self.tat_ns = slot.saturating_add(spacing_ns(admit_per_s));
        self.slots.push_back(slot);
        while self.slots.len() > ETA_SAMPLES {
            self.slots.pop_front();
        }
        while self
            .recent
            .front()
            .is_some_and(|&a| a.saturating_add(WINDOW_MS) <= at_ms)
        {
            self.recent.pop_front();
        }
        self.recent.push_back(at_ms);
    }

    pub(crate) fn clear_slots(&mut self) {
        self.slots.clear();
    }

    /// `ceil(position × mean slot spacing)` in seconds, if two slots are known.
    pub(crate) fn eta_s(&self, position: u64) -> Option<u64> {
        let (first, last) = (*self.slots.front()?, *self.slots.back()?);
        let gaps = self.slots.len() as u128 - 1;
        if gaps == 0 {
            return None;
        }
        let span = u128::from(last.saturating_sub(first));
        let eta = (u128::from(position) * span).div_ceil(gaps * 1_000_000_000);
        Some(u64::try_from(eta).unwrap_or(u64::MAX))
    }
}

/// Admitted sessions, by uid and by expiry.
#[derive(Clone, Debug, Default)]
pub(crate) struct Sessions {
    by_uid: BTreeMap<u32, Admission>,
    by_expiry: BTreeSet<(Timestamp, u32)>,
}

impl Sessions {
    pub(crate) fn insert(&mut self, uid: u32, a: Admission) {
        if let Some(old) = self.by_uid.insert(uid, a) {
            self.by_expiry.remove(&(old.expires_at, uid));
        }
        self.by_expiry.insert((a.expires_at, uid));
    }

    pub(crate) fn remove(&mut self, uid: u32) {
        if let Some(a) = self.by_uid.remove(&uid) {
            self.by_expiry.remove(&(a.expires_at, uid));
        }
    }

    pub(crate) fn get(&self, uid: u32) -> Option<&Admission> {
        self.by_uid.get(&uid)
    }

    /// Sessions not over at `now` (O(log n + sessions over but not yet swept)).
    pub(crate) fn live(&self, now: Timestamp) -> u64 {
        let over = self.by_expiry.range(..=(now, u32::MAX)).count();
        (self.by_uid.len() - over) as u64
    }

    /// Sessions over at `now`, soonest first.
    pub(crate) fn due(&self, now: Timestamp) -> Vec<u32> {
        self.by_expiry
            .range(..=(now, u32::MAX))
            .map(|&(_, uid)| uid)
            .collect()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &Admission)> {
        self.by_uid.iter().map(|(&u, a)| (u, a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Admission instants with ticks `max_gap` ms apart at most (random).
    fn run(rate: u32, max_gap: u64, steps: usize) -> Vec<u64> {
        let mut g = RateGate::default();
        let mut at = Vec::new();
        let mut now = 1_000_000u64;
        let mut x = 99u64;
        for _ in 0..steps {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            now += (x >> 33) % (max_gap + 1);
            while g.allows(now, rate) {
                g.record(now, rate);
                at.push(now);
            }
        }
        at
    }

    #[test]
    fn log_caps_any_window_whatever_the_cadence() {
        for (rate, gap) in [
            (1, 300),
            (7, 300),
            (7, 1500),
            (200, 50),
            (200, 137),
            (5000, 20),
        ] {
            let at = run(rate, gap, 3000);
            let r = rate as usize;
            for i in 0..at.len().saturating_sub(r) {
                assert!(
                    at[i + r] - at[i] >= 1000,
                    "rate {rate}: window at {}",
                    at[i]
                );
            }
        }
    }

    #[test]
    fn long_run_rate_is_the_configured_one_at_tick_cadence() {
        for rate in [1u32, 7, 200, 5000] {
            let at = run(rate, 50, 20_000);
            let secs = (at[at.len() - 1] - at[0]) as f64 / 1000.0;
            let got = at.len() as f64 / secs;
            assert!(
                (got - rate as f64).abs() <= rate as f64 * 0.02 + 0.1,
                "rate {rate}: {got}"
            );
        }
    }

    #[test]
    fn eta_uses_slot_spacing() {
        let mut g = RateGate::default();
        assert_eq!(g.eta_s(10), None);
        g.record(0, 4);
        assert_eq!(g.eta_s(10), None);
        g.record(0, 4);
        assert_eq!(g.eta_s(10), Some(3)); // 10 × 250 ms
        assert_eq!(g.eta_s(0), Some(0));
    }

    #[test]
    fn sessions_expire_on_read() {
        let mut s = Sessions::default();
        let a = |e| Admission {
            admitted_at: Timestamp(0),
            expires_at: Timestamp(e),
        };
        s.insert(1, a(100));
        s.insert(2, a(50));
        assert_eq!(s.live(Timestamp(49)), 2);
        assert_eq!(s.live(Timestamp(50)), 1);
        assert_eq!(s.due(Timestamp(100)), vec![2, 1]);
        s.remove(2);
        assert_eq!(s.live(Timestamp(50)), 1);
    }
}
