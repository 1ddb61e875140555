//! Prometheus metrics, rendered on `GET /metrics` (no listener of the
//! exporter's own).
//!
//! Each server owns its recorder (not a process-global one), so several
//! servers in one test process keep separate numbers. Gauges are set from the
//! engine at scrape time; counters are bumped where things happen. Names
//! follow `boxoffice_<area>_<what>_<unit>`.

use boxoffice_engine::{CouponId, Engine, EventId, TickReport, Timestamp};
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Latency buckets (seconds): 50 µs to 5 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0,
];

pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    open_streams: AtomicI64,
    /// Last (time, served) per event, for the admissions-per-second gauge.
    served: Mutex<HashMap<EventId, (Timestamp, u64, f64)>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("open_streams", &self.open_streams)
            .finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        // The bucket list is a non-empty constant, so this cannot fail; fall
        // back to the default (summaries) rather than panic if it ever did.
        use crate::replicate::metrics as repl;
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            // Exact names win over the suffix rule.
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(repl::COMMIT_SECONDS.into()),
                    repl::COMMIT_BUCKETS,
                )
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(repl::BATCH_ENTRIES.into()),
                    repl::BATCH_BUCKETS,
                )
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(repl::SNAPSHOT_SECONDS.into()),
                    repl::SNAPSHOT_BUCKETS,
                )
            })
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let m = Metrics {
            recorder,
            handle,
            open_streams: AtomicI64::new(0),
            served: Mutex::new(HashMap::new()),
        };
        m.with(describe_all);
        m
    }

    /// Runs `f` with this server's recorder (replication records through it).
    pub fn scoped(&self, f: &mut dyn FnMut()) {
        self.with(f)
    }

    fn with<R>(&self, f: impl FnOnce() -> R) -> R {
        metrics::with_local_recorder(&self.recorder, f)
    }

    pub fn http(&self, route: &'static str, method: &'static str, status: u16, elapsed: Duration) {
        // Static labels: no allocation on the request path for the codes we send.
        let status: metrics::SharedString = match status_label(status) {
            Some(s) => s.into(),
            None => status.to_string().into(),
        };
        self.with(|| {
            counter!("boxoffice_http_requests_total", "route" => route, "method" => method, "status" => status).increment(1);
            histogram!("boxoffice_http_request_duration_seconds", "route" => route, "method" => method).record(elapsed.as_secs_f64());
        });
    }

    pub fn rate_limited(&self, route: &'static str) {
        self.with(|| counter!("boxoffice_http_rate_limited_total", "route" => route).increment(1));
    }

    /// A connection closed at accept (`reason`: `per_client`).
    pub fn connection_refused(&self, reason: &'static str) {
        self.with(|| {
            counter!("boxoffice_http_connections_refused_total", "reason" => reason).increment(1)
        });
    }

    /// A live stream refused at `--max-streams` (`reason`: `max_streams`)
    /// or ended for a newer one on the same ticket (`reason`: `replaced`).
    pub fn stream_cut(&self, reason: &'static str) {
        self.with(|| {
            counter!("boxoffice_http_sse_streams_cut_total", "reason" => reason).increment(1)
        });
    }

    /// A status poll refused for polling one ticket too fast.
    pub fn poll_limited(&self) {
        self.with(|| counter!("boxoffice_queue_polls_limited_total").increment(1));
    }

    pub fn panicked(&self) {
        self.with(|| counter!("boxoffice_http_panics_total").increment(1));
    }

    pub fn stream_opened(&self) {
        self.open_streams.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stream_closed(&self) {
        self.open_streams.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn open_streams(&self) -> i64 {
        self.open_streams.load(Ordering::Relaxed)
    }

    pub fn join(&self, event: &EventId, created: bool) {
        let kind = if created { "new" } else { "rejoin" };
        self.with(|| {
            counter!("boxoffice_queue_joins_total", "event" => event.to_string(), "kind" => kind)
                .increment(1)
        });
    }

    pub fn leave(&self, event: &EventId) {
        self.with(|| {
            counter!("boxoffice_queue_leaves_total", "event" => event.to_string()).increment(1)
        });
    }

    pub fn complete(&self, event: &EventId) {
        self.with(|| {
            counter!("boxoffice_queue_completions_total", "event" => event.to_string()).increment(1)
        });
    }

    pub fn hold(&self, event: &EventId, outcome: &'static str) {
        self.with(|| counter!("boxoffice_seats_holds_total", "event" => event.to_string(), "outcome" => outcome).increment(1));
    }

    pub fn hold_step(&self, event: &EventId, step: &'static str) {
        self.with(|| counter!("boxoffice_seats_hold_steps_total", "event" => event.to_string(), "step" => step).increment(1));
    }

    pub fn claim(&self, coupon: &CouponId, outcome: &'static str) {
        self.with(|| counter!("boxoffice_coupons_claims_total", "coupon" => coupon.to_string(), "outcome" => outcome).increment(1));
    }

    pub fn claim_returned(&self, coupon: &CouponId) {
        self.with(|| {
            counter!("boxoffice_coupons_returns_total", "coupon" => coupon.to_string()).increment(1)
        });
    }

    pub fn record_tick(&self, r: &TickReport) {
        if *r == TickReport::default() {
            return;
        }
        self.with(|| {
            counter!("boxoffice_queue_admissions_total").increment(r.admitted);
            counter!("boxoffice_queue_idle_drops_total").increment(r.idle_dropped);
            counter!("boxoffice_queue_sessions_expired_total").increment(r.sessions_expired);
            counter!("boxoffice_queue_rooms_opened_total").increment(r.rooms_opened);
            counter!("boxoffice_seats_holds_expired_total").increment(r.holds_expired);
        });
    }

    /// Drains histogram buffers; the driver calls it every few seconds.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// Sets the gauges from the engine and renders the text format.
    pub fn render(&self, engine: &Engine, now: Timestamp) -> String {
        let events = engine.event_stats(now);
        let mut served = self.served.lock();
        served.retain(|id, _| events.iter().any(|e| &e.id == id));
        let rates: Vec<f64> = events
            .iter()
            .map(|e| {
                let entry = served.entry(e.id.clone()).or_insert((now, e.served, 0.0));
                let dt = now.ms_since(entry.0);
                if dt >= 1000 {
                    let rate = e.served.saturating_sub(entry.1) as f64 * 1000.0 / dt as f64;
                    *entry = (now, e.served, rate);
                }
                entry.2
            })
            .collect();
        drop(served);
        let coupon_counts = engine.coupons();
        self.with(|| {
            for (e, rate) in events.iter().zip(rates) {
                let id = e.id.to_string();
                gauge!("boxoffice_queue_waiting", "event" => id.clone()).set(e.waiting as f64);
                gauge!("boxoffice_queue_admitted", "event" => id.clone()).set(e.admitted as f64);
                counter!("boxoffice_queue_served_total", "event" => id.clone()).absolute(e.served);
                gauge!("boxoffice_queue_admissions_per_second", "event" => id.clone()).set(rate);
                let t = e.seats.total;
                gauge!("boxoffice_seats_free", "event" => id.clone()).set(t.free as f64);
                gauge!("boxoffice_seats_held", "event" => id.clone()).set(t.held as f64);
                gauge!("boxoffice_seats_sold", "event" => id).set(t.sold as f64);
            }
            for (c, n) in coupon_counts {
                let id = c.to_string();
                gauge!("boxoffice_coupons_stock", "coupon" => id.clone()).set(f64::from(n.stock));
                gauge!("boxoffice_coupons_issued", "coupon" => id.clone()).set(f64::from(n.issued));
                gauge!("boxoffice_coupons_remaining", "coupon" => id).set(f64::from(n.remaining));
            }
            gauge!("boxoffice_http_sse_open_streams").set(self.open_streams() as f64);
        });
        self.handle.render()
    }
}

fn status_label(status: u16) -> Option<&'static str> {
    Some(match status {
        200 => "200",
        201 => "201",
        204 => "204",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        409 => "409",
        410 => "410",
        413 => "413",
        415 => "415",
        422 => "422",
        429 => "429",
        500 => "500",
        503 => "503",
        _ => return None,
    })
}

fn describe_all() {
    crate::replicate::metrics::describe();
    describe_counter!(
        "boxoffice_http_requests_total",
        "HTTP requests by route pattern, method and status"
    );
    describe_histogram!(
        "boxoffice_http_request_duration_seconds",
        "HTTP latency to the response head, by route pattern"
    );
    describe_counter!(
        "boxoffice_http_rate_limited_total",
        "Requests refused with 429 by the per-IP limiter"
    );
    describe_counter!(
        "boxoffice_http_connections_refused_total",
        "Connections closed at accept, by reason (per_client: the address is at its cap)"
    );
    describe_counter!(
        "boxoffice_http_sse_streams_cut_total",
        "Live streams refused (max_streams) or ended for a newer one on their ticket (replaced)"
    );
    describe_counter!(
        "boxoffice_queue_polls_limited_total",
        "Status polls refused with 429 for polling one ticket far faster than poll_after_ms"
    );
    describe_counter!(
        "boxoffice_http_panics_total",
        "Handler panics answered with 500 (each is a bug)"
    );
    describe_gauge!(
        "boxoffice_http_sse_open_streams",
        "Open live status streams"
    );
    describe_gauge!(
        "boxoffice_queue_waiting",
        "Users in line (prequeue or waiting)"
    );
    describe_gauge!(
        "boxoffice_queue_admitted",
        "Users admitted and shopping now"
    );
    describe_counter!("boxoffice_queue_served_total", "Users admitted so far");
    describe_gauge!(
        "boxoffice_queue_admissions_per_second",
        "Admissions per second between the last two scrapes"
    );
    describe_counter!(
        "boxoffice_queue_admissions_total",
        "Admissions made by the driver, all events"
    );
    describe_counter!(
        "boxoffice_queue_joins_total",
        "Joins (new tickets and rejoins)"
    );
    describe_counter!("boxoffice_queue_leaves_total", "Users who left the line");
    describe_counter!(
        "boxoffice_queue_completions_total",
        "Sessions completed by the booking backend"
    );
    describe_counter!(
        "boxoffice_queue_idle_drops_total",
        "Waiting users dropped for idleness, all events"
    );
    describe_counter!(
        "boxoffice_queue_sessions_expired_total",
        "Admitted sessions that ran out, all events"
    );
    describe_counter!("boxoffice_queue_rooms_opened_total", "Pre-queues opened");
    describe_gauge!("boxoffice_seats_free", "Free seats");
    describe_gauge!("boxoffice_seats_held", "Held seats");
    describe_gauge!("boxoffice_seats_sold", "Sold seats");
    describe_counter!("boxoffice_seats_holds_total", "Hold requests by outcome");
    describe_counter!(
        "boxoffice_seats_hold_steps_total",
        "Confirms, extends and releases"
    );
    describe_counter!(
        "boxoffice_seats_holds_expired_total",
        "Holds expired by the driver, all events"
    );
    describe_gauge!("boxoffice_coupons_stock", "Coupon stock");
    describe_gauge!("boxoffice_coupons_issued", "Coupons issued (live claims)");
    describe_gauge!("boxoffice_coupons_remaining", "Coupons left");
    describe_counter!("boxoffice_coupons_claims_total", "Claims by outcome");
    describe_counter!("boxoffice_coupons_returns_total", "Claims given back");
}
