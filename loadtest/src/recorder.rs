//! The client's measurements: HDR latency histograms per operation (whole
//! run and per second), the per-second counters, errors by code.
//!
//! Latency is taken from the request's *intended* start (its place in the
//! open-loop schedule) to its answer, as wrk2 and oha do: when the client or
//! the server falls behind, the wait counts against the run rather than
//! silently thinning the load (no coordinated omission). The gap between
//! intended and actual send is kept too (`max_send_lag_ms`), so a report can
//! tell a slow server from a client that could not keep up.

use boxoffice_loadtest::model::{ErrorCount, Op, OpStats, Percentiles, SecondStats};
use hdrhistogram::Histogram;
use std::collections::HashMap;

/// Longest latency the histograms hold (1 hour, µs); longer ones saturate.
const MAX_US: u64 = 3_600_000_000;

fn histogram() -> Histogram<u64> {
    // Bounds and precision are constants within hdrhistogram's limits.
    Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds")
}

fn percentiles(h: &Histogram<u64>) -> Percentiles {
    Percentiles {
        count: h.len(),
        p50_us: h.value_at_quantile(0.50),
        p90_us: h.value_at_quantile(0.90),
        p99_us: h.value_at_quantile(0.99),
        p999_us: h.value_at_quantile(0.999),
        max_us: h.max(),
    }
}

#[derive(Debug)]
struct OpRec {
    total: Histogram<u64>,
    cur: Histogram<u64>,
    cur_sec: u32,
    per_second: Vec<(u32, Percentiles)>,
}

impl OpRec {
    fn new() -> Self {
        OpRec {
            total: histogram(),
            cur: histogram(),
            cur_sec: 0,
            per_second: Vec::new(),
        }
    }

    fn flush(&mut self) {
        if !self.cur.is_empty() {
            self.per_second.push((self.cur_sec, percentiles(&self.cur)));
            self.cur.reset();
        }
    }
}

#[derive(Debug)]
pub struct Recorder {
    ops: Vec<OpRec>,
    pub seconds: Vec<SecondStats>,
    errors: HashMap<(Op, u16, String), u64>,
    pub requests: u64,
    pub max_send_lag_ms: u64,
}

fn op_index(op: Op) -> usize {
    Op::ALL.iter().position(|o| *o == op).unwrap_or(0)
}

impl Recorder {
    pub fn new() -> Self {
        Recorder {
            ops: Op::ALL.iter().map(|_| OpRec::new()).collect(),
            seconds: Vec::new(),
            errors: HashMap::new(),
            requests: 0,
            max_send_lag_ms: 0,
        }
    }

    /// The counters of second `t` (grown as the run goes).
    pub fn sec(&mut self, t: u32) -> &mut SecondStats {
        let i = t as usize;
        while self.seconds.len() <= i {
            let t_s = self.seconds.len() as u32;
            self.seconds.push(SecondStats {
                t_s,
                ..SecondStats::default()
            });
        }
        &mut self.seconds[i]
    }

    /// One answered (or failed) request: latency from the intended start,
    /// finished in second `t`.
    pub fn latency(&mut self, op: Op, t: u32, latency_us: u64) {
        let r = &mut self.ops[op_index(op)];
        if t != r.cur_sec {
            r.flush();
            r.cur_sec = t;
        }
        let v = latency_us.clamp(1, MAX_US);
        r.total.saturating_record(v);
        r.cur.saturating_record(v);
    }

    /// A request went out `lag_ms` after its intended time, in second `t`.
    pub fn sent(&mut self, t: u32, lag_ms: u64) {
        self.requests += 1;
        self.max_send_lag_ms = self.max_send_lag_ms.max(lag_ms);
        let s = self.sec(t);
        s.max_send_lag_ms = s.max_send_lag_ms.max(lag_ms);
    }

    pub fn error(&mut self, op: Op, t: u32, status: u16, code: &str) {
        self.sec(t).errors += 1;
        *self
            .errors
            .entry((op, status, code.to_string()))
            .or_insert(0) += 1;
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// The per-operation statistics (operations never used left out) and
    /// the errors, sorted.
    pub fn finish(&mut self) -> (Vec<OpStats>, Vec<ErrorCount>) {
        let mut ops = Vec::new();
        for (i, r) in self.ops.iter_mut().enumerate() {
            r.flush();
            if r.total.is_empty() {
                continue;
            }
            ops.push(OpStats {
                op: Op::ALL[i],
                total: percentiles(&r.total),
                per_second: std::mem::take(&mut r.per_second),
            });
        }
        let mut errors: Vec<ErrorCount> = self
            .errors
            .drain()
            .map(|((op, status, code), count)| ErrorCount {
                op,
                status,
                code,
                count,
            })
            .collect();
        errors.sort_by(|a, b| (a.op, a.status, &a.code).cmp(&(b.op, b.status, &b.code)));
        (ops, errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_second_percentiles_and_errors() {
        let mut r = Recorder::new();
        for us in [100, 200, 300] {
            r.latency(Op::Status, 0, us);
        }
        r.latency(Op::Status, 2, 5_000);
        r.latency(Op::Join, 2, 0);
        r.error(Op::Join, 2, 503, "queue_full");
        r.error(Op::Join, 2, 503, "queue_full");
        r.sent(1, 7);
        let (ops, errors) = r.finish();
        let st = ops.iter().find(|o| o.op == Op::Status).expect("status");
        assert_eq!(st.total.count, 4);
        assert_eq!(st.per_second.len(), 2);
        assert_eq!(st.per_second[0].0, 0);
        assert_eq!(st.per_second[1].1.count, 1);
        assert!(st.total.max_us >= 4_990);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].count, 2);
        assert_eq!(r.seconds.len(), 3);
        assert_eq!(r.seconds[2].errors, 2);
        assert_eq!(r.seconds[1].max_send_lag_ms, 7);
        assert_eq!(r.max_send_lag_ms, 7);
    }
}
