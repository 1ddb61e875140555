//! I7, capacity and rate: never more than `capacity` sessions at once, never
//! more than `admit_per_s` admissions in any `[t, t + 1000 ms)`.
//!
//! `capacity` with `boxoffice:out` is exact: a session runs from its
//! `queue.admitted` to its `queue.ended`, cut at `admitted + session_ttl`
//! (an expiry frees the slot at that instant, before the sweep journals
//! it). Without it, a session is `[iat, end)` where `end` is the earlier of
//! the pass's `exp` and the **send** time of the VU's complete/leave: the
//! server frees the slot no earlier than it receives that request, so every
//! interval is a lower bound of the true one and an overlap found is real
//! (never a false alarm; whole-ms clocks on both sides floor alike). Every
//! sampled `active` must also be within `capacity`.
//!
//! `admission_rate` slides an exact window over the sorted admission
//! instants (out `queue.admitted` or pass `iat`, whole ms as the server's
//! sliding log keeps them): the most admissions in any window starting at an
//! admission, which is the most in any window at all.

use super::{admission_times, finish, Source, Truth};
use crate::model::RunData;
use std::collections::HashMap;

/// Session intervals `[start, end)` in Unix ms, and where they came from.
pub(crate) fn sessions(run: &RunData) -> (Vec<(u64, u64)>, Source) {
    let ttl_ms = u64::from(run.setup.session_ttl_s) * 1000;
    let cut = |start: u64, end: u64| {
        if ttl_ms > 0 {
            end.min(start.saturating_add(ttl_ms))
        } else {
            end
        }
    };
    if run.out.is_some() {
        let mut open: HashMap<u32, u64> = HashMap::new();
        let mut done = Vec::new();
        for e in run.out.iter().flatten() {
            let Some(join) = e.join else { continue };
            match e.kind.as_str() {
                "queue.admitted" => {
                    open.insert(join, e.at_ms);
                }
                // An end without an admission is a place in line given up.
                "queue.ended" => {
                    if let Some(start) = open.remove(&join) {
                        done.push((start, cut(start, e.at_ms)));
                    }
                }
                _ => {}
            }
        }
        done.extend(open.into_values().map(|s| (s, cut(s, u64::MAX))));
        (done, Source::Out)
    } else {
        let v = run
            .vus
            .iter()
            .filter_map(|v| {
                let a = v.admitted?;
                let end = v.ended.map_or(a.exp_ms, |e| e.sent_ms.min(a.exp_ms));
                Some((a.iat_ms, end))
            })
            .collect();
        (v, Source::Client)
    }
}

/// The most intervals overlapping at one instant, and the first such instant.
/// Half-open: an interval ending at `t` and one starting at `t` do not overlap.
pub(crate) fn peak_overlap(intervals: &[(u64, u64)]) -> (u64, Option<u64>) {
    let mut edges: Vec<(u64, i8)> = Vec::with_capacity(intervals.len() * 2);
    for &(s, e) in intervals.iter().filter(|(s, e)| e > s) {
        edges.push((s, 1));
        edges.push((e, -1));
    }
    // Ends (-1) sort before starts (+1) at the same instant.
    edges.sort_unstable();
    let (mut now, mut peak, mut at) = (0i64, 0i64, None);
    for (t, d) in edges {
        now += i64::from(d);
        if now > peak {
            peak = now;
            at = Some(t);
        }
    }
    (u64::try_from(peak).unwrap_or(0), at)
}

pub(super) fn capacity(run: &RunData) -> Truth {
    let cap = u64::from(run.setup.capacity);
    let (intervals, source) = sessions(run);
    let (peak, at) = peak_overlap(&intervals);
    let sampled_peak = run.samples.iter().map(|s| s.active).max().unwrap_or(0);
    let over_samples = run.samples.iter().filter(|s| s.active > cap).count();
    let mut problems = Vec::new();
    if peak > cap {
        let at = at.map_or(String::new(), |t| {
            format!(" at +{} ms", t.saturating_sub(run.meta.started_ms))
        });
        problems.push(format!(
            "{peak} sessions overlapped{at} with capacity {cap}"
        ));
    }
    if over_samples > 0 {
        problems.push(format!(
            "{over_samples} samples showed more than {cap} active (peak {sampled_peak})"
        ));
    }
    let detail = format!(
        "peak {peak} of capacity {cap} over {} sessions ({}); sampled peak {sampled_peak}",
        intervals.len(),
        source.label()
    );
    finish("capacity", detail, problems)
}

/// The most admissions in any `[t, t + 1000 ms)`, and the first such `t`.
pub(crate) fn peak_window(sorted_ms: &[u64]) -> (u64, Option<u64>) {
    let (mut best, mut at, mut j) = (0usize, None, 0usize);
    for (i, &t) in sorted_ms.iter().enumerate() {
        j = j.max(i);
        while j < sorted_ms.len() && sorted_ms[j] - t < 1000 {
            j += 1;
        }
        if j - i > best {
            best = j - i;
            at = Some(t);
        }
    }
    (best as u64, at)
}

pub(super) fn rate(run: &RunData) -> Truth {
    let limit = u64::from(run.setup.admit_per_s);
    let (times, source) = admission_times(run);
    let (peak, at) = peak_window(&times);
    let mut problems = Vec::new();
    if peak > limit {
        let at = at.map_or(String::new(), |t| {
            format!(" from +{} ms", t.saturating_sub(run.meta.started_ms))
        });
        problems.push(format!(
            "{peak} admissions in one second{at}, admit_per_s {limit}"
        ));
    }
    let detail = format!(
        "at most {peak} of admit_per_s {limit} in any 1000 ms window, {} admissions ({})",
        times.len(),
        source.label()
    );
    finish("admission_rate", detail, problems)
}

/// Admissions per whole second of the run from `start_ms` (for the
/// report): every second from the first to the last with one, empty ones 0,
/// so a chart of it drops to zero where nobody was let in.
pub(crate) fn per_second(sorted_ms: &[u64], start_ms: u64) -> Vec<(u32, u64)> {
    let second = |t: u64| u32::try_from(t.saturating_sub(start_ms) / 1000).unwrap_or(u32::MAX);
    let (Some(&first), Some(&last)) = (sorted_ms.first(), sorted_ms.last()) else {
        return Vec::new();
    };
    let (first, last) = (second(first), second(last));
    // A run is minutes long; a clock far off must not allocate without bound.
    if last - first > 1_000_000 {
        return Vec::new();
    }
    let mut v: Vec<(u32, u64)> = (first..=last).map(|s| (s, 0)).collect();
    for &t in sorted_ms {
        if let Some(slot) = v.get_mut((second(t) - first) as usize) {
            slot.1 += 1;
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use crate::model::OutEntry;

    #[test]
    fn a_clean_run_passes() {
        for run in [fixture::run(10), fixture::with_out(fixture::run(10))] {
            let t = capacity(&run);
            assert!(t.passed, "{}", t.detail);
            let t = rate(&run);
            assert!(t.passed, "{}", t.detail);
            assert!(
                t.detail.starts_with("at most 5 of admit_per_s 5"),
                "{}",
                t.detail
            );
        }
    }

    #[test]
    fn capacity_plus_one_overlapping_sessions_fail() {
        let mut run = fixture::run(6);
        // VUs 0..3 all in at once: three sessions, capacity 2.
        for v in run.vus.iter_mut().take(3) {
            let a = v.admitted.as_mut().expect("admitted");
            a.iat_ms = fixture::T0 + 10_000;
            v.ended.as_mut().expect("ended").sent_ms = a.iat_ms + 100;
        }
        let t = capacity(&run);
        assert!(!t.passed);
        assert!(
            t.detail.starts_with("3 sessions overlapped"),
            "{}",
            t.detail
        );
    }

    #[test]
    fn sessions_touching_end_to_start_do_not_overlap() {
        assert_eq!(peak_overlap(&[(0, 10), (10, 20), (20, 30)]).0, 1);
        assert_eq!(peak_overlap(&[(0, 10), (9, 20), (5, 6)]), (2, Some(5)));
        assert_eq!(peak_overlap(&[(5, 5), (7, 3)]), (0, None));
        assert_eq!(peak_overlap(&[]), (0, None));
    }

    #[test]
    fn out_sessions_are_cut_at_the_ttl() {
        let mut run = fixture::with_out(fixture::run(3));
        run.setup.session_ttl_s = 1;
        // Sessions whose end was journaled late (an expiry sweep): the slot
        // was free at admitted + ttl, so no overlap is counted past it.
        for e in run.out.as_mut().expect("out").iter_mut() {
            if e.kind == "queue.ended" {
                e.at_ms += 10_000;
            }
        }
        let (iv, src) = sessions(&run);
        assert_eq!(src, Source::Out);
        assert!(iv.iter().all(|(s, e)| e - s == 1000), "{iv:?}");
        // 200 ms apart, 1000 ms long: 5 at once, capacity 2.
        assert!(!capacity(&run).passed);
    }

    #[test]
    fn a_sample_over_capacity_fails() {
        let mut run = fixture::run(3);
        run.samples[1].active = 3;
        let t = capacity(&run);
        assert!(!t.passed);
        assert!(t.detail.contains("samples showed"), "{}", t.detail);
    }

    #[test]
    fn admit_per_s_plus_one_in_a_window_fails() {
        let mut run = fixture::run(10);
        // Six admissions within 999 ms.
        for (k, v) in run.vus.iter_mut().take(6).enumerate() {
            let a = v.admitted.as_mut().expect("admitted");
            a.iat_ms = fixture::T0 + 10_000 + 199 * k as u64;
            a.exp_ms = a.iat_ms + 60_000;
            v.ended.as_mut().expect("ended").sent_ms = a.iat_ms + 100;
        }
        let t = rate(&run);
        assert!(!t.passed);
        assert!(
            t.detail.starts_with("6 admissions in one second"),
            "{}",
            t.detail
        );
        // The same in the out record.
        let mut run = fixture::with_out(fixture::run(10));
        let extra = OutEntry {
            id: "1-0-900-0".into(),
            kind: "queue.admitted".into(),
            at_ms: fixture::T0 + 10_500,
            join: Some(900),
            user: None,
            seats: Vec::new(),
            claim: None,
            reason: None,
        };
        run.out.as_mut().expect("out").push(extra);
        assert!(!rate(&run).passed);
    }

    #[test]
    fn windows_are_half_open() {
        assert_eq!(peak_window(&[0, 999, 1000, 1999]), (2, Some(0)));
        assert_eq!(peak_window(&[0, 0, 0]), (3, Some(0)));
        assert_eq!(peak_window(&[]), (0, None));
        assert_eq!(
            peak_window(&[u64::MAX - 1, u64::MAX]),
            (2, Some(u64::MAX - 1))
        );
    }

    #[test]
    fn per_second_buckets() {
        assert_eq!(
            per_second(&[1000, 1500, 2999, 5000], 1000),
            [(0, 2), (1, 1), (2, 0), (3, 0), (4, 1)]
        );
        assert_eq!(per_second(&[], 0), []);
        assert_eq!(per_second(&[0, u64::MAX], 0), []);
    }
}
