//! What a run recorded: the facts the truth checks ([`crate::truth`]) and the
//! report ([`crate::report`]) read. The driver fills a [`RunData`]; nothing
//! downstream talks to the server.
//!
//! Times: `*_ms` fields are Unix milliseconds (UTC), so client observations
//! and server timestamps (a pass's `iat`, an out entry's `at`) compare
//! directly; both run on this machine's clock. Per virtual user (VU) the
//! driver keeps a compact summary, updated online with
//! [`VuRecord::observe`], rather than every status it saw: a million VUs
//! polling fifteen times each must not cost gigabytes.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Everything one run produced.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunData {
    pub meta: RunMeta,
    pub setup: EventSetup,
    pub vus: Vec<VuRecord>,
    /// The server's view, sampled every `meta.sample_ms` (event and coupon
    /// documents), oldest first.
    pub samples: Vec<Sample>,
    /// The client's view, one entry per whole second of the run, oldest first.
    pub seconds: Vec<SecondStats>,
    /// Latency per operation.
    pub ops: Vec<OpStats>,
    /// Refusals and failures, by operation, HTTP status and error code
    /// (`code` is the contract's `error.code`, or `"io"`, `"timeout"` for
    /// transport failures with `status` 0).
    pub errors: Vec<ErrorCount>,
    /// The server's final state, read after the run.
    pub readback: Readback,
    /// `boxoffice:out` entries of the event and coupon (only with `--redis`).
    pub out: Option<Vec<OutEntry>>,
    pub client: ClientStats,
}

/// How, where and when the run happened.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunMeta {
    /// Scenario name (the file's `name`).
    pub scenario: String,
    /// The scenario file as given (TOML text), for the report.
    pub scenario_toml: String,
    /// The command line that produced the run.
    pub command: String,
    /// RFC 3339 UTC start of the run.
    pub started_at: String,
    pub started_ms: u64,
    pub ended_ms: u64,
    pub sample_ms: u64,
    /// `uname -srm`, CPU model and count, memory: as read from the machine.
    pub machine: String,
    /// 1-minute load average at the start and at the end (from /proc/loadavg).
    pub load_start: f64,
    pub load_end: f64,
    /// CPU seconds used by the server process over the run (from /proc), if
    /// the tool started it.
    pub server_cpu_s: Option<f64>,
    /// Peak resident memory of the server (VmHWM, bytes), if started by the tool.
    pub server_peak_rss: Option<u64>,
    /// CPU seconds of this process over the run.
    pub client_cpu_s: f64,
    /// Peak resident memory of this process (bytes).
    pub client_peak_rss: u64,
    /// Whether the server replicated to Redis (then `RunData::out` is set).
    pub redis: bool,
    /// What limited the run, as measured by the driver (e.g. "client CPU
    /// 98% of a core", "server CPU", "none: arrivals as scheduled").
    pub limits: Vec<String>,
}

/// Who may join as whom, as the scenario set it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityMode {
    /// The booking backend joins on the user's behalf (service token).
    #[default]
    Service,
    /// A public join with a user token minted by the tool.
    Signed,
    /// A public join; the server mints the user.
    Anonymous,
}

/// The event and coupon under test, as created on the server.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct EventSetup {
    pub event: String,
    pub coupon: String,
    pub capacity: u32,
    pub admit_per_s: u32,
    pub session_ttl_s: u32,
    pub idle_timeout_s: u32,
    /// The event's poll budget (`queue.poll_budget_per_s`), as the server
    /// reports it in the event document.
    pub poll_budget_per_s: u32,
    /// `"fifo"` or `"random"`.
    pub prequeue: String,
    pub identity: IdentityMode,
    /// Unix ms; `None`: open at creation.
    pub opens_at_ms: Option<u64>,
    /// Total seats of the layout.
    pub seats: u32,
    pub max_seats_per_user: u32,
    pub hold_ttl_s: u32,
    pub coupon_stock: u32,
    pub coupon_per_user: u32,
}

/// What a VU was scripted to do while in line.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// Polls as `poll_after_ms` says.
    #[default]
    Poll,
    /// Follows the SSE stream.
    Stream,
    /// Leaves the line (DELETE of the ticket) at a random point.
    Abandon,
    /// Reloads: joins again (same user) and polls the ticket it gets back.
    Refresh,
    /// Polls from two "tabs" (two independent pollers of one ticket).
    SecondTab,
    /// Stops polling for longer than the idle timeout: must lose the place.
    Idle,
}

/// How a VU's purchase ended (after admission).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purchase {
    /// Hold confirmed (`seat.sold`), session completed.
    Bought,
    /// Payment failed: hold released, coupon returned, session completed.
    PaymentFailed,
    /// No seats left to hold (409 on best, or nothing free on the map).
    NoSeats,
    /// Admitted but gave up (session left).
    GaveUp,
}

/// One virtual user, summarised.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct VuRecord {
    pub id: u32,
    pub behaviour: Behaviour,
    /// The user id the VU joined as (minted by the server when anonymous).
    pub user: Option<String>,
    pub ticket: Option<String>,
    /// The join number in the ticket's first 4 bytes (docs/events-out.md):
    /// the server's join order.
    pub join_no: Option<u32>,
    /// Intended arrival (open-loop schedule), then the first join's send and
    /// answer times.
    pub arrive_ms: u64,
    pub join_sent_ms: Option<u64>,
    pub join_ack_ms: Option<u64>,
    /// HTTP status of the first join (201, 200, 503 …).
    pub join_status: Option<u16>,
    /// A refresh's rejoin came back with the same ticket (None: no refresh).
    pub rejoin_same_ticket: Option<bool>,
    /// The first status seen while waiting (after opening): time, position,
    /// ETA; the ETA honesty check compares it with the actual admission.
    pub first_wait: Option<Observation>,
    /// The last status seen while waiting.
    pub last_wait: Option<Observation>,
    /// Status documents read (polls and stream events) while in line.
    pub reads_in_line: u32,
    /// Times a later status showed a higher position than the one before
    /// (an overtake, seen by the overtaken user; must stay 0).
    pub position_rises: u32,
    /// Times a later status showed a higher ETA than the one before (by more
    /// than 1 s), and the subset of those seen while the admission rate was
    /// at `admit_per_s` (the room not full, not paused).
    pub eta_rises: u32,
    pub eta_rises_steady: u32,
    /// Shortest gap between two of this VU's reads vs the advice it had
    /// (ms; only polls): to show the driver followed `poll_after_ms`.
    pub min_poll_gap_ms: Option<u64>,
    /// Set once the VU saw `admitted`.
    pub admitted: Option<AdmittedRecord>,
    /// The final ticket state the VU saw (`admitted`, `expired`, `left` …).
    pub final_state: Option<String>,
    /// An `idle` VU's read after its silence was answered (false: the run
    /// ended before its presence deadline came, so it is not judged).
    #[serde(default)]
    pub idle_checked: bool,
    /// The session's end as the VU caused it.
    pub ended: Option<EndRecord>,
    pub hold: Option<HoldRecord>,
    pub claim: Option<ClaimRecord>,
    pub purchase: Option<Purchase>,
}

/// A waiting status as seen by a VU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    pub at_ms: u64,
    pub position: u64,
    pub waiting: u64,
    pub eta_s: Option<u64>,
    pub poll_after_ms: u64,
}

/// The admission, from the pass the VU received.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmittedRecord {
    /// The pass's `iat` and `exp` (server clock, Unix ms).
    pub iat_ms: u64,
    pub exp_ms: u64,
    /// When the VU first saw it.
    pub seen_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndKind {
    /// `POST …/complete` (service).
    Complete,
    /// `DELETE …/queue/{ticket}`.
    Leave,
}

/// A session or place ended by the VU: request sent, answer received.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndRecord {
    pub kind: EndKind,
    pub sent_ms: u64,
    pub ack_ms: u64,
    pub status: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldOutcome {
    /// Confirmed: the server answered `state: "sold"`.
    Sold,
    /// Released by the VU (payment failed), answered 204.
    Released,
    /// Never confirmed and not released (ran out).
    Lapsed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldRecord {
    pub hold: String,
    pub seats: Vec<String>,
    pub outcome: HoldOutcome,
    /// Answer time of the confirm (for `Sold`) or release.
    pub done_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimRecord {
    pub claim: String,
    /// Given back (payment failed), answered 204.
    pub returned: bool,
    /// Further claims of this coupon by this VU that the server accepted
    /// (must stay within `per_user - 1`) and refused with 409.
    pub extra_accepted: u32,
    pub extra_refused: u32,
}

/// The server's event and coupon documents at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub at_ms: u64,
    pub waiting: u64,
    /// Sessions active now (`admitted` in the event document).
    pub active: u64,
    /// Admitted so far (`served`).
    pub served: u64,
    pub free: u64,
    pub held: u64,
    pub sold: u64,
    pub coupon_issued: u64,
    pub coupon_remaining: u64,
}

/// The client's counters for one second of the run (`t_s` from the start).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondStats {
    pub t_s: u32,
    /// Arrivals the schedule intended in this second, and joins answered.
    pub arrivals: u64,
    pub joins: u64,
    /// Status requests sent (all VUs, all tabs) and stream events received.
    pub polls: u64,
    pub stream_events: u64,
    /// Streams open at the end of the second.
    pub streams_open: u64,
    /// VUs in line as the client counts them (joined, not yet admitted/ended).
    pub in_line: u64,
    /// Admissions the VUs learned of in this second.
    pub admitted_seen: u64,
    pub holds: u64,
    pub sold: u64,
    pub claims: u64,
    /// Requests answered with a status ≥ 400 or a transport failure.
    pub errors: u64,
    /// Requests in flight at the end of the second, and the largest delay
    /// between a request's intended and actual send in this second (ms): the
    /// open-loop schedule's lag, > 0 when the client could not keep up.
    pub in_flight: u64,
    pub max_send_lag_ms: u64,
    /// CPU used in this second, in percent of one core (from /proc): this
    /// process, and the server when the tool started it (else 0). Added by
    /// the driver (issue 12) so a report can say per second what limited
    /// the run.
    #[serde(default)]
    pub client_cpu_pct: u32,
    #[serde(default)]
    pub server_cpu_pct: u32,
}

/// The operations whose latency is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Join,
    Status,
    /// Time to the stream's first event.
    StreamOpen,
    Leave,
    SeatMap,
    Hold,
    Confirm,
    Release,
    Claim,
    ReturnCoupon,
    Complete,
}

impl Op {
    pub const ALL: [Op; 11] = [
        Op::Join,
        Op::Status,
        Op::StreamOpen,
        Op::Leave,
        Op::SeatMap,
        Op::Hold,
        Op::Confirm,
        Op::Release,
        Op::Claim,
        Op::ReturnCoupon,
        Op::Complete,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::Join => "join",
            Op::Status => "status",
            Op::StreamOpen => "stream_open",
            Op::Leave => "leave",
            Op::SeatMap => "seat_map",
            Op::Hold => "hold",
            Op::Confirm => "confirm",
            Op::Release => "release",
            Op::Claim => "claim",
            Op::ReturnCoupon => "return_coupon",
            Op::Complete => "complete",
        }
    }
}

/// Latency percentiles (µs), measured from the request's intended start
/// (open loop: a late send counts against the server, no coordinated
/// omission).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

/// One operation's latency over the whole run and per second.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OpStats {
    pub op: Op,
    pub total: Percentiles,
    /// `(t_s, percentiles of the requests that finished in that second)`,
    /// seconds with no request left out.
    pub per_second: Vec<(u32, Percentiles)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCount {
    pub op: Op,
    pub status: u16,
    pub code: String,
    pub count: u64,
}

/// The server's state after the run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Readback {
    /// Every seat of the layout and its letter (`F`, `H`, `S`) from
    /// `GET …/seats?section=…`.
    pub seats: BTreeMap<String, char>,
    pub free: u64,
    pub held: u64,
    pub sold: u64,
    pub coupon_stock: u64,
    pub coupon_issued: u64,
    pub coupon_remaining: u64,
    /// From the event document.
    pub served: u64,
    pub active: u64,
    pub waiting: u64,
    /// `prequeue_seed` (hex) once opened, and its published SHA-256.
    pub prequeue_seed: Option<String>,
    pub prequeue_seed_sha256: Option<String>,
}

/// One `boxoffice:out` entry, as read back (only the fields the checks use).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutEntry {
    /// `<epoch>-<shard>-<seq>-<n>`.
    pub id: String,
    /// `seat.sold`, `seats.released`, `coupon.claimed`, `coupon.returned`,
    /// `queue.admitted`, `queue.ended`.
    pub kind: String,
    pub at_ms: u64,
    /// `data.join` (queue.*), `data.user`, `data.seats`, `data.claim`,
    /// `data.reason` where the type has them.
    pub join: Option<u32>,
    pub user: Option<String>,
    pub seats: Vec<String>,
    pub claim: Option<String>,
    pub reason: Option<String>,
}

/// The load generator's own numbers.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ClientStats {
    /// Source addresses connections were spread over (127.0.0.x).
    pub source_addrs: Vec<String>,
    /// Request connections (keep-alive) and most streams open at once.
    pub connections: u32,
    pub peak_streams: u64,
    pub requests: u64,
    /// Largest open-loop send lag over the run (ms).
    pub max_send_lag_ms: u64,
}

impl RunData {
    /// Everything but the per-VU records (for reports of big runs).
    pub fn clone_without_vus(&self) -> RunData {
        RunData {
            meta: self.meta.clone(),
            setup: self.setup.clone(),
            vus: Vec::new(),
            samples: self.samples.clone(),
            seconds: self.seconds.clone(),
            ops: self.ops.clone(),
            errors: self.errors.clone(),
            readback: self.readback.clone(),
            out: self.out.clone(),
            client: self.client.clone(),
        }
    }
}

impl VuRecord {
    /// Folds one waiting status into the summary. `steady` says whether the
    /// room was admitting at `admit_per_s` at that moment (not full, not
    /// paused), as the driver judges from the last sample.
    pub fn observe(&mut self, obs: Observation, steady: bool) {
        self.reads_in_line = self.reads_in_line.saturating_add(1);
        if let Some(prev) = self.last_wait {
            if obs.position > prev.position {
                self.position_rises += 1;
            }
            if let (Some(a), Some(b)) = (prev.eta_s, obs.eta_s) {
                if b > a + 1 {
                    self.eta_rises += 1;
                    if steady {
                        self.eta_rises_steady += 1;
                    }
                }
            }
        }
        if self.first_wait.is_none() {
            self.first_wait = Some(obs);
        }
        self.last_wait = Some(obs);
    }
}

/// Decodes the join number from a ticket (docs/events-out.md: the first 4
/// bytes, little-endian, of the base64url-decoded ticket).
pub fn join_no(ticket: &str) -> Option<u32> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(ticket)
        .ok()?;
    let first: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    Some(u32::from_le_bytes(first))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(at_ms: u64, position: u64, eta_s: Option<u64>) -> Observation {
        Observation {
            at_ms,
            position,
            waiting: 100,
            eta_s,
            poll_after_ms: 1000,
        }
    }

    #[test]
    fn observe_counts_rises() {
        let mut v = VuRecord::default();
        v.observe(obs(1, 10, Some(10)), true);
        v.observe(obs(2, 8, Some(8)), true);
        v.observe(obs(3, 9, Some(12)), false);
        v.observe(obs(4, 7, Some(14)), true);
        assert_eq!(v.position_rises, 1);
        assert_eq!(v.eta_rises, 2);
        assert_eq!(v.eta_rises_steady, 1);
        assert_eq!(v.first_wait.map(|o| o.position), Some(10));
        assert_eq!(v.last_wait.map(|o| o.position), Some(7));
        assert_eq!(v.reads_in_line, 4);
    }

    #[test]
    fn join_numbers_decode() {
        use base64::Engine as _;
        let mut raw = 7u32.to_le_bytes().to_vec();
        raw.extend_from_slice(&[0xAB; 12]);
        let t = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        assert_eq!(t.len(), 22);
        assert_eq!(join_no(&t), Some(7));
        assert_eq!(join_no("!!"), None);
        assert_eq!(join_no(""), None);
    }
}
