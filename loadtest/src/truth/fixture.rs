//! Synthetic runs for the tests. [`run`]: a small, consistent one — `n` VUs
//! join in order, are admitted 200 ms apart (5 per second, the limit), hold a
//! session for 100 ms (capacity 2), each buy one seat and keep one coupon.
//! [`hostile`]: arbitrary data with extreme values, which the checks and the
//! report must take without panicking.

use crate::model::*;
use base64::Engine as _;

pub(crate) const T0: u64 = 1_764_633_600_000;

/// The ticket of join number `join` (its first 4 bytes are the number).
pub(crate) fn ticket(join: u32) -> String {
    let mut raw = join.to_le_bytes().to_vec();
    raw.extend_from_slice(&join.wrapping_mul(2_654_435_761).to_be_bytes());
    raw.extend_from_slice(&[0x5A; 8]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

pub(crate) fn vu(i: u32) -> VuRecord {
    let iat = T0 + 10_000 + 200 * u64::from(i);
    let wait = Observation {
        at_ms: T0 + 2_000 + u64::from(i),
        position: u64::from(i) + 1,
        waiting: 100,
        eta_s: Some(8 + u64::from(i) / 5),
        poll_after_ms: 1_000,
    };
    VuRecord {
        id: i,
        behaviour: Behaviour::Poll,
        user: Some(format!("u{i}")),
        ticket: Some(ticket(i)),
        join_no: Some(i),
        arrive_ms: T0 + 1_000 + u64::from(i),
        join_sent_ms: Some(T0 + 1_001 + u64::from(i)),
        join_ack_ms: Some(T0 + 1_002 + u64::from(i)),
        join_status: Some(201),
        first_wait: Some(wait),
        last_wait: Some(wait),
        reads_in_line: 3,
        admitted: Some(AdmittedRecord {
            iat_ms: iat,
            exp_ms: iat + 60_000,
            seen_ms: iat + 5,
        }),
        final_state: Some("admitted".into()),
        ended: Some(EndRecord {
            kind: EndKind::Complete,
            sent_ms: iat + 100,
            ack_ms: iat + 103,
            status: 204,
        }),
        hold: Some(HoldRecord {
            hold: format!("h{i}g1"),
            seats: vec![format!("A-1-{i}")],
            outcome: HoldOutcome::Sold,
            done_ms: iat + 90,
        }),
        claim: Some(ClaimRecord {
            claim: format!("k{i}"),
            returned: false,
            extra_accepted: 0,
            extra_refused: 0,
        }),
        purchase: Some(Purchase::Bought),
        ..VuRecord::default()
    }
}

/// `n` VUs, two spare seats, two coupons left.
pub(crate) fn run(n: u32) -> RunData {
    let seats = n + 2;
    let mut rb = Readback {
        free: 2,
        sold: u64::from(n),
        coupon_stock: u64::from(n) + 2,
        coupon_issued: u64::from(n),
        coupon_remaining: 2,
        served: u64::from(n),
        ..Readback::default()
    };
    for s in 0..seats {
        rb.seats
            .insert(format!("A-1-{s}"), if s < n { 'S' } else { 'F' });
    }
    let samples = (0..u64::from(n))
        .map(|k| Sample {
            at_ms: T0 + 10_000 + 200 * k + 50,
            waiting: u64::from(n) - k,
            active: u64::from(k < u64::from(n)),
            served: k + 1,
            free: 2 + u64::from(n) - k - 1,
            held: 0,
            sold: k + 1,
            coupon_issued: k + 1,
            coupon_remaining: u64::from(n) + 1 - k,
        })
        .collect();
    RunData {
        meta: RunMeta {
            scenario: "fixture".into(),
            started_ms: T0,
            ended_ms: T0 + 20_000,
            sample_ms: 200,
            ..RunMeta::default()
        },
        setup: EventSetup {
            event: "e1".into(),
            coupon: "c1".into(),
            capacity: 2,
            admit_per_s: 5,
            session_ttl_s: 60,
            idle_timeout_s: 30,
            prequeue: "fifo".into(),
            seats,
            max_seats_per_user: 1,
            hold_ttl_s: 60,
            coupon_stock: n + 2,
            coupon_per_user: 1,
            ..EventSetup::default()
        },
        vus: (0..n).map(vu).collect(),
        samples,
        readback: rb,
        ..RunData::default()
    }
}

fn entry(id: usize, kind: &str, at_ms: u64) -> OutEntry {
    OutEntry {
        id: format!("1-0-{id}-0"),
        kind: kind.into(),
        at_ms,
        join: None,
        user: None,
        seats: Vec::new(),
        claim: None,
        reason: None,
    }
}

/// The run with the `boxoffice:out` record its VUs imply.
pub(crate) fn with_out(mut run: RunData) -> RunData {
    let mut out = Vec::new();
    for v in &run.vus {
        let Some(a) = v.admitted else { continue };
        out.push(OutEntry {
            join: v.join_no,
            ..entry(out.len(), "queue.admitted", a.iat_ms)
        });
        if let Some(h) = &v.hold {
            if h.outcome == HoldOutcome::Sold {
                out.push(OutEntry {
                    user: v.user.clone(),
                    seats: h.seats.clone(),
                    ..entry(out.len(), "seat.sold", h.done_ms)
                });
            }
        }
        if let Some(c) = &v.claim {
            out.push(OutEntry {
                user: v.user.clone(),
                claim: Some(c.claim.clone()),
                ..entry(out.len(), "coupon.claimed", a.iat_ms + 95)
            });
        }
        if let Some(e) = v.ended {
            out.push(OutEntry {
                join: v.join_no,
                reason: Some("completed".into()),
                ..entry(out.len(), "queue.ended", e.sent_ms + 1)
            });
        }
    }
    // The stream is in the order things happened.
    out.sort_by_key(|e| e.at_ms);
    for (i, e) in out.iter_mut().enumerate() {
        e.id = format!("1-0-{i}-0");
    }
    run.out = Some(out);
    run.meta.redis = true;
    run
}

/// A tiny deterministic generator (SplitMix64): no test dependency.
#[derive(Debug)]
pub(crate) struct Gen(pub u64);

impl Gen {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// 0, the maximum, something small or anything.
    fn wild(&mut self) -> u64 {
        match self.below(4) {
            0 => 0,
            1 => u64::MAX,
            2 => self.below(50),
            _ => self.next(),
        }
    }

    fn wild32(&mut self) -> u32 {
        match self.below(4) {
            0 => 0,
            1 => u32::MAX,
            _ => self.below(50) as u32,
        }
    }

    fn maybe<T>(&mut self, f: impl FnOnce(&mut Gen) -> T) -> Option<T> {
        (self.below(3) > 0).then(|| f(self))
    }

    fn text(&mut self) -> String {
        [
            "",
            "A-1-1",
            "<b>&amp;\"'",
            "é",
            "k1",
            "expired",
            "admitted",
            "waiting",
        ][self.below(8) as usize]
            .to_owned()
    }

    fn obs(&mut self) -> Observation {
        Observation {
            at_ms: self.wild(),
            position: self.wild(),
            waiting: self.wild(),
            eta_s: self.maybe(Gen::wild),
            poll_after_ms: self.wild(),
        }
    }
}

pub(crate) fn hostile(seed: u64) -> RunData {
    let mut g = Gen(seed);
    let behaviours = [
        Behaviour::Poll,
        Behaviour::Stream,
        Behaviour::Abandon,
        Behaviour::Refresh,
        Behaviour::SecondTab,
        Behaviour::Idle,
    ];
    let outcomes = [
        HoldOutcome::Sold,
        HoldOutcome::Released,
        HoldOutcome::Lapsed,
    ];
    let kinds = [
        "seat.sold",
        "seats.released",
        "coupon.claimed",
        "coupon.returned",
        "queue.admitted",
        "queue.ended",
    ];
    let vus = (0..g.below(30))
        .map(|i| VuRecord {
            id: i as u32,
            behaviour: behaviours[g.below(6) as usize],
            user: g.maybe(Gen::text),
            ticket: g.maybe(|g| ticket(g.wild32())),
            join_no: g.maybe(|g| g.below(40) as u32),
            arrive_ms: g.wild(),
            join_sent_ms: g.maybe(Gen::wild),
            join_ack_ms: g.maybe(Gen::wild),
            rejoin_same_ticket: g.maybe(|g| g.below(2) == 0),
            first_wait: g.maybe(Gen::obs),
            last_wait: g.maybe(Gen::obs),
            reads_in_line: g.wild32(),
            position_rises: g.wild32(),
            eta_rises: g.wild32(),
            eta_rises_steady: g.wild32(),
            admitted: g.maybe(|g| AdmittedRecord {
                iat_ms: g.wild(),
                exp_ms: g.wild(),
                seen_ms: g.wild(),
            }),
            final_state: g.maybe(Gen::text),
            ended: g.maybe(|g| EndRecord {
                kind: EndKind::Leave,
                sent_ms: g.wild(),
                ack_ms: g.wild(),
                status: 204,
            }),
            hold: g.maybe(|g| HoldRecord {
                hold: g.text(),
                seats: (0..g.below(3)).map(|_| g.text()).collect(),
                outcome: outcomes[g.below(3) as usize],
                done_ms: g.wild(),
            }),
            claim: g.maybe(|g| ClaimRecord {
                claim: g.text(),
                returned: g.below(2) == 0,
                extra_accepted: g.wild32(),
                extra_refused: g.wild32(),
            }),
            ..VuRecord::default()
        })
        .collect();
    let samples = (0..g.below(6))
        .map(|_| Sample {
            at_ms: g.wild(),
            waiting: g.wild(),
            active: g.wild(),
            served: g.wild(),
            free: g.wild(),
            held: g.wild(),
            sold: g.wild(),
            coupon_issued: g.wild(),
            coupon_remaining: g.wild(),
        })
        .collect();
    let seconds = (0..g.below(6))
        .map(|_| SecondStats {
            t_s: g.wild32(),
            polls: g.wild(),
            in_line: g.wild(),
            stream_events: g.wild(),
            arrivals: g.wild(),
            joins: g.wild(),
            ..SecondStats::default()
        })
        .collect();
    let ops = (0..g.below(3))
        .map(|_| {
            let p = Percentiles {
                count: g.wild(),
                p50_us: g.wild(),
                p90_us: g.wild(),
                p99_us: g.wild(),
                p999_us: g.wild(),
                max_us: g.wild(),
            };
            OpStats {
                op: Op::ALL[g.below(11) as usize],
                total: p,
                per_second: (0..g.below(4)).map(|_| (g.wild32(), p)).collect(),
            }
        })
        .collect();
    let errors = (0..g.below(4))
        .map(|_| ErrorCount {
            op: Op::ALL[g.below(11) as usize],
            status: [0, 409, 503][g.below(3) as usize],
            code: g.text(),
            count: g.wild(),
        })
        .collect();
    let mut readback = Readback {
        free: g.wild(),
        held: g.wild(),
        sold: g.wild(),
        coupon_stock: g.wild(),
        coupon_issued: g.wild(),
        coupon_remaining: g.wild(),
        prequeue_seed: g.maybe(|g| {
            if g.below(2) == 0 {
                "ab".repeat(32)
            } else {
                g.text()
            }
        }),
        prequeue_seed_sha256: g.maybe(Gen::text),
        ..Readback::default()
    };
    for _ in 0..g.below(5) {
        let s = g.text();
        readback
            .seats
            .insert(s, ['F', 'H', 'S', '?'][g.below(4) as usize]);
    }
    let out = g.maybe(|g| {
        (0..g.below(20))
            .map(|i| OutEntry {
                id: i.to_string(),
                kind: kinds[g.below(6) as usize].to_owned(),
                at_ms: g.wild(),
                join: g.maybe(|g| g.below(40) as u32),
                user: g.maybe(Gen::text),
                seats: (0..g.below(3)).map(|_| g.text()).collect(),
                claim: g.maybe(Gen::text),
                reason: None,
            })
            .collect()
    });
    RunData {
        meta: RunMeta {
            scenario: g.text(),
            scenario_toml: g.text(),
            started_ms: g.wild(),
            ended_ms: g.wild(),
            load_start: f64::NAN,
            server_cpu_s: g.maybe(|_| f64::INFINITY),
            ..RunMeta::default()
        },
        setup: EventSetup {
            capacity: g.wild32(),
            admit_per_s: g.wild32(),
            session_ttl_s: g.wild32(),
            idle_timeout_s: g.wild32(),
            poll_budget_per_s: g.wild32(),
            prequeue: ["fifo", "random", ""][g.below(3) as usize].to_owned(),
            opens_at_ms: g.maybe(Gen::wild),
            coupon_stock: g.wild32(),
            coupon_per_user: g.wild32(),
            ..EventSetup::default()
        },
        vus,
        samples,
        seconds,
        ops,
        errors,
        readback,
        out,
        ..RunData::default()
    }
}
