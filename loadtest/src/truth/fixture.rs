//! A small, consistent synthetic run for the checks' tests: `n` VUs join in
//! order, are admitted 200 ms apart (5 per second, the limit), hold a session
//! for 100 ms (capacity 2), each buy one seat and keep one coupon.

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
    run.out = Some(out);
    run.meta.redis = true;
    run
}
