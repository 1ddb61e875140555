//! Poll advice under a budget, and the presence rule that goes with it
//! (part of I3: an idle user is skipped at once; a user who follows the
//! advice is never idle).
//!
//! Pure functions of the line's state, so the proof obligations below are
//! checked directly by property tests (`queue::budget_tests`).
//!
//! # The budget
//! An event's `poll_budget_per_s` = B bounds the polls per second that the
//! advice asks of everyone in its line together. With `L` users in line and
//! `c(L) = (1 + ln L) / B` seconds per place:
//!
//! - waiting, at position `p`: `max(base(p), ⌈c(L) · p⌉)`, where `base` is
//!   the unbudgeted advice `clamp(min(10 ms · p, eta / 2), 1 s, 30 s)`.
//!   Expected polls/s = `Σ_{p=1..L} 1 / advice(p) ≤ Σ 1 / (c · p) = H_L / c
//!   ≤ (1 + ln L) / c = B`, whatever `L` (`H_L ≤ 1 + ln L`). Advice grows
//!   with the position: people near the front hear more often.
//! - pre-queue (unordered), with `s(L) = ⌈L / B⌉` seconds: while the next
//!   poll would still fall before opening, `max(clamp(until opening, 1 s,
//!   30 s), s)` — every user polls at most once per `s`, so at most `B`
//!   polls/s; once it would not, `until opening + offset(ticket)`, the
//!   offsets spread evenly over `[0, s]` by a hash of the join number, so
//!   the line's first polls after opening arrive at about `B`/s instead of
//!   all at the opening instant.
//!
//! `B ≥ admit_per_s · (1 + ln max_waiting)` (checked when the event is
//! created) makes `c · p ≤ p / admit_per_s`: the budget never tells anyone
//! to come back after the time their turn comes at the configured rate. The
//! default, `max(20 000, 2 × that floor)`, keeps it at half of that, so a
//! follower hears at least twice on the way to the front. Admitted users
//! (at most `capacity`) and ended tickets are outside the budget.
//!
//! Live streams are outside it too: a stream is woken at most twice a
//! second, streams are capped by `--max-streams`, and a push costs no
//! request.
//!
//! # Presence
//! A status read or rejoin at `t` that advises `P` sets the ticket's
//! presence deadline to `t + max(idle, P + ⅔ idle)` (`idle` =
//! `idle_timeout_s`; the deadline never moves back). A user in line is
//! idle — skipped, dropped — from that deadline on. So a user who polls
//! within `P` (plus up to ⅔ of the idle timeout of lateness) is never idle,
//! however long the advice; and while the advice is at most `idle / 3`, as
//! it always is in a short line, the rule is exactly "not heard from for
//! `idle_timeout_s`". A join sets the deadline `t + idle` before its own
//! advice extends it. A restore gives everyone in line the deadline
//! `now + grace(bound(peak))`: the longest advice the room can have given
//! in its life, so no crash or restart makes a follower idle.

use super::{POLL_MAX_MS, POLL_MIN_MS, POLL_MS_PER_POSITION};

/// Milliseconds of advice per place in a line of `line` users (`c(L)`).
#[inline]
fn ms_per_place(line: u64, budget_per_s: u32) -> f64 {
    let l = line.max(1) as f64;
    (1.0 + l.ln()) * 1000.0 / f64::from(budget_per_s.max(1))
}

#[inline]
fn ceil_ms(x: f64) -> u64 {
    // Saturating: `as` maps out-of-range floats to the nearest bound.
    x.ceil() as u64
}

/// Advice for a waiting user at `position` (1 = next in) in a line of
/// `line` users.
/// `cap_ms` is the presence cap `max(idle / 3, 100 ms)` on the unbudgeted
/// advice.
pub fn waiting(
    position: u64,
    line: u64,
    eta_s: Option<u64>,
    budget_per_s: u32,
    cap_ms: u64,
) -> u64 {
    let by_pos = position.saturating_mul(POLL_MS_PER_POSITION);
    let by_eta = eta_s.map_or(u64::MAX, |e| e.saturating_mul(500));
    let base = by_pos
        .min(by_eta)
        .clamp(POLL_MIN_MS, POLL_MAX_MS)
        .min(cap_ms);
    let spread = ceil_ms(ms_per_place(line, budget_per_s) * position as f64);
    base.max(spread)
}

/// `s(L)` in ms: the interval at which every one of `line` unordered users
/// may poll within the budget.
#[inline]
fn share_ms(line: u64, budget_per_s: u32) -> u64 {
    (line.saturating_mul(1000)).div_ceil(u64::from(budget_per_s.max(1)))
}

/// A fixed, even spread of join numbers over `[0, span]` (Fibonacci
/// hashing: consecutive joins land far apart).
#[inline]
fn offset(uid: u32, span: u64) -> u64 {
    let h = u64::from(uid).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // The high 32 bits, scaled to the span: uniform and no modulo bias.
    ((h >> 32) * (span + 1)) >> 32
}

/// Advice for a user in the pre-queue, `until_open_ms` before opening, in a
/// line of `line` users; `uid` is the ticket's join number, `cap_ms` the
/// presence cap.
pub fn prequeue(until_open_ms: u64, line: u64, uid: u32, budget_per_s: u32, cap_ms: u64) -> u64 {
    let share = share_ms(line, budget_per_s);
    let next = until_open_ms
        .clamp(POLL_MIN_MS, POLL_MAX_MS)
        .min(cap_ms)
        .max(share);
    if next < until_open_ms || share <= 1 {
        return next;
    }
    // The next poll falls at or after opening: spread it over `[0, share]`.
    until_open_ms
        .saturating_add(offset(uid, share))
        .max(POLL_MIN_MS)
}

/// The presence deadline a read at `now_ms` that advised `advice_ms` sets.
#[inline]
pub fn deadline(now_ms: u64, advice_ms: u64, idle_ms: u64) -> u64 {
    now_ms.saturating_add(grace(advice_ms, idle_ms))
}

/// `max(idle, advice + ⅔ idle)`.
#[inline]
pub fn grace(advice_ms: u64, idle_ms: u64) -> u64 {
    idle_ms.max(advice_ms.saturating_add(idle_ms / 3 * 2))
}

/// The longest advice a room whose line never held more than `peak` users
/// can have given to anyone in line (`cap_ms`: the presence cap).
pub fn bound(peak: u64, budget_per_s: u32, cap_ms: u64) -> u64 {
    let by_place = ceil_ms(ms_per_place(peak, budget_per_s) * peak.max(1) as f64);
    let share = share_ms(peak, budget_per_s);
    let pre = if share <= 1 { 0 } else { share };
    POLL_MAX_MS
        .min(cap_ms)
        .max(by_place)
        .max(share)
        .saturating_add(pre)
}

/// The least budget an event may set: `⌈admit_per_s · (1 + ln max_waiting)⌉`.
pub fn min_budget(admit_per_s: u32, max_waiting: u32) -> u64 {
    let l = f64::from(max_waiting.max(1));
    ceil_ms(f64::from(admit_per_s) * (1.0 + l.ln()))
}

/// The budget of an event that names none.
pub const DEFAULT_BUDGET_PER_S: u64 = 20_000;

/// `max(20 000, 2 × min_budget)`.
pub fn default_budget(admit_per_s: u32, max_waiting: u32) -> u64 {
    DEFAULT_BUDGET_PER_S.max(min_budget(admit_per_s, max_waiting).saturating_mul(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The presence cap of the default 120 s idle timeout.
    const CAP: u64 = 40_000;

    #[test]
    fn short_lines_keep_the_unbudgeted_advice() {
        // 5 000 in line, default budget: nothing changes below 30 s.
        let b = 20_000;
        assert_eq!(waiting(1, 5_000, None, b, CAP), POLL_MIN_MS);
        assert_eq!(waiting(500, 5_000, None, b, CAP), 5_000);
        assert_eq!(waiting(5_000, 5_000, None, b, CAP), POLL_MAX_MS);
        assert_eq!(waiting(500, 5_000, Some(4), b, CAP), 2_000, "eta / 2");
    }

    #[test]
    fn long_lines_spread_the_back() {
        // 10 M in line at 20 000 polls/s: the back polls about every 2.4 h.
        let b = 20_000;
        let l = 10_000_000;
        let back = waiting(l, l, None, b, CAP);
        let c = (1.0 + (l as f64).ln()) * 1000.0 / 20_000.0;
        assert_eq!(back, (c * l as f64).ceil() as u64);
        assert!(back > 8_000_000 && back < 9_000_000, "{back}");
        assert!(waiting(1, l, None, b, CAP) <= waiting(1000, l, None, b, CAP));
        assert!(waiting(100_000, l, None, b, CAP) < back);
    }

    #[test]
    fn offsets_cover_the_span_evenly() {
        let span = 10_000u64;
        let mut buckets = [0u32; 10];
        for uid in 0..100_000u32 {
            let o = offset(uid, span);
            assert!(o <= span);
            buckets[(o * 10 / (span + 1)) as usize] += 1;
        }
        for b in buckets {
            assert!((9_000..=11_000).contains(&b), "{buckets:?}");
        }
        assert_eq!(offset(12345, 0), 0);
    }

    #[test]
    fn prequeue_far_from_opening_polls_once_per_share() {
        // 1 M in the pre-queue, an hour before opening, 20 000/s: every 50 s.
        assert_eq!(prequeue(3_600_000, 1_000_000, 7, 20_000, CAP), 50_000);
        // A short pre-queue: 30 s, as before.
        assert_eq!(prequeue(3_600_000, 1_000, 7, 20_000, CAP), POLL_MAX_MS);
        // Near opening: at opening plus the ticket's offset, never < 1 s.
        let p = prequeue(10_000, 1_000_000, 7, 20_000, CAP);
        assert!((10_000..=60_000).contains(&p), "{p}");
        assert!(prequeue(0, 10, 7, 20_000, CAP) >= POLL_MIN_MS);
    }

    #[test]
    fn grace_is_the_idle_timeout_while_advice_is_short() {
        let idle = 120_000;
        assert_eq!(grace(40_000, idle), idle);
        assert_eq!(grace(1_000, idle), idle);
        assert_eq!(grace(3_600_000, idle), 3_600_000 + 80_000);
        assert_eq!(deadline(5, 1_000, idle), 5 + idle);
        assert_eq!(grace(u64::MAX, idle), u64::MAX);
    }

    #[test]
    fn floors_and_defaults() {
        // 200/s and 5 M: 200 × (1 + ln 5e6) = 3 285.
        assert_eq!(min_budget(200, 5_000_000), 3_285);
        assert_eq!(default_budget(200, 5_000_000), 20_000);
        assert_eq!(default_budget(2_000, 5_000_000), 65_700);
        assert_eq!(min_budget(1, 1), 1);
    }
}
