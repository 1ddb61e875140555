//! What a run measured, reported rather than judged: order (Kendall τ,
//! overtakes), time to sell out, ETA honesty per position decile, how often
//! ETAs rose, the poll load the advice caused, errors by code.
//!
//! The poll budget is a measure, not a truth: `SecondStats::polls` counts
//! every status request, including second tabs (which double a user's
//! polls by design) and admitted users, and the budget bounds the *expected*
//! rate of the line, so "polls/s ≤ budget" has no tight client-side form.
//! What is reported: the mean polls/s over the seconds with at least
//! [`BUSY_LINE`] users in line, and its share of the budget.

use super::admission::{peak_overlap, peak_window, sessions};
use super::order::OrderAnalysis;
use super::{admission_times, total};
use crate::model::RunData;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Seconds with at least this many users in line count for the poll budget.
pub const BUSY_LINE: u64 = 1000;

/// ETA honesty of one position decile: what the VUs were told at their first
/// waiting status and how long they actually waited.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EtaDecile {
    /// 1 (front) to 10 (back).
    pub decile: u8,
    pub count: u64,
    pub position_min: u64,
    pub position_max: u64,
    pub predicted_mean_s: f64,
    pub actual_mean_s: f64,
    /// Median of actual / predicted over the VUs told more than 0 s.
    pub ratio_median: Option<f64>,
}

/// The measures of a run (`Verdict::measures` holds them as JSON fields).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Measures {
    /// `boxoffice:out` or `client records`.
    pub admission_source: String,
    pub admitted: u64,
    /// Order: τ-b (`None` when undefined), overtakes, users compared and not
    /// placeable.
    pub kendall_tau: Option<f64>,
    /// τ over the pairs ordered on both sides (ties left out): 1.0 when no
    /// pair is in opposite order.
    #[serde(default)]
    pub kendall_tau_ordered: Option<f64>,
    pub overtakes: u64,
    pub order_compared: u64,
    pub order_unplaced: u64,
    pub peak_active: u64,
    pub max_admissions_per_window: u64,
    /// First admission, Unix ms.
    pub first_admission_ms: Option<u64>,
    /// From the first admission to the first sample with no seat free, and
    /// with the coupon's stock all issued (s).
    pub seats_sell_out_s: Option<f64>,
    pub coupon_sell_out_s: Option<f64>,
    pub eta_deciles: Vec<EtaDecile>,
    /// VUs with a first ETA and an admission (the decile population).
    pub eta_vus: u64,
    /// Share of the VUs that saw a status that they saw an ETA rise, and rise
    /// while the room admitted at its full rate.
    pub eta_rose_share: Option<f64>,
    pub eta_rose_steady_share: Option<f64>,
    pub eta_rises: u64,
    pub eta_rises_steady: u64,
    pub polls: u64,
    pub stream_events: u64,
    pub polls_per_s_peak: u64,
    pub polls_per_s_mean: Option<f64>,
    /// Σ polls / Σ users in line over the seconds: polls per waiting user
    /// per second.
    pub polls_per_waiting_user_s: Option<f64>,
    /// The same per second, `(t_s, polls / in_line)`, over the seconds with
    /// someone in line.
    pub polls_per_waiting_user_by_s: Vec<(u32, f64)>,
    /// Mean polls/s over the seconds with ≥ [`BUSY_LINE`] in line, and that
    /// mean over the event's poll budget (when it has one).
    pub polls_per_s_busy_mean: Option<f64>,
    pub poll_budget_per_s: u32,
    pub poll_budget_use: Option<f64>,
    pub errors: u64,
    /// `"<op> <status> <code>"` → count.
    pub errors_by_code: BTreeMap<String, u64>,
}

impl Measures {
    pub fn into_map(self) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        }
    }

    /// Reads them back (missing or malformed fields take their default).
    pub fn from_map(map: &serde_json::Map<String, serde_json::Value>) -> Measures {
        serde_json::from_value(serde_json::Value::Object(map.clone())).unwrap_or_default()
    }
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

pub(super) fn measure(run: &RunData, order: &OrderAnalysis) -> Measures {
    let (times, source) = admission_times(run);
    let first = times.first().copied();
    let since_first = |at: u64| first.map(|f| at.saturating_sub(f) as f64 / 1000.0);
    let seats_sell_out_s = run
        .samples
        .iter()
        .filter(|s| first.is_some_and(|f| s.at_ms >= f))
        .find(|s| s.free == 0 && (s.sold > 0 || s.held > 0))
        .and_then(|s| since_first(s.at_ms));
    let coupon_sell_out_s = run
        .samples
        .iter()
        .filter(|s| first.is_some_and(|f| s.at_ms >= f))
        .find(|s| s.coupon_remaining == 0 && s.coupon_issued > 0)
        .and_then(|s| since_first(s.at_ms));
    let seen: Vec<_> = run.vus.iter().filter(|v| v.first_wait.is_some()).collect();
    let with_rise = seen.iter().filter(|v| v.eta_rises > 0).count() as u64;
    let with_steady = seen.iter().filter(|v| v.eta_rises_steady > 0).count() as u64;
    let (polls, busy) = poll_load(run);
    let budget = run.setup.poll_budget_per_s;
    let mut errors_by_code = BTreeMap::new();
    for e in &run.errors {
        let n = errors_by_code
            .entry(format!("{} {} {}", e.op.name(), e.status, e.code))
            .or_insert(0u64);
        *n = n.saturating_add(e.count);
    }
    let (eta_vus, eta_deciles) = eta_deciles(run);
    Measures {
        admission_source: source.label().to_owned(),
        admitted: times.len() as u64,
        kendall_tau: order.kendall.tau_b,
        kendall_tau_ordered: order.kendall.tau_ordered(),
        overtakes: order.overtakes(),
        order_compared: order.compared,
        order_unplaced: order.unplaced,
        peak_active: peak_overlap(&sessions(run).0).0,
        max_admissions_per_window: peak_window(&times).0,
        first_admission_ms: first,
        seats_sell_out_s,
        coupon_sell_out_s,
        eta_deciles,
        eta_vus,
        eta_rose_share: ratio(with_rise, seen.len() as u64),
        eta_rose_steady_share: ratio(with_steady, seen.len() as u64),
        eta_rises: run.vus.iter().map(|v| u64::from(v.eta_rises)).sum(),
        eta_rises_steady: run.vus.iter().map(|v| u64::from(v.eta_rises_steady)).sum(),
        polls: polls.total,
        stream_events: total(run.seconds.iter().map(|s| s.stream_events)),
        polls_per_s_peak: polls.peak,
        polls_per_s_mean: ratio(polls.total, run.seconds.len() as u64),
        polls_per_waiting_user_s: ratio(polls.total_in_line_polls, polls.user_seconds),
        polls_per_waiting_user_by_s: run
            .seconds
            .iter()
            .filter(|x| x.in_line > 0)
            .map(|x| (x.t_s, x.polls as f64 / x.in_line as f64))
            .collect(),
        polls_per_s_busy_mean: busy,
        poll_budget_per_s: budget,
        poll_budget_use: busy.filter(|_| budget > 0).map(|b| b / f64::from(budget)),
        errors: total(run.errors.iter().map(|e| e.count)),
        errors_by_code,
    }
}

struct Polls {
    total: u64,
    peak: u64,
    /// Polls in seconds with someone in line, and the user-seconds in line.
    total_in_line_polls: u64,
    user_seconds: u64,
}

fn poll_load(run: &RunData) -> (Polls, Option<f64>) {
    let s = &run.seconds;
    let polls = Polls {
        total: total(s.iter().map(|x| x.polls)),
        peak: s.iter().map(|x| x.polls).max().unwrap_or(0),
        total_in_line_polls: total(s.iter().filter(|x| x.in_line > 0).map(|x| x.polls)),
        user_seconds: total(s.iter().map(|x| x.in_line)),
    };
    let busy: Vec<u64> = s
        .iter()
        .filter(|x| x.in_line >= BUSY_LINE)
        .map(|x| x.polls)
        .collect();
    let mean = ratio(total(busy.iter().copied()), busy.len() as u64);
    (polls, mean)
}

/// ETA honesty per decile of first-seen position, over the VUs that were
/// told an ETA and were admitted.
fn eta_deciles(run: &RunData) -> (u64, Vec<EtaDecile>) {
    // (position, predicted s, actual s)
    let mut told: Vec<(u64, u64, f64)> = run
        .vus
        .iter()
        .filter_map(|v| {
            let w = v.first_wait?;
            let eta = w.eta_s?;
            let a = v.admitted?;
            let actual = (a.iat_ms as f64 - w.at_ms as f64) / 1000.0;
            Some((w.position, eta, actual))
        })
        .collect();
    told.sort_unstable_by_key(|t| t.0);
    let n = told.len();
    let mut out = Vec::new();
    for d in 0..10usize {
        let group = &told[n * d / 10..n * (d + 1) / 10];
        let (Some(lo), Some(hi)) = (group.first(), group.last()) else {
            continue;
        };
        let len = group.len() as f64;
        let ratios = group
            .iter()
            .filter(|t| t.1 > 0)
            .map(|t| t.2 / t.1 as f64)
            .collect();
        out.push(EtaDecile {
            decile: u8::try_from(d + 1).unwrap_or(10),
            count: group.len() as u64,
            position_min: lo.0,
            position_max: hi.0,
            predicted_mean_s: group.iter().map(|t| t.1 as f64).sum::<f64>() / len,
            actual_mean_s: group.iter().map(|t| t.2).sum::<f64>() / len,
            ratio_median: median(ratios),
        });
    }
    (n as u64, out)
}

#[cfg(test)]
mod tests {
    use super::super::{check, fixture};
    use super::*;
    use crate::model::{ErrorCount, Op, SecondStats};

    #[test]
    fn measures_of_the_fixture() {
        let mut run = fixture::run(20);
        run.vus[3].eta_rises = 2;
        run.vus[3].eta_rises_steady = 1;
        run.vus[4].eta_rises = 1;
        run.setup.poll_budget_per_s = 1000;
        run.seconds = (0..4)
            .map(|t| SecondStats {
                t_s: t,
                polls: 900 + u64::from(t) * 100,
                in_line: if t < 3 { 2000 } else { 0 },
                ..SecondStats::default()
            })
            .collect();
        run.errors.push(ErrorCount {
            op: Op::Hold,
            status: 409,
            code: "seat_taken".into(),
            count: 3,
        });
        let m = Measures::from_map(&check(&run).measures);
        assert_eq!(m.admitted, 20);
        assert_eq!(m.peak_active, 1);
        assert_eq!(m.max_admissions_per_window, 5);
        assert_eq!(m.eta_vus, 20);
        assert_eq!(m.eta_deciles.len(), 10);
        let d1 = &m.eta_deciles[0];
        assert_eq!((d1.count, d1.position_min, d1.position_max), (2, 1, 2));
        // Told 8 s at +2.000 s, admitted at +10.000 s (VU 0): 8 s exactly.
        assert!((d1.predicted_mean_s - 8.0).abs() < 1e-9, "{d1:?}");
        assert!((d1.actual_mean_s - 8.0995).abs() < 1e-9, "{d1:?}");
        assert_eq!(m.eta_rose_share, Some(0.1));
        assert_eq!(m.eta_rose_steady_share, Some(0.05));
        assert_eq!(m.polls, 900 + 1000 + 1100 + 1200);
        assert_eq!(m.polls_per_s_peak, 1200);
        assert_eq!(m.polls_per_s_busy_mean, Some(1000.0));
        assert_eq!(m.poll_budget_use, Some(1.0));
        assert_eq!(m.polls_per_waiting_user_s, Some(3000.0 / 6000.0));
        assert_eq!(
            m.polls_per_waiting_user_by_s,
            [(0, 0.45), (1, 0.5), (2, 0.55)]
        );
        assert_eq!(m.errors_by_code.get("hold 409 seat_taken"), Some(&3));
        // The fixture's last sample still has two seats free.
        assert_eq!(m.seats_sell_out_s, None);
    }

    #[test]
    fn sell_out_times_are_from_the_first_admission() {
        let mut run = fixture::run(4);
        let last = run.samples.last_mut().expect("samples");
        last.free = 0;
        last.coupon_remaining = 0;
        let m = Measures::from_map(&check(&run).measures);
        // Last sample at +650 ms from the first admission (+10 000 ms).
        assert_eq!(m.seats_sell_out_s, Some(0.65));
        assert_eq!(m.coupon_sell_out_s, Some(0.65));
    }

    #[test]
    fn they_round_trip_through_json() {
        let m = Measures::from_map(&check(&fixture::run(7)).measures);
        let again = Measures::from_map(&m.clone().into_map());
        assert_eq!(m, again);
        assert_eq!(
            Measures::from_map(&serde_json::Map::new()),
            Measures::default()
        );
        assert_eq!(median(vec![3.0, 1.0]), Some(2.0));
        assert_eq!(median(vec![]), None);
    }
}
