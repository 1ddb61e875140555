//! The truth checks: every promise of the contract, judged from a run's
//! recorded facts. A violated truth fails the run.
//!
//! Where the facts come from: when the run read `boxoffice:out`
//! (`RunData::out`), that is the server's own exact record of outcomes (each
//! one there iff it is durable, in journal order) and the checks use it;
//! otherwise they use what the virtual users (VUs) recorded and the final
//! readback. Checks built on client timestamps are arranged so that clock
//! granularity and network delay can only make them more lenient, never
//! raise a false alarm (each module says how).
//!
//! | truth | module | promise |
//! |-------|--------|---------|
//! | `seats_sold_once` | `seats` | I1: no seat sold twice |
//! | `coupon_conservation` | `coupons` | I2: `issued + remaining == stock`, `per_user` |
//! | `capacity` | `admission` | I7: never more than `capacity` sessions |
//! | `admission_rate` | `admission` | I7: never more than `admit_per_s` in any second |
//! | `fifo`, `positions_never_rose` | `order` | I3: nobody overtaken, the draw as published |
//! | `rejoin_keeps_place`, `idle_users_dropped` | `presence` | tickets and presence |
//! | `nothing_lost` | `seats` | I6: nothing acknowledged is lost |
//!
//! The [`measures`] (Kendall τ, ETA honesty, poll load, time to sell out,
//! errors) are reported, not judged.

mod admission;
mod coupons;
pub mod kendall;
pub mod measures;
mod order;
mod presence;
mod seats;

#[cfg(test)]
pub(crate) mod fixture;

use crate::model::{Op, OutEntry, RunData};
use serde::{Deserialize, Serialize};
use std::fmt::Display;

pub use kendall::{kendall_tau_b, Kendall};
pub use measures::{EtaDecile, Measures};

/// One promise, judged.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Truth {
    /// Short stable name (`seats_sold_once`, `coupon_conservation`, …).
    pub name: String,
    pub passed: bool,
    /// One sentence with the numbers behind the verdict.
    pub detail: String,
}

impl Truth {
    fn new(name: &str, passed: bool, detail: impl Into<String>) -> Truth {
        Truth {
            name: name.to_owned(),
            passed,
            detail: detail.into(),
        }
    }
}

/// All truths of a run and the measurements that are reported, not judged.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Verdict {
    pub truths: Vec<Truth>,
    /// Named measurements (Kendall τ, overtakes, ETA error per decile, poll
    /// load per waiting user …) for the report: the fields of [`Measures`].
    pub measures: serde_json::Map<String, serde_json::Value>,
}

impl Verdict {
    /// True when every truth held.
    pub fn passed(&self) -> bool {
        self.truths.iter().all(|t| t.passed)
    }
}

/// Judges a run. Never panics: an empty run is judged too (every truth holds
/// vacuously and says so in its numbers).
pub fn check(run: &RunData) -> Verdict {
    let order = order::analyse(run);
    let truths = vec![
        seats::sold_once(run),
        coupons::conservation(run),
        admission::capacity(run),
        admission::rate(run),
        order.truth(),
        order::positions_never_rose(run),
        presence::rejoin_keeps_place(run),
        presence::idle_users_dropped(run),
        seats::nothing_lost(run),
    ];
    let measures = measures::measure(run, &order);
    Verdict {
        truths,
        measures: measures.into_map(),
    }
}

/// Where a check's facts came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Out,
    Client,
}

impl Source {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Source::Out => "boxoffice:out",
            Source::Client => "client records",
        }
    }
}

/// The out entries of one type, in stream order (none without `--redis`).
pub(crate) fn out_of<'a>(run: &'a RunData, kind: &'a str) -> impl Iterator<Item = &'a OutEntry> {
    run.out.iter().flatten().filter(move |e| e.kind == kind)
}

/// Admission instants (Unix ms, sorted): the out record's `queue.admitted`
/// when the run has one, else the `iat` of every pass a VU received.
pub(crate) fn admission_times(run: &RunData) -> (Vec<u64>, Source) {
    let (mut times, source): (Vec<u64>, Source) = if run.out.is_some() {
        (
            out_of(run, "queue.admitted").map(|e| e.at_ms).collect(),
            Source::Out,
        )
    } else {
        (
            run.vus
                .iter()
                .filter_map(|v| v.admitted.map(|a| a.iat_ms))
                .collect(),
            Source::Client,
        )
    };
    times.sort_unstable();
    (times, source)
}

/// Admissions per whole second of the run, `(t_s, count)`, from the same
/// source the checks use (for the report's chart).
pub(crate) fn admissions_per_second(run: &RunData) -> Vec<(u32, u64)> {
    admission::per_second(&admission_times(run).0, run.meta.started_ms)
}

/// Requests of these operations that failed in transport (status 0: `io`,
/// `timeout`): their effect on the server is unknown, so counts the client
/// keeps may differ from the server's by at most this many.
pub(crate) fn transport_failures(run: &RunData, ops: &[Op]) -> u64 {
    total(
        run.errors
            .iter()
            .filter(|e| e.status == 0 && ops.contains(&e.op))
            .map(|e| e.count),
    )
}

/// The truth: passed iff no problem; the detail is the problems (if any)
/// followed by the numbers.
pub(crate) fn finish(name: &str, detail: String, problems: Vec<String>) -> Truth {
    if problems.is_empty() {
        Truth::new(name, true, detail)
    } else {
        Truth::new(name, false, format!("{}; {detail}", problems.join("; ")))
    }
}

/// A sum that saturates: counts come from the client and the server, and a
/// corrupt one must make a check fail, not the checker panic.
pub(crate) fn total(it: impl IntoIterator<Item = u64>) -> u64 {
    it.into_iter().fold(0, u64::saturating_add)
}

/// `a, b, c … (+n more)`: the first few offenders, for a detail line.
pub(crate) fn few<T: Display>(items: &[T]) -> String {
    const SHOWN: usize = 5;
    let mut s = items
        .iter()
        .take(SHOWN)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        s.push_str(&format!(" … (+{} more)", items.len() - SHOWN));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_run_is_judged_and_passes() {
        let v = check(&RunData::default());
        assert_eq!(v.truths.len(), 9);
        assert!(v.passed(), "{:?}", v.truths);
        let m = Measures::from_map(&v.measures);
        assert_eq!(m.admitted, 0);
        assert_eq!(m.kendall_tau, None);
    }

    #[test]
    fn the_fixture_passes_with_and_without_out() {
        for run in [fixture::run(8), fixture::with_out(fixture::run(8))] {
            let v = check(&run);
            assert!(v.passed(), "{:#?}", v.truths);
            let m = Measures::from_map(&v.measures);
            assert_eq!(m.admitted, 8);
            assert_eq!(m.overtakes, 0);
            assert_eq!(m.kendall_tau, Some(1.0));
        }
    }

    #[test]
    fn names_are_stable() {
        let names: Vec<String> = check(&RunData::default())
            .truths
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(
            names,
            [
                "seats_sold_once",
                "coupon_conservation",
                "capacity",
                "admission_rate",
                "fifo",
                "positions_never_rose",
                "rejoin_keeps_place",
                "idle_users_dropped",
                "nothing_lost"
            ]
        );
    }

    #[test]
    fn few_cuts_long_lists() {
        assert_eq!(few(&[1, 2]), "1, 2");
        assert_eq!(few(&[1, 2, 3, 4, 5, 6, 7]), "1, 2, 3, 4, 5 … (+2 more)");
    }
}
