//! Prometheus metrics, rendered on `GET /metrics` (no listener of the
//! exporter's own).
//!
//! Each server owns its recorder (not a process-global one), so several
//! servers in one test process keep separate numbers. Gauges are set from the
//! engine at scrape time; counters are bumped where things happen. Names
//! follow `boxoffice_<area>_<what>_<unit>`.
//!
//! Series labelled by an event or coupon id are kept here, not in the
//! recorder (which can never forget a series): they are dropped with their
//! event or coupon, so deleted ids leave nothing behind on `/metrics`. Every
//! unlabelled series is registered at zero on start.

use boxoffice_engine::{CouponId, Engine, EventId, Phase, TickReport, Timestamp};
use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Counter,
    Histogram,
};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use parking_lot::Mutex;

mod meters;

pub use meters::{ClaimOutcome, CutReason, HoldOutcome, HoldStep, RefusedReason};
use meters::{CouponMeter, CouponMeters, EventMeter, EventMeters, JoinKind, Label};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
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
    /// Connections holding a `--max-connections` slot, per [`Listener`].
    open_connections: [Arc<AtomicI64>; 2],
    /// Last (time, served) per event, for the admissions-per-second gauge.
    served: Mutex<HashMap<EventId, (Timestamp, u64, f64)>>,
    /// Counters of each live event and coupon.
    events: EventMeters,
    coupons: CouponMeters,
    /// The API's request series, registered once each.
    http: HttpSeries,
}

/// The HTTP request series of the API listener as handles made on first
/// use: a request bumps a counter and records into a histogram it finds by
/// index, with no label hashing, key building or registry lookup. Slots are
/// the routes of `router::ROUTES`, then `unmatched` and `preflight`.
struct HttpSeries {
    /// `[slot][method][status]`.
    requests: Box<[OnceLock<Counter>]>,
    /// `[slot][method]`.
    durations: Box<[OnceLock<Histogram>]>,
}

/// The method labels (`crate::http::method_label`), in slot order.
const METHODS: [&str; 8] = [
    "GET", "PUT", "POST", "DELETE", "HEAD", "PATCH", "OPTIONS", "OTHER",
];

/// The status labels with a slot (others take the slow path).
const STATUSES: [u16; 16] = [
    200, 201, 204, 400, 401, 403, 404, 405, 409, 410, 413, 415, 422, 429, 500, 503,
];

/// Route slots: one per API route, then these.
pub const SLOT_UNMATCHED: usize = crate::http::router::ROUTE_COUNT;
pub const SLOT_PREFLIGHT: usize = SLOT_UNMATCHED + 1;
const SLOTS: usize = SLOT_PREFLIGHT + 1;

impl HttpSeries {
    fn new() -> Self {
        fn cells<T>(n: usize) -> Box<[OnceLock<T>]> {
            (0..n).map(|_| OnceLock::new()).collect()
        }
        HttpSeries {
            requests: cells(SLOTS * METHODS.len() * STATUSES.len()),
            durations: cells(SLOTS * METHODS.len()),
        }
    }
}

/// The listener a connection came in on (label `listener` of
/// `boxoffice_http_open_connections`): each has its own `--max-connections`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    Api,
    Gate,
}

impl Listener {
    const ALL: [Listener; 2] = [Listener::Api, Listener::Gate];

    fn label(self) -> &'static str {
        match self {
            Listener::Api => "api",
            Listener::Gate => "gate",
        }
    }
}

/// One connection counted in `boxoffice_http_open_connections`, uncounted
/// when dropped (with its connection slot: a live stream gives both back).
#[derive(Debug)]
pub struct OpenConnection(Arc<AtomicI64>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One metric family of the text format: HELP and TYPE, then its lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str, lines: &[String]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for l in lines {
        out.push_str(l);
        out.push('\n');
    }
    out.push('\n');
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
            open_connections: Default::default(),
            served: Mutex::new(HashMap::new()),
            events: EventMeters::default(),
            coupons: CouponMeters::default(),
            http: HttpSeries::new(),
        };
        m.with(describe_all);
        // Present from start, at zero: a dashboard or alert sees 0, not "no data".
        m.with(|| {
            counter!("boxoffice_http_panics_total").absolute(0);
            for name in GLOBAL_COUNTERS {
                counter!(*name).absolute(0);
            }
            for route in RATE_LIMITED_ROUTES {
                counter!("boxoffice_http_rate_limited_total", "route" => route).absolute(0);
            }
            for r in RefusedReason::ALL {
                counter!("boxoffice_http_connections_refused_total", "reason" => r.label())
                    .absolute(0);
            }
            for r in CutReason::ALL {
                counter!("boxoffice_http_sse_streams_cut_total", "reason" => r.label()).absolute(0);
            }
            gauge!("boxoffice_http_sse_open_streams").set(0.0);
            for l in Listener::ALL {
                gauge!("boxoffice_http_open_connections", "listener" => l.label()).set(0.0);
            }
            gauge!(repl::STORE_LOST).set(0.0);
            repl::lease(false, 0);
        });
        m
    }

    /// Drops every series of a deleted event (also done at each scrape for
    /// whatever the engine no longer has).
    pub fn forget_event(&self, event: &EventId) {
        self.events.forget(event);
        self.served.lock().remove(event);
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

    /// [`Metrics::http`] for a request of the API listener, through its
    /// pre-registered handles: `slot` is the route's index in
    /// `router::ROUTES`, or [`SLOT_UNMATCHED`] / [`SLOT_PREFLIGHT`], and
    /// `route` its label. A method or status without a slot takes the
    /// labelled path (same series).
    pub fn api_request(
        &self,
        slot: usize,
        route: &'static str,
        method: &'static str,
        status: u16,
        elapsed: Duration,
    ) {
        let m = METHODS.iter().position(|&x| x == method);
        let st = STATUSES.iter().position(|&x| x == status);
        let (Some(m), Some(st), Some(label), true) = (m, st, status_label(status), slot < SLOTS)
        else {
            return self.http(route, method, status, elapsed);
        };
        let at = slot * METHODS.len() + m;
        let requests = self.http.requests.get(at * STATUSES.len() + st);
        let durations = self.http.durations.get(at);
        let (Some(requests), Some(durations)) = (requests, durations) else {
            return self.http(route, method, status, elapsed);
        };
        requests
            .get_or_init(|| {
                self.with(|| {
                    counter!("boxoffice_http_requests_total", "route" => route, "method" => method, "status" => label)
                })
            })
            .increment(1);
        durations
            .get_or_init(|| {
                self.with(|| {
                    histogram!("boxoffice_http_request_duration_seconds", "route" => route, "method" => method)
                })
            })
            .record(elapsed.as_secs_f64());
    }

    /// A join refused by the per-address limiter; `route` is one of
    /// [`RATE_LIMITED_ROUTES`] (the join's route pattern, or
    /// [`GATE_ROUTE`]), each registered at zero on start.
    pub fn rate_limited(&self, route: &'static str) {
        debug_assert!(RATE_LIMITED_ROUTES.contains(&route), "{route}");
        self.with(|| counter!("boxoffice_http_rate_limited_total", "route" => route).increment(1));
    }

    /// A connection closed at accept.
    pub fn connection_refused(&self, reason: RefusedReason) {
        self.with(|| {
            counter!("boxoffice_http_connections_refused_total", "reason" => reason.label())
                .increment(1)
        });
    }

    /// A live stream refused at `--max-streams` or ended for a newer one on
    /// the same ticket.
    pub fn stream_cut(&self, reason: CutReason) {
        self.with(|| {
            counter!("boxoffice_http_sse_streams_cut_total", "reason" => reason.label())
                .increment(1)
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

    /// Counts a connection given a slot on `listener` until the returned
    /// guard is dropped.
    pub fn connection_opened(&self, listener: Listener) -> OpenConnection {
        let n = &self.open_connections[listener as usize];
        n.fetch_add(1, Ordering::Relaxed);
        OpenConnection(n.clone())
    }

    /// Connections holding a slot on `listener` now.
    pub fn open_connections(&self, listener: Listener) -> i64 {
        self.open_connections[listener as usize].load(Ordering::Relaxed)
    }

    /// Whether this server holds the writer lease and its fencing epoch (0
    /// unless held), set at each scrape from the replicator.
    pub fn lease(&self, held: bool, epoch: u64) {
        self.with(|| crate::replicate::metrics::lease(held, epoch));
    }

    pub fn join(&self, event: &EventId, created: bool) {
        let kind = if created {
            JoinKind::New
        } else {
            JoinKind::Rejoin
        };
        self.events.with(event, |m| m.joins.bump(kind));
    }

    pub fn leave(&self, event: &EventId) {
        self.events.with(event, |m| bump(&m.leaves));
    }

    pub fn complete(&self, event: &EventId) {
        self.events.with(event, |m| bump(&m.completions));
    }

    pub fn hold(&self, event: &EventId, outcome: HoldOutcome) {
        self.events.with(event, |m| m.holds.bump(outcome));
    }

    pub fn hold_step(&self, event: &EventId, step: HoldStep) {
        self.events.with(event, |m| m.steps.bump(step));
    }

    pub fn claim(&self, coupon: &CouponId, outcome: ClaimOutcome) {
        self.coupons.with(coupon, |m| m.claims.bump(outcome));
    }

    pub fn claim_returned(&self, coupon: &CouponId) {
        self.coupons.with(coupon, |m| bump(&m.returns));
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
        let coupons = engine.coupons();
        self.with(|| {
            gauge!("boxoffice_http_sse_open_streams").set(self.open_streams() as f64);
            for l in Listener::ALL {
                gauge!("boxoffice_http_open_connections", "listener" => l.label())
                    .set(self.open_connections(l) as f64);
            }
        });
        let mut out = self.handle.render();
        if !out.is_empty() && !out.ends_with("\n\n") {
            out.push('\n');
        }
        // Whatever the engine no longer has is gone from /metrics too.
        self.events
            .retain(|id| events.binary_search_by(|e| e.id.cmp(id)).is_ok());
        self.coupons
            .retain(|id| coupons.iter().any(|(c, _)| c == id));
        let event_meters = self.events.read();
        let none = EventMeter::default();
        let ev = |e: &EventId| event_meters.get(e).unwrap_or(&none);
        let per_event = |f: &dyn Fn(&boxoffice_engine::EventStats, f64) -> Option<String>| {
            events
                .iter()
                .zip(rates.iter())
                .filter_map(|(e, r)| f(e, *r))
                .collect::<Vec<_>>()
        };
        let g = |name: &str, help: &str, v: &dyn Fn(&boxoffice_engine::EventStats, f64) -> f64| {
            (
                name.to_string(),
                help.to_string(),
                per_event(&|e, r| Some(format!("{name}{{event=\"{}\"}} {}", e.id, v(e, r)))),
            )
        };
        let gauges = [
            g(
                "boxoffice_queue_waiting",
                "Users in line (prequeue or waiting)",
                &|e, _| e.waiting as f64,
            ),
            g(
                "boxoffice_queue_admitted",
                "Users admitted and shopping now",
                &|e, _| e.admitted as f64,
            ),
            g(
                "boxoffice_queue_admissions_per_second",
                "Admissions per second between the last two scrapes",
                &|_, r| r,
            ),
            g("boxoffice_seats_free", "Free seats", &|e, _| {
                e.seats.total.free as f64
            }),
            g("boxoffice_seats_held", "Held seats", &|e, _| {
                e.seats.total.held as f64
            }),
            g("boxoffice_seats_sold", "Sold seats", &|e, _| {
                e.seats.total.sold as f64
            }),
        ];
        for (name, help, lines) in &gauges {
            family(&mut out, name, "gauge", help, lines);
        }
        // The room's settings: only events with a waiting room have them.
        let room = |name: &str, v: &dyn Fn(&boxoffice_engine::EventStats) -> Option<NonZeroU32>| {
            per_event(&|e, _| v(e).map(|n| format!("{name}{{event=\"{}\"}} {n}", e.id)))
        };
        family(
            &mut out,
            "boxoffice_queue_capacity",
            "gauge",
            "Most users admitted at once (the waiting room's capacity)",
            &room("boxoffice_queue_capacity", &|e| e.capacity),
        );
        family(
            &mut out,
            "boxoffice_queue_admit_per_s",
            "gauge",
            "Most admissions per second (the waiting room's admit_per_s)",
            &room("boxoffice_queue_admit_per_s", &|e| e.admit_per_s),
        );
        // One line per phase, 1 for the current one: `== 1` selects events
        // in a phase, and a change of phase is a change of value, not a new
        // series.
        let mut phases = Vec::with_capacity(events.len() * PHASES.len());
        for e in &events {
            for p in PHASES {
                phases.push(format!(
                    "boxoffice_queue_phase{{event=\"{}\",phase=\"{}\"}} {}",
                    e.id,
                    p.as_str(),
                    u8::from(e.phase == p)
                ));
            }
        }
        family(
            &mut out,
            "boxoffice_queue_phase",
            "gauge",
            "1 for the event's current phase (prequeue, open, paused, closed), 0 for the others",
            &phases,
        );
        let served_lines = per_event(&|e, _| {
            Some(format!(
                "boxoffice_queue_served_total{{event=\"{}\"}} {}",
                e.id, e.served
            ))
        });
        family(
            &mut out,
            "boxoffice_queue_served_total",
            "counter",
            "Users admitted so far",
            &served_lines,
        );
        let labelled =
            |name: &str, label: &str, pick: &dyn Fn(&EventMeter) -> Vec<(&'static str, u64)>| {
                let mut lines = Vec::new();
                for e in &events {
                    // Every label value of a live event, at zero until counted.
                    for (k, n) in pick(ev(&e.id)) {
                        lines.push(format!("{name}{{event=\"{}\",{label}=\"{k}\"}} {n}", e.id));
                    }
                }
                lines
            };
        family(
            &mut out,
            "boxoffice_queue_joins_total",
            "counter",
            "Joins (new tickets and rejoins)",
            &labelled("boxoffice_queue_joins_total", "kind", &|c| {
                c.joins.each().collect()
            }),
        );
        let plain = |name: &str, pick: &dyn Fn(&EventMeter) -> u64| {
            events
                .iter()
                .map(|e| format!("{name}{{event=\"{}\"}} {}", e.id, pick(ev(&e.id))))
                .collect::<Vec<_>>()
        };
        family(
            &mut out,
            "boxoffice_queue_leaves_total",
            "counter",
            "Users who left the line",
            &plain("boxoffice_queue_leaves_total", &|c| load(&c.leaves)),
        );
        family(
            &mut out,
            "boxoffice_queue_completions_total",
            "counter",
            "Sessions completed by the booking backend",
            &plain("boxoffice_queue_completions_total", &|c| {
                load(&c.completions)
            }),
        );
        family(
            &mut out,
            "boxoffice_seats_holds_total",
            "counter",
            "Hold requests by outcome",
            &labelled("boxoffice_seats_holds_total", "outcome", &|c| {
                c.holds.each().collect()
            }),
        );
        family(
            &mut out,
            "boxoffice_seats_hold_steps_total",
            "counter",
            "Confirms, extends and releases",
            &labelled("boxoffice_seats_hold_steps_total", "step", &|c| {
                c.steps.each().collect()
            }),
        );
        let coupon_meters = self.coupons.read();
        let none = CouponMeter::default();
        let cp = |c: &CouponId| coupon_meters.get(c).unwrap_or(&none);
        let coupon_gauge =
            |name: &str, v: &dyn Fn(&boxoffice_engine::coupons::CouponCounts) -> u32| {
                coupons
                    .iter()
                    .map(|(c, n)| format!("{name}{{coupon=\"{c}\"}} {}", v(n)))
                    .collect::<Vec<_>>()
            };
        family(
            &mut out,
            "boxoffice_coupons_stock",
            "gauge",
            "Coupon stock",
            &coupon_gauge("boxoffice_coupons_stock", &|n| n.stock),
        );
        family(
            &mut out,
            "boxoffice_coupons_issued",
            "gauge",
            "Coupons issued (live claims)",
            &coupon_gauge("boxoffice_coupons_issued", &|n| n.issued),
        );
        family(
            &mut out,
            "boxoffice_coupons_remaining",
            "gauge",
            "Coupons left",
            &coupon_gauge("boxoffice_coupons_remaining", &|n| n.remaining),
        );
        let mut claims = Vec::new();
        for (c, _) in &coupons {
            for (k, n) in cp(c).claims.each() {
                claims.push(format!(
                    "boxoffice_coupons_claims_total{{coupon=\"{c}\",outcome=\"{k}\"}} {n}"
                ));
            }
        }
        family(
            &mut out,
            "boxoffice_coupons_claims_total",
            "counter",
            "Claims by outcome",
            &claims,
        );
        let returns: Vec<String> = coupons
            .iter()
            .map(|(c, _)| {
                format!(
                    "boxoffice_coupons_returns_total{{coupon=\"{c}\"}} {}",
                    load(&cp(c).returns)
                )
            })
            .collect();
        family(
            &mut out,
            "boxoffice_coupons_returns_total",
            "counter",
            "Claims given back",
            &returns,
        );
        out
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

fn load(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// Every phase, in the order `boxoffice_queue_phase` lists them.
const PHASES: [Phase; 4] = [Phase::Prequeue, Phase::Open, Phase::Paused, Phase::Closed];

/// Unlabelled counters, registered at zero on start.
const GLOBAL_COUNTERS: &[&str] = &[
    "boxoffice_queue_admissions_total",
    "boxoffice_queue_idle_drops_total",
    "boxoffice_queue_sessions_expired_total",
    "boxoffice_queue_rooms_opened_total",
    "boxoffice_seats_holds_expired_total",
    "boxoffice_queue_polls_limited_total",
];

/// `route` of `boxoffice_http_rate_limited_total` for joins through the gate.
pub const GATE_ROUTE: &str = "gate";
/// The join's route pattern (the label the API's join counts under).
const JOIN_ROUTE: &str = "/v1/events/{event}/queue";
/// Every `route` of `boxoffice_http_rate_limited_total`, registered at zero
/// on start: only joins are limited per address.
pub const RATE_LIMITED_ROUTES: [&str; 2] = [JOIN_ROUTE, GATE_ROUTE];

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
        "boxoffice_http_open_connections",
        "Connections holding a --max-connections slot (live streams give theirs back), by listener"
    );
    describe_counter!(
        "boxoffice_queue_admissions_total",
        "Admissions made by the driver, all events"
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
    describe_counter!(
        "boxoffice_seats_holds_expired_total",
        "Holds expired by the driver, all events"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The join's label is a real route pattern (the join passes its own).
    #[test]
    fn the_rate_limited_join_route_is_a_route() {
        assert!(crate::http::router::ROUTES
            .iter()
            .any(|r| r.pattern == JOIN_ROUTE));
    }

    /// A request counted through the pre-registered handles lands in the
    /// same series as one counted by label; every status with a slot has a
    /// label; a status or slot without one still counts, by label.
    #[test]
    fn handles_and_labels_count_the_same_series() {
        for s in STATUSES {
            assert!(status_label(s).is_some(), "{s}");
        }
        let m = Metrics::new();
        let route = crate::http::router::ROUTES[0].pattern;
        let ms = Duration::from_millis(1);
        m.api_request(0, route, "GET", 200, ms);
        m.api_request(0, route, "GET", 200, ms);
        m.http(route, "GET", 200, ms);
        m.api_request(SLOT_UNMATCHED, "unmatched", "GET", 404, ms);
        m.api_request(0, route, "GET", 418, ms);
        m.api_request(SLOTS + 5, route, "GET", 200, ms);
        let out = m.handle.render();
        let line = |status: &str, r: &str| {
            out.lines()
                .find(|l| {
                    l.starts_with("boxoffice_http_requests_total{")
                        && l.contains(&format!("route=\"{r}\""))
                        && l.contains(&format!("status=\"{status}\""))
                })
                .map(|l| l.rsplit(' ').next().unwrap_or("").to_string())
        };
        assert_eq!(line("200", route).as_deref(), Some("4"), "{out}");
        assert_eq!(line("404", "unmatched").as_deref(), Some("1"));
        assert_eq!(line("418", route).as_deref(), Some("1"));
        let hist = format!(
            "boxoffice_http_request_duration_seconds_count{{route=\"{route}\",method=\"GET\"}} 5"
        );
        assert!(out.contains(&hist), "{out}");
    }
}
