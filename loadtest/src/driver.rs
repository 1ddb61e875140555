//! The open-loop driver.
//!
//! Virtual users are rows of two tables (the [`VuRecord`] the report reads
//! and a compact [`VuState`] of what the VU does next), not tasks: a million
//! waiting VUs cost a few hundred bytes each and nothing on the scheduler
//! until their next action is due. One thread (a current-thread runtime; the
//! other core belongs to the server) runs
//! - the scheduler: every millisecond it moves due arrivals (computed lazily
//!   from the arrival curve) and due actions (a binary heap keyed by intended
//!   time) onto a ready queue;
//! - a fixed pool of keep-alive HTTP/1.1 connections, each a small task
//!   bound to one of several 127.0.0.x source addresses, taking the next
//!   ready request; when all are busy the queue grows and the delay shows as
//!   send lag and latency (measured from the intended time), never as a
//!   thinner load;
//! - one task per SSE stream (capped by the scenario), one sampler.
//!
//! Everything runs on one `LocalSet`, so the shared state is a `RefCell`
//! borrowed only between awaits.

use crate::http::{self, Auth, Conn, Realm, Req, SseParser, StatusDoc};
use crate::recorder::Recorder;
use crate::scenario::{Scenario, Schedule};
use anyhow::Result;
use boxoffice_engine::{EventId, PassKey, UserId, UserToken};
use boxoffice_loadtest::model::{
    self, AdmittedRecord, Behaviour, ClaimRecord, EndKind, EndRecord, HoldOutcome, HoldRecord,
    IdentityMode, Observation, Op, Purchase, Sample, SecondStats, VuRecord,
};
use hyper::Method;
use serde::Deserialize;
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// What the driver was given: the event and coupon it created, and how to
/// reach the server.
#[derive(Debug)]
pub struct Plan {
    pub sc: Scenario,
    pub event: String,
    pub coupon: String,
    pub dst: SocketAddr,
    pub auth: Auth,
    /// Signs user tokens (identity `signed`).
    pub key: Option<PassKey>,
    pub sources: Vec<Ipv4Addr>,
    /// Wall clock (Unix ms) and monotonic clock of the run's start.
    pub t0_ms: u64,
    pub t0: Instant,
    pub progress: bool,
    /// The server's PID when this tool started it: the run stops (and
    /// fails) as soon as the process is gone.
    pub server_pid: Option<u32>,
}

/// What the driver recorded.
#[derive(Debug, Default)]
pub struct Played {
    pub vus: Vec<VuRecord>,
    pub samples: Vec<Sample>,
    pub seconds: Vec<SecondStats>,
    pub ops: Vec<model::OpStats>,
    pub errors: Vec<model::ErrorCount>,
    pub requests: u64,
    pub max_send_lag_ms: u64,
    pub peak_streams: u64,
    /// Most requests in flight at once: equal to `limits.connections` means
    /// the pool was saturated (requests queued in the client).
    pub peak_in_flight: u64,
    pub poll_budget_per_s: u32,
    /// The run hit `limits.max_duration_s` with work left.
    pub timed_out: bool,
    /// The server process ended during the run.
    pub server_died: bool,
    pub ended_ms: u64,
}

/// Next actions. `Pay` and `StreamStart` are not requests: the scheduler
/// handles them itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Act {
    Join,
    Poll0,
    Poll1,
    IdleCheck,
    Rejoin,
    Leave,
    StreamStart,
    SeatMap,
    Hold,
    Claim,
    ExtraClaim,
    Pay,
    Confirm,
    Release,
    ReturnCoupon,
    Complete,
}

impl Act {
    fn op(self) -> Op {
        match self {
            Act::Join | Act::Rejoin => Op::Join,
            Act::Poll0 | Act::Poll1 | Act::IdleCheck => Op::Status,
            Act::Leave => Op::Leave,
            Act::StreamStart => Op::StreamOpen,
            Act::SeatMap => Op::SeatMap,
            Act::Hold => Op::Hold,
            Act::Claim | Act::ExtraClaim => Op::Claim,
            Act::Confirm | Act::Pay => Op::Confirm,
            Act::Release => Op::Release,
            Act::ReturnCoupon => Op::ReturnCoupon,
            Act::Complete => Op::Complete,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Job {
    vu: u32,
    act: Act,
    /// Intended time, µs since the start.
    at_us: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    /// Arrived, join in flight.
    #[default]
    Joining,
    /// In line (pre-queue or waiting), following the advice.
    Waiting,
    /// In line but deliberately silent (behaviour `idle`).
    Silent,
    /// Admitted: buying.
    Admitted,
    /// Nothing more to do.
    Done,
}

const PAY_FAILS: u8 = 1;
const EXTRA: u8 = 2;
const CHOICE: u8 = 4;
const LEAVING: u8 = 8;

/// What a VU does next: kept small (a million of them).
#[derive(Debug, Default)]
struct VuState {
    phase: Phase,
    flags: u8,
    /// Hold attempts so far (the retry ladder over sections/categories).
    attempt: u8,
    /// Seats wanted.
    want: u8,
    /// Last poll per tab, ms since the start (0: none yet).
    last_poll_ms: [u32; 2],
    pass: Option<Box<str>>,
    /// Seats picked from the map, for the hold that follows.
    picked: Option<Box<[String]>>,
}

/// What the last sample said about the room.
#[derive(Clone, Copy, Debug, Default)]
struct View {
    closed: bool,
    steady: bool,
}

/// The outcome of one request.
#[derive(Debug)]
enum Outcome {
    Answer(http::Resp),
    /// Transport failure (`"io"`) or no answer in time (`"timeout"`).
    Failed(&'static str),
}

#[derive(Debug)]
struct Core {
    sc: Rc<Scenario>,
    event: String,
    coupon: String,
    key: Option<PassKey>,
    event_id: Option<EventId>,
    t0: Instant,
    t0_ms: u64,
    seed: u64,
    vus: Vec<VuRecord>,
    st: Vec<VuState>,
    heap: BinaryHeap<Reverse<(u64, u32, Act)>>,
    ready: VecDeque<Job>,
    schedule: Schedule,
    rec: Recorder,
    view: View,
    samples: Vec<Sample>,
    poll_budget_per_s: u32,
    in_line: u64,
    admitted: u64,
    sold: u64,
    in_flight: u64,
    peak_in_flight: u64,
    streams_open: u64,
    peak_streams: u64,
    streams_started: u32,
    pending_streams: Vec<Job>,
    gauges_upto_s: u32,
    rng: u64,
    stop: bool,
    notify: Rc<Notify>,
}

/// SplitMix64: small, fast, good enough for scenario draws.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn json_str(s: &str) -> String {
    // serde_json escapes exactly as JSON needs.
    serde_json::Value::String(s.to_string()).to_string()
}

impl Core {
    fn now_us(&self) -> u64 {
        self.t0.elapsed().as_micros() as u64
    }
    fn now_s(&self) -> u32 {
        (self.now_us() / 1_000_000) as u32
    }
    fn wall_ms(&self) -> u64 {
        self.t0_ms + self.now_us() / 1000
    }
    /// A deterministic draw in [0, 1) for VU `vu`, purpose `salt`.
    fn draw(&self, vu: u32, salt: u64) -> f64 {
        unit(mix(self.seed ^ (u64::from(vu) << 8) ^ salt))
    }
    fn next_rand(&mut self) -> u64 {
        self.rng = mix(self.rng);
        self.rng
    }

    fn at(&mut self, vu: u32, act: Act, at_us: u64) {
        if at_us <= self.now_us() && act != Act::Pay && act != Act::StreamStart {
            self.ready.push_back(Job { vu, act, at_us });
            self.notify.notify_one();
        } else {
            self.heap.push(Reverse((at_us, vu, act)));
        }
    }

    fn after_ms(&mut self, vu: u32, act: Act, ms: u64) {
        let at = self.now_us() + ms * 1000;
        self.at(vu, act, at);
    }

    fn after_s(&mut self, vu: u32, act: Act, s: f64) {
        let at = self.now_us() + (s * 1e6) as u64;
        self.at(vu, act, at);
    }

    /// Moves everything due onto the ready queue; returns whether the run
    /// is over (nothing left to do, or out of time).
    fn tick(&mut self) -> bool {
        let now = self.now_us();
        while let Some(at) = self.schedule.peek() {
            if at > now {
                break;
            }
            self.schedule.next_arrival();
            self.arrive(at);
        }
        while let Some(Reverse((at, vu, act))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            match act {
                Act::Pay => self.pay(vu, at),
                Act::StreamStart => self.pending_streams.push(Job { vu, act, at_us: at }),
                _ => {
                    self.ready.push_back(Job { vu, act, at_us: at });
                    self.notify.notify_one();
                }
            }
        }
        let now_s = (now / 1_000_000) as u32;
        while self.gauges_upto_s < now_s {
            let t = self.gauges_upto_s;
            let (in_line, streams, in_flight) = (self.in_line, self.streams_open, self.in_flight);
            let s = self.rec.sec(t);
            s.in_line = in_line;
            s.streams_open = streams;
            s.in_flight = in_flight;
            self.gauges_upto_s += 1;
        }
        let idle = self.schedule.peek().is_none()
            && self.heap.is_empty()
            && self.ready.is_empty()
            && self.in_flight == 0
            && self.streams_open == 0
            && self.pending_streams.is_empty();
        idle || now as f64 >= self.sc.limits.max_duration_s * 1e6
    }

    fn arrive(&mut self, at_us: u64) {
        let vu = self.vus.len() as u32;
        let mut behaviour = self.sc.behaviour_for(self.draw(vu, 1));
        if behaviour == Behaviour::Stream {
            // Streams beyond the cap poll instead (and are recorded so).
            if self.streams_started >= self.sc.limits.max_streams {
                behaviour = Behaviour::Poll;
            } else {
                self.streams_started += 1;
            }
        }
        let p = &self.sc.purchase;
        let mut flags = 0;
        if self.draw(vu, 2) < p.pay_failure {
            flags |= PAY_FAILS;
        } else if self.draw(vu, 3) < p.extra_claim {
            flags |= EXTRA;
        }
        if self.draw(vu, 4) < p.choice {
            flags |= CHOICE;
        }
        let span = p.seats_max - p.seats_min + 1;
        let want = p.seats_min + ((self.draw(vu, 5) * f64::from(span)) as u32).min(span - 1);
        let user = match self.sc.event.identity {
            IdentityMode::Anonymous => None,
            _ => Some(format!("u{vu}")),
        };
        self.vus.push(VuRecord {
            id: vu,
            behaviour,
            user,
            arrive_ms: self.t0_ms + at_us / 1000,
            ..VuRecord::default()
        });
        self.st.push(VuState {
            flags,
            want: want as u8,
            ..VuState::default()
        });
        self.ready.push_back(Job {
            vu,
            act: Act::Join,
            at_us,
        });
        self.notify.notify_one();
    }

    fn queue_path(&self, vu: u32, tail: &str) -> Option<String> {
        let t = self.vus[vu as usize].ticket.as_deref()?;
        Some(format!("/v1/events/{}/queue/{t}{tail}", self.event))
    }

    fn join_req(&self, vu: u32) -> Req {
        let path = format!("/v1/events/{}/queue", self.event);
        let user = self.vus[vu as usize].user.as_deref();
        match (self.sc.event.identity, user) {
            (IdentityMode::Service, Some(u)) => Req::new(
                Method::POST,
                path,
                Realm::Service,
                Some(format!("{{\"user\":{}}}", json_str(u)).into_bytes()),
            ),
            (IdentityMode::Signed, Some(u)) => {
                let token = match (&self.key, &self.event_id, UserId::new(u)) {
                    (Some(k), Some(e), Ok(uid)) => {
                        let exp = self.t0_ms / 1000 + 86_400;
                        UserToken::new(e, &uid, exp).mint(k)
                    }
                    _ => String::new(),
                };
                Req::new(
                    Method::POST,
                    path,
                    Realm::Public,
                    Some(
                        format!(
                            "{{\"user\":{},\"user_token\":{}}}",
                            json_str(u),
                            json_str(&token)
                        )
                        .into_bytes(),
                    ),
                )
            }
            _ => Req::new(Method::POST, path, Realm::Public, Some(b"{}".to_vec())),
        }
    }

    /// The request for a job, or None when the job is stale (the VU moved on).
    fn build(&mut self, job: Job) -> Option<Req> {
        let i = job.vu as usize;
        let phase = self.st[i].phase;
        let ms_now = (self.now_us() / 1000) as u32;
        // Only the purchase steps need the user id (not polls: no clone).
        let user = || self.vus[i].user.clone().unwrap_or_default();
        match job.act {
            Act::Join => Some(self.join_req(job.vu)),
            Act::Rejoin => (phase == Phase::Waiting).then(|| self.join_req(job.vu)),
            Act::Poll0 | Act::Poll1 | Act::IdleCheck => {
                let ok = match job.act {
                    Act::IdleCheck => phase == Phase::Silent,
                    _ => phase == Phase::Waiting && self.st[i].flags & LEAVING == 0,
                };
                if !ok {
                    return None;
                }
                let tab = usize::from(job.act == Act::Poll1);
                let last = self.st[i].last_poll_ms[tab];
                if last > 0 && job.act != Act::IdleCheck {
                    let gap = u64::from(ms_now.saturating_sub(last));
                    let v = &mut self.vus[i];
                    v.min_poll_gap_ms = Some(v.min_poll_gap_ms.map_or(gap, |g| g.min(gap)));
                }
                self.st[i].last_poll_ms[tab] = ms_now.max(1);
                let t = self.now_s();
                self.rec.sec(t).polls += 1;
                self.queue_path(job.vu, "").map(Req::get)
            }
            Act::Leave => {
                if matches!(phase, Phase::Done | Phase::Joining) {
                    return None;
                }
                self.queue_path(job.vu, "")
                    .map(|p| Req::new(Method::DELETE, p, Realm::Public, None))
            }
            _ if phase != Phase::Admitted => None,
            Act::SeatMap => {
                let secs = &self.sc.event.sections;
                let k = (job.vu as usize + usize::from(self.st[i].attempt)) % secs.len();
                Some(Req::get(format!(
                    "/v1/events/{}/seats?section={}",
                    self.event, secs[k].name
                )))
            }
            Act::Hold => {
                let st = &self.st[i];
                let pass = st.pass.as_deref().unwrap_or("");
                let body = match &st.picked {
                    Some(seats) => {
                        let list: Vec<String> = seats.iter().map(|s| json_str(s)).collect();
                        format!(
                            "{{\"user\":{},\"pass\":{},\"seats\":[{}]}}",
                            json_str(&user()),
                            json_str(pass),
                            list.join(",")
                        )
                    }
                    None => {
                        let (cat, count) = self.best_try(job.vu);
                        format!(
                            "{{\"user\":{},\"pass\":{},\"best\":{{\"count\":{count},\"category\":{}}}}}",
                            json_str(&user()),
                            json_str(pass),
                            json_str(&cat)
                        )
                    }
                };
                Some(Req::new(
                    Method::POST,
                    format!("/v1/events/{}/holds", self.event),
                    Realm::Service,
                    Some(body.into_bytes()),
                ))
            }
            Act::Claim | Act::ExtraClaim => {
                let mut r = Req::new(
                    Method::POST,
                    format!("/v1/coupons/{}/claims", self.coupon),
                    Realm::Service,
                    Some(format!("{{\"user\":{}}}", json_str(&user())).into_bytes()),
                );
                if job.act == Act::Claim {
                    // The first claim is retry-safe, as a backend's would be;
                    // the extra one is a distinct purchase.
                    r.idempotency_key = Some(format!("claim-{}", job.vu));
                }
                Some(r)
            }
            Act::Confirm | Act::Release => {
                let h = self.vus[i].hold.as_ref()?.hold.clone();
                let path = format!("/v1/events/{}/holds/{h}", self.event);
                Some(if job.act == Act::Confirm {
                    Req::new(
                        Method::POST,
                        format!("{path}/confirm"),
                        Realm::Service,
                        Some(format!("{{\"order\":\"o-{}\"}}", job.vu).into_bytes()),
                    )
                } else {
                    Req::new(Method::DELETE, path, Realm::Service, None)
                })
            }
            Act::ReturnCoupon => {
                let k = self.vus[i].claim.as_ref()?.claim.clone();
                Some(Req::new(
                    Method::DELETE,
                    format!("/v1/coupons/{}/claims/{k}", self.coupon),
                    Realm::Service,
                    None,
                ))
            }
            Act::Complete => self
                .queue_path(job.vu, "/complete")
                .map(|p| Req::new(Method::POST, p, Realm::Service, None)),
            Act::Pay | Act::StreamStart => None,
        }
    }

    /// The category and count of a best-available attempt: each category
    /// (from one chosen per VU) with the wanted count, then each with one.
    fn best_try(&self, vu: u32) -> (String, u32) {
        let cats = categories(&self.sc);
        let a = usize::from(self.st[vu as usize].attempt);
        let cat = cats[(vu as usize + a) % cats.len()].clone();
        let count = if a < cats.len() {
            u32::from(self.st[vu as usize].want)
        } else {
            1
        };
        (cat, count)
    }

    fn leave_line(&mut self, vu: u32) {
        let st = &mut self.st[vu as usize];
        if matches!(st.phase, Phase::Waiting | Phase::Silent) {
            self.in_line = self.in_line.saturating_sub(1);
        }
    }

    fn done(&mut self, vu: u32) {
        self.leave_line(vu);
        let st = &mut self.st[vu as usize];
        st.phase = Phase::Done;
        st.pass = None;
        st.picked = None;
    }

    /// One answer (or failure) for a job.
    fn complete(&mut self, job: Job, sent_us: u64, out: Outcome) {
        let now = self.now_us();
        let t = (now / 1_000_000) as u32;
        let op = job.act.op();
        self.rec.latency(op, t, now.saturating_sub(job.at_us));
        let (status, body) = match &out {
            Outcome::Answer(r) => (r.status, &r.body[..]),
            Outcome::Failed(_) => (0, &b""[..]),
        };
        if status >= 400 || status == 0 {
            let code = match &out {
                Outcome::Failed(c) => (*c).to_string(),
                Outcome::Answer(r) => http::error_code(&r.body),
            };
            self.rec.error(op, t, status, &code);
        }
        let retry_ms = match &out {
            Outcome::Answer(r) => r.retry_after_s.map(|s| s.clamp(1, 60) * 1000),
            Outcome::Failed(_) => None,
        };
        let sent_ms = self.t0_ms + sent_us / 1000;
        let ack_ms = self.t0_ms + now / 1000;
        let vu = job.vu;
        let i = vu as usize;
        match job.act {
            Act::Join => {
                let v = &mut self.vus[i];
                v.join_sent_ms = Some(sent_ms);
                v.join_ack_ms = Some(ack_ms);
                v.join_status = (status != 0).then_some(status);
                match (status, http::status_doc(body)) {
                    (200 | 201, Some(doc)) => {
                        self.rec.sec(t).joins += 1;
                        let v = &mut self.vus[i];
                        v.ticket = doc.ticket.as_deref().map(str::to_string);
                        v.join_no = v.ticket.as_deref().and_then(model::join_no);
                        if v.user.is_none() {
                            v.user = doc.user.as_deref().map(str::to_string);
                        }
                        if v.ticket.is_none() {
                            self.rec.error(op, t, status, "no_ticket");
                            self.done(vu);
                            return;
                        }
                        self.status(vu, &doc, Act::Join);
                    }
                    (200 | 201, None) => {
                        self.rec.error(op, t, status, "bad_document");
                        self.done(vu);
                    }
                    _ => self.done(vu),
                }
            }
            Act::Rejoin => match (status, http::status_doc(body)) {
                (200 | 201, Some(doc)) => {
                    let same = doc.ticket.as_deref() == self.vus[i].ticket.as_deref();
                    self.vus[i].rejoin_same_ticket = Some(same);
                    self.status(vu, &doc, Act::Rejoin);
                }
                _ => {
                    if self.st[i].phase == Phase::Waiting {
                        self.after_ms(vu, Act::Poll0, 1000);
                    }
                }
            },
            Act::Poll0 | Act::Poll1 | Act::IdleCheck => match (status, http::status_doc(body)) {
                (200, Some(doc)) => {
                    if job.act == Act::IdleCheck {
                        self.vus[i].idle_checked = true;
                    }
                    self.status(vu, &doc, job.act);
                }
                (404, _) => {
                    self.vus[i].final_state = Some("not_found".into());
                    self.done(vu);
                }
                _ => {
                    // Refused (429), failed or unreadable: try again when
                    // told to (Retry-After), else in a second.
                    let tab = if job.act == Act::Poll1 {
                        Act::Poll1
                    } else {
                        Act::Poll0
                    };
                    if job.act == Act::IdleCheck {
                        self.st[i].phase = Phase::Waiting;
                    }
                    self.after_ms(vu, tab, retry_ms.unwrap_or(1000));
                }
            },
            Act::Leave => {
                let kind = EndKind::Leave;
                self.vus[i].ended = Some(EndRecord {
                    kind,
                    sent_ms,
                    ack_ms,
                    status,
                });
                if status == 204 {
                    self.vus[i].final_state = Some("left".into());
                }
                if self.st[i].phase == Phase::Admitted && self.vus[i].purchase.is_none() {
                    self.vus[i].purchase = Some(Purchase::GaveUp);
                }
                self.done(vu);
            }
            Act::SeatMap => {
                let picked = (status == 200).then(|| self.pick_seats(vu, body)).flatten();
                let st = &mut self.st[i];
                match picked {
                    Some(seats) => {
                        st.picked = Some(seats.into_boxed_slice());
                        self.next_step(vu, Act::Hold, 0.0);
                    }
                    None => {
                        st.attempt += 1;
                        if usize::from(st.attempt) >= self.sc.event.sections.len() {
                            st.flags &= !CHOICE;
                            st.attempt = 0;
                            self.next_step(vu, Act::Hold, 0.0);
                        } else {
                            self.next_step(vu, Act::SeatMap, 0.0);
                        }
                    }
                }
            }
            Act::Hold => self.held(vu, status, body, t),
            Act::Claim => {
                if status == 201 {
                    if let Some(c) = parse_field(body, "claim") {
                        self.rec.sec(t).claims += 1;
                        self.vus[i].claim = Some(ClaimRecord {
                            claim: c,
                            returned: false,
                            extra_accepted: 0,
                            extra_refused: 0,
                        });
                        if self.st[i].flags & EXTRA != 0 {
                            self.next_step(vu, Act::ExtraClaim, 0.0);
                            return;
                        }
                    }
                }
                let pay = self.sc.purchase.pay_s;
                self.next_step(vu, Act::Pay, pay);
            }
            Act::ExtraClaim => {
                if let Some(c) = &mut self.vus[i].claim {
                    match status {
                        201 => c.extra_accepted += 1,
                        409 => c.extra_refused += 1,
                        _ => {}
                    }
                }
                if status == 201 {
                    self.rec.sec(t).claims += 1;
                }
                let pay = self.sc.purchase.pay_s;
                self.next_step(vu, Act::Pay, pay);
            }
            Act::Confirm => {
                let sold = status == 200 && parse_field(body, "state").as_deref() == Some("sold");
                if let Some(h) = &mut self.vus[i].hold {
                    if sold {
                        h.outcome = HoldOutcome::Sold;
                        h.done_ms = ack_ms;
                    }
                }
                if sold {
                    let n = self.vus[i]
                        .hold
                        .as_ref()
                        .map_or(0, |h| h.seats.len() as u64);
                    self.sold += n;
                    self.rec.sec(t).sold += n;
                    self.vus[i].purchase = Some(Purchase::Bought);
                } else if self.vus[i].purchase.is_none() {
                    self.vus[i].purchase = Some(Purchase::GaveUp);
                }
                self.next_step(vu, Act::Complete, 0.0);
            }
            Act::Release => {
                if status == 204 {
                    if let Some(h) = &mut self.vus[i].hold {
                        h.outcome = HoldOutcome::Released;
                        h.done_ms = ack_ms;
                    }
                }
                self.vus[i].purchase = Some(Purchase::PaymentFailed);
                if self.vus[i].claim.is_some() {
                    self.next_step(vu, Act::ReturnCoupon, 0.0);
                } else {
                    self.next_step(vu, Act::Complete, 0.0);
                }
            }
            Act::ReturnCoupon => {
                if status == 204 {
                    if let Some(c) = &mut self.vus[i].claim {
                        c.returned = true;
                    }
                }
                self.next_step(vu, Act::Complete, 0.0);
            }
            Act::Complete => {
                self.vus[i].ended = Some(EndRecord {
                    kind: EndKind::Complete,
                    sent_ms,
                    ack_ms,
                    status,
                });
                self.done(vu);
            }
            Act::Pay | Act::StreamStart => {}
        }
    }

    /// Schedules the next purchase step if the VU is still buying.
    fn next_step(&mut self, vu: u32, act: Act, after_s: f64) {
        if self.st[vu as usize].phase == Phase::Admitted {
            self.after_s(vu, act, after_s);
        }
    }

    fn held(&mut self, vu: u32, status: u16, body: &[u8], t: u32) {
        let i = vu as usize;
        #[derive(Deserialize)]
        struct H {
            hold: String,
            seats: Vec<String>,
        }
        let picked = self.st[i].picked.take();
        if status == 201 {
            if let Ok(h) = serde_json::from_slice::<H>(body) {
                self.rec.sec(t).holds += 1;
                self.vus[i].hold = Some(HoldRecord {
                    hold: h.hold,
                    seats: h.seats,
                    outcome: HoldOutcome::Lapsed,
                    done_ms: 0,
                });
                self.next_step(vu, Act::Claim, 0.0);
                return;
            }
        }
        if status == 409 && !self.view.closed {
            let st = &mut self.st[i];
            if picked.is_some() {
                // Someone was faster on the map: pick again, then best.
                st.attempt += 1;
                if usize::from(st.attempt) < self.sc.event.sections.len() {
                    self.next_step(vu, Act::SeatMap, 0.0);
                } else {
                    st.attempt = 0;
                    st.flags &= !CHOICE;
                    self.next_step(vu, Act::Hold, 0.0);
                }
                return;
            }
            st.attempt += 1;
            if usize::from(st.attempt) < 2 * categories(&self.sc).len() {
                self.next_step(vu, Act::Hold, 0.0);
                return;
            }
        }
        self.vus[i].purchase = Some(if status == 409 {
            Purchase::NoSeats
        } else {
            Purchase::GaveUp
        });
        self.next_step(vu, Act::Complete, 0.0);
    }

    /// `want` adjacent free seats from a seat map answer, starting at a
    /// random row and place.
    fn pick_seats(&mut self, vu: u32, body: &[u8]) -> Option<Vec<String>> {
        #[derive(Deserialize)]
        struct Map {
            section: String,
            rows: Vec<Row>,
        }
        #[derive(Deserialize)]
        struct Row {
            row: String,
            first: u32,
            status: String,
        }
        let map: Map = serde_json::from_slice(body).ok()?;
        let want = usize::from(self.st[vu as usize].want.max(1));
        let n = map.rows.len();
        if n == 0 {
            return None;
        }
        let r0 = self.next_rand() as usize % n;
        for k in 0..n {
            let row = &map.rows[(r0 + k) % n];
            let s = row.status.as_bytes();
            if s.len() < want {
                continue;
            }
            let c0 = self.next_rand() as usize % s.len();
            for j in 0..s.len() {
                let start = (c0 + j) % s.len();
                if start + want <= s.len() && s[start..start + want].iter().all(|&b| b == b'F') {
                    return Some(
                        (0..want)
                            .map(|d| {
                                format!(
                                    "{}-{}-{}",
                                    map.section,
                                    row.row,
                                    row.first as usize + start + d
                                )
                            })
                            .collect(),
                    );
                }
            }
        }
        None
    }

    /// Payment: fails (release, return the coupon, complete) or succeeds
    /// (confirm, complete), as drawn at arrival.
    fn pay(&mut self, vu: u32, at_us: u64) {
        let i = vu as usize;
        if self.st[i].phase != Phase::Admitted {
            return;
        }
        let next = if self.vus[i].hold.is_none() {
            Act::Complete
        } else if self.st[i].flags & PAY_FAILS != 0 {
            Act::Release
        } else {
            Act::Confirm
        };
        self.ready.push_back(Job {
            vu,
            act: next,
            at_us,
        });
        self.notify.notify_one();
    }

    /// A status document, from a join, a rejoin, a poll or a stream.
    /// Returns whether the ticket left the line (a stream ends then).
    fn status(&mut self, vu: u32, doc: &StatusDoc<'_>, src: Act) -> bool {
        let i = vu as usize;
        let now_ms = self.wall_ms();
        let state = doc.state.as_ref();
        match state {
            "waiting" | "prequeue" => {
                match self.st[i].phase {
                    Phase::Joining => {
                        self.st[i].phase = Phase::Waiting;
                        self.in_line += 1;
                    }
                    Phase::Silent if src == Act::IdleCheck => {
                        // Not dropped after all: the truth checks will see
                        // it in `final_state`; carry on polling.
                        self.st[i].phase = Phase::Waiting;
                    }
                    Phase::Waiting | Phase::Silent => {}
                    Phase::Admitted | Phase::Done => return true,
                }
                let advice = doc.poll_after_ms.unwrap_or(1000).max(100);
                if state == "waiting" {
                    let obs = Observation {
                        at_ms: now_ms,
                        position: doc.position.unwrap_or(0),
                        waiting: doc.waiting.unwrap_or(0),
                        eta_s: doc.eta_s,
                        poll_after_ms: advice,
                    };
                    self.vus[i].observe(obs, self.view.steady);
                }
                if self.vus[i].final_state.as_deref() != Some(state) {
                    self.vus[i].final_state = Some(state.to_string());
                }
                if self.sc.event.leave_when_sold_out
                    && self.view.closed
                    && self.st[i].flags & LEAVING == 0
                {
                    // Sold out: people leave (a stream VU too; its stream
                    // ends with the `left` the server then sends).
                    self.st[i].flags |= LEAVING;
                    self.after_ms(vu, Act::Leave, 0);
                    return false;
                }
                match src {
                    Act::Join => self.first_steps(vu, advice),
                    Act::Poll1 => self.after_ms(vu, Act::Poll1, advice),
                    Act::StreamStart => {}
                    _ => self.after_ms(vu, Act::Poll0, advice),
                }
                false
            }
            "admitted" => {
                if !matches!(
                    self.st[i].phase,
                    Phase::Joining | Phase::Waiting | Phase::Silent
                ) {
                    return true;
                }
                self.leave_line(vu);
                self.st[i].phase = Phase::Admitted;
                self.admitted += 1;
                let t = self.now_s();
                self.rec.sec(t).admitted_seen += 1;
                let v = &mut self.vus[i];
                v.final_state = Some("admitted".into());
                match doc
                    .pass
                    .as_deref()
                    .and_then(|p| http::pass_times(p).map(|x| (p, x)))
                {
                    Some((pass, (iat, exp))) => {
                        v.admitted = Some(AdmittedRecord {
                            iat_ms: iat,
                            exp_ms: exp,
                            seen_ms: now_ms,
                        });
                        self.st[i].pass = Some(pass.into());
                        let first = if self.view.closed {
                            // Sold out: nothing to buy; end the session.
                            self.vus[i].purchase = Some(Purchase::NoSeats);
                            Act::Complete
                        } else if self.st[i].flags & CHOICE != 0 {
                            Act::SeatMap
                        } else {
                            Act::Hold
                        };
                        let think = self.sc.purchase.think_s;
                        self.after_s(vu, first, think);
                    }
                    None => {
                        self.rec.error(Op::Status, t, 200, "bad_pass");
                        self.vus[i].purchase = Some(Purchase::GaveUp);
                        self.after_ms(vu, Act::Complete, 0);
                    }
                }
                true
            }
            other => {
                self.vus[i].final_state = Some(other.to_string());
                self.done(vu);
                true
            }
        }
    }

    /// After the join: what the behaviour does first.
    fn first_steps(&mut self, vu: u32, advice: u64) {
        let i = vu as usize;
        match self.vus[i].behaviour {
            Behaviour::Poll => self.after_ms(vu, Act::Poll0, advice),
            Behaviour::Abandon => {
                self.after_ms(vu, Act::Poll0, advice);
                let within = self.sc.behaviour.abandon_within_s;
                let s = self.draw(vu, 6) * within;
                self.after_s(vu, Act::Leave, s);
            }
            Behaviour::SecondTab => {
                self.after_ms(vu, Act::Poll0, advice);
                self.after_ms(vu, Act::Poll1, advice / 2);
            }
            Behaviour::Refresh => self.after_ms(vu, Act::Rejoin, advice),
            Behaviour::Idle => {
                self.st[i].phase = Phase::Silent;
                // Silent past the presence deadline the join's advice set
                // (`max(idle, advice + ⅔ idle)`, docs/api.md), then a read.
                let idle_ms = u64::from(self.sc.event.idle_timeout_s) * 1000;
                let ms = boxoffice_engine::queue::advice::grace(advice, idle_ms) + 1500;
                self.after_ms(vu, Act::IdleCheck, ms);
            }
            Behaviour::Stream => {
                let now = self.now_us();
                self.at(vu, Act::StreamStart, now);
            }
        }
    }

    fn take_stream_jobs(&mut self) -> Vec<Job> {
        std::mem::take(&mut self.pending_streams)
    }
}

fn categories(sc: &Scenario) -> Vec<String> {
    let mut c: Vec<String> = Vec::new();
    for s in &sc.event.sections {
        if !c.contains(&s.category) {
            c.push(s.category.clone());
        }
    }
    c
}

fn parse_field(body: &[u8], field: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get(field)?.as_str().map(str::to_string)
}

type Shared = Rc<RefCell<Core>>;

/// One keep-alive connection working the ready queue.
async fn worker(core: Shared, src: Ipv4Addr, dst: SocketAddr, auth: Rc<Auth>, timeout: Duration) {
    let notify = core.borrow().notify.clone();
    let mut conn: Option<Conn> = None;
    loop {
        let (job, req) = loop {
            let next = {
                let mut c = core.borrow_mut();
                if c.stop {
                    return;
                }
                c.ready.pop_front().map(|job| (job, c.build(job)))
            };
            match next {
                Some((job, Some(req))) => break (job, req),
                Some((_, None)) => continue,
                None => notify.notified().await,
            }
        };
        let sent_us = {
            let mut c = core.borrow_mut();
            let now = c.now_us();
            c.in_flight += 1;
            c.peak_in_flight = c.peak_in_flight.max(c.in_flight);
            let lag_ms = now.saturating_sub(job.at_us) / 1000;
            let t = (now / 1_000_000) as u32;
            c.rec.sent(t, lag_ms);
            now
        };
        let out = match auth.build(req) {
            Err(_) => Outcome::Failed("bad_request_built"),
            Ok(r) => {
                let fut = async {
                    if !conn.as_ref().is_some_and(Conn::usable) {
                        conn = Some(http::connect(src, dst).await?);
                    }
                    match conn.as_mut() {
                        Some(c) => c.send(r).await,
                        None => Err(anyhow::anyhow!("no connection")),
                    }
                };
                match tokio::time::timeout(timeout, fut).await {
                    Ok(Ok(resp)) => Outcome::Answer(resp),
                    Ok(Err(_)) => {
                        conn = None;
                        Outcome::Failed("io")
                    }
                    Err(_) => {
                        conn = None;
                        Outcome::Failed("timeout")
                    }
                }
            }
        };
        let mut c = core.borrow_mut();
        c.in_flight -= 1;
        c.complete(job, sent_us, out);
    }
}

/// One SSE stream VU: follows its ticket's stream until it leaves the line;
/// if the stream cannot start or ends early, the VU polls instead.
async fn stream_vu(core: Shared, job: Job, src: Ipv4Addr, dst: SocketAddr, auth: Rc<Auth>) {
    let req = {
        let mut c = core.borrow_mut();
        if c.st[job.vu as usize].phase != Phase::Waiting {
            return;
        }
        c.streams_open += 1;
        c.peak_streams = c.peak_streams.max(c.streams_open);
        c.queue_path(job.vu, "/stream").map(Req::get)
    };
    let result: Result<bool> = async {
        let Some(req) = req else {
            return Ok(false);
        };
        let mut conn = http::connect(src, dst).await?;
        let (status, mut body) = conn.open_stream(auth.build(req)?).await?;
        if status.as_u16() != 200 {
            let mut c = core.borrow_mut();
            let t = c.now_s();
            c.rec
                .error(Op::StreamOpen, t, status.as_u16(), "stream_refused");
            return Ok(false);
        }
        let mut parser = SseParser::default();
        let mut events = Vec::new();
        let mut first = true;
        // The server writes at least every 15 s; silence past that is a
        // broken stream.
        while let Some(chunk) =
            tokio::time::timeout(Duration::from_secs(20), http::next_chunk(&mut body)).await??
        {
            parser.push(&chunk, &mut events)?;
            for data in events.drain(..) {
                let mut c = core.borrow_mut();
                let now = c.now_us();
                let t = (now / 1_000_000) as u32;
                if first {
                    first = false;
                    c.rec
                        .latency(Op::StreamOpen, t, now.saturating_sub(job.at_us));
                }
                c.rec.sec(t).stream_events += 1;
                let Some(doc) = http::status_doc(&data) else {
                    c.rec.error(Op::StreamOpen, t, 200, "bad_document");
                    continue;
                };
                if c.status(job.vu, &doc, Act::StreamStart) {
                    return Ok(true);
                }
            }
            if core.borrow().stop {
                return Ok(true);
            }
        }
        Ok(false)
    }
    .await;
    let mut c = core.borrow_mut();
    c.streams_open = c.streams_open.saturating_sub(1);
    let finished = match result {
        Ok(f) => f,
        Err(_) => {
            let t = c.now_s();
            c.rec.error(Op::StreamOpen, t, 0, "io");
            false
        }
    };
    if !finished && c.st[job.vu as usize].phase == Phase::Waiting && !c.stop {
        c.after_ms(job.vu, Act::Poll0, 0);
    }
}

/// One GET on a kept connection (reconnecting as needed); the body of a 200.
pub async fn fetch(
    conn: &mut Option<Conn>,
    auth: &Auth,
    src: Ipv4Addr,
    dst: SocketAddr,
    path: String,
) -> Option<bytes::Bytes> {
    let req = auth.build(Req::get(path)).ok()?;
    if !conn.as_ref().is_some_and(Conn::usable) {
        *conn = http::connect(src, dst).await.ok();
    }
    match conn.as_mut()?.send(req).await {
        Ok(r) if r.status == 200 => Some(r.body),
        _ => {
            *conn = None;
            None
        }
    }
}

/// Reads the event and coupon documents every `sample_ms`.
async fn sampler(core: Shared, src: Ipv4Addr, dst: SocketAddr, auth: Rc<Auth>) {
    #[derive(Deserialize)]
    struct Ev {
        phase: String,
        waiting: u64,
        admitted: u64,
        served: u64,
        free: u64,
        held: u64,
        sold: u64,
        queue: Option<Q>,
    }
    #[derive(Deserialize)]
    struct Q {
        capacity: u64,
        poll_budget_per_s: Option<u32>,
    }
    #[derive(Deserialize)]
    struct Cp {
        issued: u64,
        remaining: u64,
    }
    let (event, coupon, every) = {
        let c = core.borrow();
        (c.event.clone(), c.coupon.clone(), c.sc.sample_ms)
    };
    let mut tick = tokio::time::interval(Duration::from_millis(every));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut conn: Option<Conn> = None;
    loop {
        tick.tick().await;
        if core.borrow().stop {
            return;
        }
        let at_ms = core.borrow().wall_ms();
        let ev = fetch(&mut conn, &auth, src, dst, format!("/v1/events/{event}")).await;
        let cp = fetch(&mut conn, &auth, src, dst, format!("/v1/coupons/{coupon}")).await;
        let (Some(ev), Some(cp)) = (ev, cp) else {
            continue;
        };
        let (Ok(ev), Ok(cp)) = (
            serde_json::from_slice::<Ev>(&ev),
            serde_json::from_slice::<Cp>(&cp),
        ) else {
            continue;
        };
        let mut c = core.borrow_mut();
        let capacity = ev.queue.as_ref().map_or(0, |q| q.capacity);
        c.poll_budget_per_s = ev
            .queue
            .as_ref()
            .and_then(|q| q.poll_budget_per_s)
            .unwrap_or(0);
        c.view = View {
            closed: ev.phase == "closed",
            steady: ev.phase == "open" && ev.admitted < capacity && ev.waiting > 0,
        };
        c.samples.push(Sample {
            at_ms,
            waiting: ev.waiting,
            active: ev.admitted,
            served: ev.served,
            free: ev.free,
            held: ev.held,
            sold: ev.sold,
            coupon_issued: cp.issued,
            coupon_remaining: cp.remaining,
        });
    }
}

/// Plays the scenario; returns what was recorded.
pub async fn play(plan: Plan) -> Played {
    let Plan {
        sc,
        event,
        coupon,
        dst,
        auth,
        key,
        sources,
        t0_ms,
        t0,
        progress,
        server_pid,
    } = plan;
    let users = sc.users();
    let schedule = Schedule::new(&sc.arrivals.phases);
    let event_id = EventId::new(&event).ok();
    let notify = Rc::new(Notify::new());
    let core = Rc::new(RefCell::new(Core {
        seed: sc.seed,
        rng: mix(sc.seed ^ 0xabcdef),
        sc: Rc::new(sc),
        event,
        coupon,
        key,
        event_id,
        t0,
        t0_ms,
        vus: Vec::with_capacity(users as usize),
        st: Vec::with_capacity(users as usize),
        heap: BinaryHeap::new(),
        ready: VecDeque::new(),
        schedule,
        rec: Recorder::new(),
        view: View::default(),
        samples: Vec::new(),
        poll_budget_per_s: 0,
        in_line: 0,
        admitted: 0,
        sold: 0,
        in_flight: 0,
        peak_in_flight: 0,
        streams_open: 0,
        peak_streams: 0,
        streams_started: 0,
        pending_streams: Vec::new(),
        gauges_upto_s: 0,
        stop: false,
        notify: notify.clone(),
    }));
    let auth = Rc::new(auth);
    let (conns, timeout) = {
        let c = core.borrow();
        (
            c.sc.limits.connections,
            Duration::from_secs_f64(c.sc.limits.request_timeout_s),
        )
    };
    let mut handles = Vec::new();
    for k in 0..conns as usize {
        let src = sources[k % sources.len()];
        handles.push(tokio::task::spawn_local(worker(
            core.clone(),
            src,
            dst,
            auth.clone(),
            timeout,
        )));
    }
    handles.push(tokio::task::spawn_local(sampler(
        core.clone(),
        sources[0],
        dst,
        auth.clone(),
    )));
    let bar = progress_bar(users, progress);
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut stream_k = 0usize;
    let mut last_report = Instant::now();
    let mut last_requests = 0u64;
    let mut last_line = Instant::now();
    let mut last_alive = Instant::now();
    let mut server_died = false;
    // Per-second CPU of this process and the server, from /proc.
    let server_pid_s = server_pid.map(|p| p.to_string());
    let mut cpu_at = (
        0u32,
        Instant::now(),
        crate::server::cpu_seconds("self").unwrap_or(0.0),
        server_pid_s
            .as_deref()
            .and_then(crate::server::cpu_seconds)
            .unwrap_or(0.0),
    );
    let timed_out = loop {
        tick.tick().await;
        let (over, streams) = {
            let mut c = core.borrow_mut();
            let over = c.tick();
            (over, c.take_stream_jobs())
        };
        for job in streams {
            stream_k += 1;
            handles.push(tokio::task::spawn_local(stream_vu(
                core.clone(),
                job,
                sources[stream_k % sources.len()],
                dst,
                auth.clone(),
            )));
        }
        if last_report.elapsed() >= Duration::from_millis(250) || over {
            let c = core.borrow();
            let dt = last_report.elapsed().as_secs_f64().max(1e-3);
            let rps = (c.rec.requests - last_requests) as f64 / dt;
            last_requests = c.rec.requests;
            last_report = Instant::now();
            let msg = format!(
                "in line {}  admitted {}  sold {}  streams {}  {:.0} req/s  errors {}",
                c.in_line,
                c.admitted,
                c.sold,
                c.streams_open,
                rps,
                c.rec.error_count()
            );
            bar.set_position(c.vus.len() as u64);
            if bar.is_hidden() {
                if last_line.elapsed() >= Duration::from_secs(5) {
                    last_line = Instant::now();
                    eprintln!(
                        "[{:>5.1}s] arrived {}/{}  {msg}",
                        c.t0.elapsed().as_secs_f64(),
                        c.vus.len(),
                        users
                    );
                }
            } else {
                bar.set_message(msg);
            }
        }
        {
            let mut c = core.borrow_mut();
            let now_s = c.now_s();
            if now_s > cpu_at.0 {
                let dt = cpu_at.1.elapsed().as_secs_f64().max(1e-3);
                let me = crate::server::cpu_seconds("self").unwrap_or(cpu_at.2);
                let srv = server_pid_s
                    .as_deref()
                    .and_then(crate::server::cpu_seconds)
                    .unwrap_or(cpu_at.3);
                let s = c.rec.sec(cpu_at.0);
                s.client_cpu_pct = (100.0 * (me - cpu_at.2) / dt).round() as u32;
                s.server_cpu_pct = (100.0 * (srv - cpu_at.3) / dt).round() as u32;
                cpu_at = (now_s, Instant::now(), me, srv);
            }
        }
        if let Some(pid) = server_pid {
            if last_alive.elapsed() >= Duration::from_millis(500) {
                last_alive = Instant::now();
                if !crate::server::alive(pid) {
                    server_died = true;
                    break true;
                }
            }
        }
        if over {
            let c = core.borrow();
            let nothing_left = c.schedule.peek().is_none()
                && c.heap.is_empty()
                && c.ready.is_empty()
                && c.in_flight == 0
                && c.streams_open == 0;
            break !nothing_left;
        }
    };
    bar.finish();
    {
        let mut c = core.borrow_mut();
        c.stop = true;
    }
    notify.notify_waiters();
    for h in handles {
        h.abort();
    }
    let mut c = core.borrow_mut();
    let ended_ms = c.wall_ms();
    let (ops, errors) = c.rec.finish();
    let phases = c.sc.arrivals.phases.clone();
    let mut seconds = std::mem::take(&mut c.rec.seconds);
    for s in &mut seconds {
        let from = u64::from(s.t_s) * 1_000_000;
        s.arrivals = Schedule::intended_between(&phases, from, from + 1_000_000);
    }
    Played {
        vus: std::mem::take(&mut c.vus),
        samples: std::mem::take(&mut c.samples),
        seconds,
        ops,
        errors,
        requests: c.rec.requests,
        max_send_lag_ms: c.rec.max_send_lag_ms,
        peak_streams: c.peak_streams,
        peak_in_flight: c.peak_in_flight,
        poll_budget_per_s: c.poll_budget_per_s,
        timed_out,
        server_died,
        ended_ms,
    }
}

fn progress_bar(users: u64, show: bool) -> indicatif::ProgressBar {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(users), ProgressDrawTarget::stderr_with_hz(4));
    if let Ok(style) =
        ProgressStyle::with_template("{elapsed_precise} [{bar:25}] {pos}/{len} arrived  {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_vu_state_stays_small() {
        // A million VUs: the driver's own state must stay a few dozen bytes
        // each (the record the report reads is separate and summarised).
        assert!(
            std::mem::size_of::<VuState>() <= 48,
            "{}",
            std::mem::size_of::<VuState>()
        );
        assert!(std::mem::size_of::<Reverse<(u64, u32, Act)>>() <= 16);
        assert!(
            std::mem::size_of::<VuRecord>() <= 512,
            "{}",
            std::mem::size_of::<VuRecord>()
        );
    }

    #[test]
    fn draws_are_uniform_enough() {
        let n = 10_000;
        let mean: f64 = (0..n).map(|i| unit(mix(i))).sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
        assert!((0..n).all(|i| (0.0..1.0).contains(&unit(mix(i)))));
    }
}
