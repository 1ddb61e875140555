//! A synthetic but self-consistent run for rendering the report in tests:
//! 4,000 VUs arriving over 10 s, 100 admissions/s, 1,000 seats, a coupon of
//! 600, payments failing one time in ten.

use crate::model::*;

const T0: u64 = 1_764_633_600_000;
const N: u32 = 4_000;
const SEATS: u32 = 1_000;
const STOCK: u32 = 600;

fn pct(base_us: u64, t: u32) -> Percentiles {
    let wobble = u64::from(t % 7) * base_us / 10;
    Percentiles {
        count: 100 + u64::from(t) * 3,
        p50_us: base_us + wobble,
        p90_us: 2 * base_us + wobble,
        p99_us: 4 * base_us + 2 * wobble,
        p999_us: 7 * base_us + 3 * wobble,
        max_us: 12 * base_us + 5 * wobble,
    }
}

pub(crate) fn run() -> RunData {
    let mut vus = Vec::new();
    let (mut seat, mut coupons) = (0u32, 0u32);
    let mut readback = Readback {
        coupon_stock: u64::from(STOCK),
        ..Readback::default()
    };
    for i in 0..N {
        let arrive = T0 + 2_000 + u64::from(i) * 5 / 2;
        let iat = T0 + 3_000 + u64::from(i) * 10;
        let at = arrive + 40;
        let position = (at.saturating_sub(T0 + 3_000) / 10).min(u64::from(i));
        let position = u64::from(i) - position + 1;
        let eta = position / 100 + u64::from(i % 3 == 0);
        let wait = Observation {
            at_ms: at,
            position,
            waiting: position + 50,
            eta_s: Some(eta),
            poll_after_ms: 1_000,
        };
        let failed = i % 10 == 9;
        let hold = (seat < SEATS).then(|| {
            let s = format!("A-{}-{}", seat / 40 + 1, seat % 40 + 1);
            if !failed {
                seat += 1;
            }
            HoldRecord {
                hold: format!("h{i}g1"),
                seats: vec![s],
                outcome: if failed {
                    HoldOutcome::Released
                } else {
                    HoldOutcome::Sold
                },
                done_ms: iat + 900,
            }
        });
        let claim = (hold.is_some() && coupons < STOCK).then(|| {
            if !failed {
                coupons += 1;
            }
            ClaimRecord {
                claim: format!("k{i}"),
                returned: failed,
                extra_accepted: 0,
                extra_refused: u32::from(i % 50 == 0),
            }
        });
        vus.push(VuRecord {
            id: i,
            behaviour: if i % 5 == 0 {
                Behaviour::Stream
            } else {
                Behaviour::Poll
            },
            user: Some(format!("u{i}")),
            ticket: None,
            join_no: Some(i),
            arrive_ms: arrive,
            join_sent_ms: Some(arrive + 1),
            join_ack_ms: Some(arrive + 3),
            join_status: Some(201),
            first_wait: Some(wait),
            last_wait: Some(wait),
            reads_in_line: 1 + (iat - at) as u32 / 1000,
            eta_rises: u32::from(i % 97 == 0),
            admitted: Some(AdmittedRecord {
                iat_ms: iat,
                exp_ms: iat + 30_000,
                seen_ms: iat + 20,
            }),
            final_state: Some("admitted".into()),
            ended: Some(EndRecord {
                kind: EndKind::Complete,
                sent_ms: iat + 1_200 + u64::from(i % 5) * 100,
                ack_ms: iat + 1_205 + u64::from(i % 5) * 100,
                status: 204,
            }),
            purchase: Some(if hold.is_none() {
                Purchase::NoSeats
            } else if failed {
                Purchase::PaymentFailed
            } else {
                Purchase::Bought
            }),
            hold,
            claim,
            ..VuRecord::default()
        });
    }
    for s in 0..SEATS {
        let id = format!("A-{}-{}", s / 40 + 1, s % 40 + 1);
        readback.seats.insert(id, if s < seat { 'S' } else { 'F' });
    }
    readback.sold = u64::from(seat);
    readback.free = u64::from(SEATS - seat);
    readback.coupon_issued = u64::from(coupons);
    readback.coupon_remaining = u64::from(STOCK - coupons);
    readback.served = u64::from(N);
    let end = T0 + 50_000;
    let samples = (0..100u64)
        .map(|k| {
            let at = T0 + k * 500;
            let admitted = vus
                .iter()
                .filter(|v| v.admitted.is_some_and(|a| a.iat_ms <= at));
            let active = admitted
                .clone()
                .filter(|v| v.ended.is_some_and(|e| e.sent_ms > at))
                .count() as u64;
            let served = admitted.count() as u64;
            let arrived = vus
                .iter()
                .filter(|v| v.join_ack_ms.is_some_and(|t| t <= at))
                .count();
            let sold = vus
                .iter()
                .filter_map(|v| v.hold.as_ref())
                .filter(|h| h.outcome == HoldOutcome::Sold && h.done_ms <= at)
                .count() as u64;
            let issued = vus
                .iter()
                .filter_map(|v| Some((v.claim.as_ref()?, v.admitted?)))
                .filter(|(c, a)| !c.returned && a.iat_ms + 500 <= at)
                .count() as u64;
            Sample {
                at_ms: at,
                waiting: (arrived as u64).saturating_sub(served),
                active,
                served,
                free: u64::from(SEATS) - sold - active.min(u64::from(SEATS) - sold) / 2,
                held: active.min(u64::from(SEATS) - sold) / 2,
                sold,
                coupon_issued: issued,
                coupon_remaining: u64::from(STOCK) - issued,
            }
        })
        .collect::<Vec<_>>();
    let seconds = (0..50u32)
        .map(|t| {
            let at = T0 + u64::from(t) * 1000;
            let in_line = samples
                .get(t as usize * 2)
                .map_or(0, |s: &Sample| s.waiting);
            SecondStats {
                t_s: t,
                arrivals: if (2..12).contains(&t) { 400 } else { 0 },
                joins: if (2..12).contains(&t) {
                    398 + u64::from(t % 3)
                } else {
                    0
                },
                polls: in_line * 8 / 10 + 40,
                stream_events: in_line / 5,
                streams_open: in_line / 5,
                in_line,
                admitted_seen: if (3..43).contains(&t) { 100 } else { 0 },
                holds: u64::from(at < T0 + 13_000) * 90,
                errors: u64::from(t % 11 == 0) * 3,
                in_flight: 20,
                max_send_lag_ms: u64::from(t % 4),
                ..SecondStats::default()
            }
        })
        .collect();
    let ops = [
        (Op::Join, 900),
        (Op::Status, 400),
        (Op::Hold, 1_500),
        (Op::Confirm, 1_200),
        (Op::Claim, 800),
    ]
    .into_iter()
    .map(|(op, base)| OpStats {
        op,
        total: pct(base, 3),
        per_second: (2..48).map(|t| (t, pct(base, t))).collect(),
    })
    .collect();
    RunData {
        meta: RunMeta {
            scenario: "sample <flash sale> & co".into(),
            scenario_toml:
                "name = \"sample\"\n[arrivals]\ncount = 4000\nover_s = 10\n# <not a tag>\n".into(),
            command: "boxoffice-loadtest run --scenario loadtest/scenarios/sample.toml --out out/"
                .into(),
            started_at: "2026-12-01T00:00:00Z".into(),
            started_ms: T0,
            ended_ms: end,
            sample_ms: 500,
            machine: "Linux 6.8 x86_64, 2 × Example CPU, 8 GiB".into(),
            load_start: 0.42,
            load_end: 1.87,
            server_cpu_s: Some(31.5),
            server_peak_rss: Some(180 << 20),
            client_cpu_s: 40.2,
            client_peak_rss: 95 << 20,
            redis: false,
            limits: vec!["none: arrivals as scheduled (max send lag 3 ms)".into()],
        },
        setup: EventSetup {
            event: "sample".into(),
            coupon: "early".into(),
            capacity: 200,
            admit_per_s: 100,
            session_ttl_s: 30,
            idle_timeout_s: 60,
            poll_budget_per_s: 2_000,
            prequeue: "fifo".into(),
            identity: IdentityMode::Service,
            opens_at_ms: None,
            seats: SEATS,
            max_seats_per_user: 1,
            hold_ttl_s: 60,
            coupon_stock: STOCK,
            coupon_per_user: 1,
        },
        vus,
        samples,
        seconds,
        ops,
        errors: vec![
            ErrorCount {
                op: Op::Hold,
                status: 409,
                code: "seat_taken".into(),
                count: 120,
            },
            ErrorCount {
                op: Op::Status,
                status: 0,
                code: "timeout".into(),
                count: 4,
            },
            ErrorCount {
                op: Op::Claim,
                status: 409,
                code: "coupon_exhausted".into(),
                count: 2_900,
            },
        ],
        readback,
        out: None,
        client: ClientStats {
            source_addrs: (1..=4).map(|i| format!("127.0.0.{i}")).collect(),
            connections: 256,
            peak_streams: 800,
            requests: 61_234,
            max_send_lag_ms: 3,
        },
    }
}
