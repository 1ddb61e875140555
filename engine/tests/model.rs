//! Property test: random operation sequences against the whole engine and a
//! simple reference model, checking I1 (no double hold/sale), I2 (coupon
//! conservation), I3 (FIFO), I4 (expiry at the instant), I5 (idempotency) and
//! I7 (capacity and rate), with time jumps across expiries.

mod common;

use boxoffice_engine::queue::TicketState;
use boxoffice_engine::seats::{HoldState, SeatChoice};
use boxoffice_engine::*;
use common::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};

const SEATS: u32 = 6; // per row, rows 1..=2 of section A
const CAPACITY: usize = 3;
const RATE: usize = 2;
const SESSION_MS: u64 = 10_000;
const MAX_PER_USER: u32 = 4;
const HOLD_TTL_MS: u64 = 60_000;
const MAX_TTL_MS: u64 = 300_000;
const STOCK: u32 = 5;
const PER_USER: u32 = 2;

#[derive(Clone, Debug)]
enum Op {
    Advance(u64),
    Tick,
    Join(u32),
    Status(u32),
    Leave(u32),
    Complete(u32),
    Pause,
    Resume,
    Hold {
        user: u32,
        seats: Vec<u32>,
        key: Option<u8>,
    },
    Best {
        user: u32,
        count: u32,
    },
    Confirm(usize),
    Extend(usize, u32),
    Release(usize),
    Claim {
        user: u32,
        key: Option<u8>,
    },
    Return(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u64..4_000).prop_map(Op::Advance),
        1 => (0u64..70_000).prop_map(Op::Advance),
        4 => Just(Op::Tick),
        4 => (0u32..8).prop_map(Op::Join),
        3 => (0u32..8).prop_map(Op::Status),
        1 => (0u32..8).prop_map(Op::Leave),
        1 => (0u32..8).prop_map(Op::Complete),
        1 => Just(Op::Pause),
        1 => Just(Op::Resume),
        4 => (0u32..6, prop::collection::vec(0u32..2 * SEATS, 1..4), prop::option::of(0u8..3))
            .prop_map(|(user, seats, key)| Op::Hold { user, seats, key }),
        2 => (0u32..6, 1u32..4).prop_map(|(user, count)| Op::Best { user, count }),
        2 => (0usize..16).prop_map(Op::Confirm),
        1 => (0usize..16, 1u32..400).prop_map(|(h, t)| Op::Extend(h, t)),
        1 => (0usize..16).prop_map(Op::Release),
        3 => (0u32..6, prop::option::of(0u8..3)).prop_map(|(user, key)| Op::Claim { user, key }),
        1 => (0usize..16).prop_map(Op::Return),
    ]
}

fn seat_name(i: u32) -> SeatId {
    seat(&format!("A-{}-{}", i / SEATS + 1, i % SEATS + 1))
}

fn seat_index(s: &SeatId) -> u32 {
    let row: u32 = s.row.parse().expect("row");
    (row - 1) * SEATS + (s.number - 1)
}

#[derive(Clone, Debug)]
struct MHold {
    id: HoldId,
    user: u32,
    seats: Vec<u32>,
    created: Timestamp,
    expires: Timestamp,
    sold: bool,
    released: bool,
}

impl MHold {
    fn live(&self, now: Timestamp) -> bool {
        !self.sold && !self.released && now < self.expires
    }
    fn occupies(&self, now: Timestamp) -> bool {
        self.sold || self.live(now)
    }
}

#[derive(Default)]
struct Model {
    now: Timestamp,
    paused: bool,
    /// Live tickets in line, in join order.
    line: Vec<u32>,
    /// Admitted users and their session end.
    admitted: BTreeMap<u32, Timestamp>,
    tickets: HashMap<u32, String>,
    admissions: Vec<Timestamp>,
    holds: Vec<MHold>,
    hold_keys: HashMap<u8, ((u32, Vec<u32>), usize)>,
    claims: Vec<(ClaimId, u32, bool)>,
    claim_keys: HashMap<u8, (u32, usize)>,
}

impl Model {
    fn expire_sessions(&mut self) {
        let now = self.now;
        self.admitted.retain(|_, exp| now < *exp);
    }
    fn user_seats(&self, user: u32) -> u32 {
        self.holds
            .iter()
            .filter(|h| h.user == user && h.occupies(self.now))
            .map(|h| h.seats.len() as u32)
            .sum()
    }
    fn occupied(&self) -> Vec<bool> {
        let mut occ = vec![false; (2 * SEATS) as usize];
        for h in self.holds.iter().filter(|h| h.occupies(self.now)) {
            for &s in &h.seats {
                assert!(!occ[s as usize], "model double booking");
                occ[s as usize] = true;
            }
        }
        occ
    }
    fn live_claims(&self, user: u32) -> u32 {
        self.claims.iter().filter(|c| c.1 == user && !c.2).count() as u32
    }
}

fn setup() -> (Engine, EventId, CouponId) {
    let e = engine(2, false);
    let id = ev("e1");
    let mut cfg = event_config(
        Some(queue(
            CAPACITY as u32,
            RATE as u32,
            (SESSION_MS / 1000) as u32,
            86_400,
        )),
        rows(&["A"], 2, SEATS),
        MAX_PER_USER,
    );
    cfg.holds.ttl_s = nz((HOLD_TTL_MS / 1000) as u32);
    cfg.holds.max_ttl_s = nz((MAX_TTL_MS / 1000) as u32);
    let _ = e.put_event(&id, cfg, [1; 32], T0).expect("event");
    let c = CouponId::new("c1").expect("coupon");
    let cc = CouponConfig {
        stock: STOCK,
        per_user: nz(PER_USER),
        opens_at: None,
        closes_at: None,
    };
    let _ = e.put_coupon(&c, cc, T0).expect("coupon");
    (e, id, c)
}

fn check_seats(e: &Engine, id: &EventId, m: &Model) {
    let occ = m.occupied();
    let counts = e.seat_counts(id, m.now).expect("counts").total;
    let sold: u64 = m
        .holds
        .iter()
        .filter(|h| h.sold)
        .map(|h| h.seats.len() as u64)
        .sum();
    let held = occ.iter().filter(|o| **o).count() as u64 - sold;
    assert_eq!(counts.sold, sold, "sold count");
    assert_eq!(counts.held, held, "held count");
    assert_eq!(
        counts.free,
        u64::from(2 * SEATS) - sold - held,
        "free count"
    );
    for h in &m.holds {
        let got = e.get_hold(id, h.id, m.now).expect("hold readable");
        let want = if h.sold {
            HoldState::Sold
        } else if h.released {
            HoldState::Released
        } else if m.now >= h.expires {
            HoldState::Expired
        } else {
            HoldState::Held
        };
        assert_eq!(got.state, want, "hold {} state at {:?}", h.id, m.now);
    }
}

/// `Engine::status`, checked against `Engine::status_report` (the poll
/// path's copy-free read) at the same instant: the same report, user and
/// pass.
fn status(e: &Engine, id: &EventId, ticket: &str, now: Timestamp) -> TicketView {
    let r = e
        .status_report(id.as_str(), ticket, now)
        .expect("status report");
    let v = e.status(id, ticket, now).expect("status");
    let s = &v.status;
    assert_eq!(r.status.user.as_str(), s.user.as_str());
    assert_eq!(
        (r.status.state, r.status.position, r.status.waiting),
        (s.state, s.position, s.waiting)
    );
    assert_eq!(
        (r.status.eta_s, r.status.poll_after_ms, r.status.admission),
        (s.eta_s, s.poll_after_ms, s.admission)
    );
    assert_eq!((&r.pass, r.pass_expires_at), (&v.pass, v.pass_expires_at));
    v
}

fn check_queue(e: &Engine, id: &EventId, m: &Model) {
    for (pos, u) in m.line.iter().enumerate() {
        let v = status(e, id, &m.tickets[u], m.now);
        assert_eq!(v.status.state, TicketState::Waiting, "user {u}");
        assert_eq!(v.status.position, Some(pos as u64 + 1), "position of {u}");
        assert_eq!(v.status.waiting, m.line.len() as u64);
    }
    for (u, exp) in &m.admitted {
        let v = status(e, id, &m.tickets[u], m.now);
        assert_eq!(v.status.state, TicketState::Admitted, "user {u}");
        assert!(v.pass.is_some());
        assert_eq!(v.pass_expires_at, Some(*exp));
    }
    let info = e.event(id, m.now).expect("event");
    assert_eq!(info.admitted, m.admitted.len() as u64);
    assert!(info.admitted as usize <= CAPACITY, "I7 capacity");
    assert_eq!(info.served, m.admissions.len() as u64);
}

fn run(ops: Vec<Op>) {
    let (e, id, coupon) = setup();
    let mut m = Model {
        now: T0,
        ..Default::default()
    };
    for op in ops {
        match op {
            Op::Advance(ms) => m.now = m.now.plus_ms(ms),
            Op::Tick => {
                e.tick(m.now);
                m.expire_sessions();
                // Who got in: they must be exactly the front of the line (I3).
                let mut admitted_now = vec![];
                for u in &m.line {
                    let v = status(&e, &id, &m.tickets[u], m.now);
                    if v.status.state == TicketState::Admitted {
                        admitted_now.push(*u);
                    }
                }
                assert_eq!(admitted_now[..], m.line[..admitted_now.len()], "FIFO (I3)");
                assert!(
                    !m.paused || admitted_now.is_empty(),
                    "admitted while paused"
                );
                let last = m.admissions.last().copied();
                let could = !m.paused && !m.line.is_empty() && m.admitted.len() < CAPACITY;
                if could && last.is_none_or(|l| m.now.ms_since(l) >= 1_000) {
                    assert!(!admitted_now.is_empty(), "admission stalled");
                }
                for u in admitted_now {
                    m.line.remove(0);
                    m.admitted.insert(u, m.now.plus_ms(SESSION_MS));
                    m.admissions.push(m.now);
                }
                assert!(m.admitted.len() <= CAPACITY, "I7 capacity");
                // I7 rate: any one-second window holds at most RATE admissions.
                for (i, t) in m.admissions.iter().enumerate() {
                    let in_window = m.admissions[i..]
                        .iter()
                        .take_while(|x| x.ms_since(*t) < 1_000)
                        .count();
                    assert!(in_window <= RATE, "I7 rate: {in_window} within 1 s");
                }
            }
            Op::Join(u) => {
                m.expire_sessions();
                let sold: usize = m
                    .holds
                    .iter()
                    .filter(|h| h.sold)
                    .map(|h| h.seats.len())
                    .sum();
                if sold == (2 * SEATS) as usize {
                    // Every seat sold: the event is closed for good.
                    assert_eq!(
                        e.join(&id, &user(u), m.now).map(Receipt::into_value),
                        Err(Rejection::EventClosed)
                    );
                    assert_eq!(e.event(&id, m.now).expect("event").phase, Phase::Closed);
                    continue;
                }
                let j = e
                    .join(&id, &user(u), m.now)
                    .map(Receipt::into_value)
                    .expect("join");
                let live = m.line.contains(&u) || m.admitted.contains_key(&u);
                assert_eq!(j.created, !live, "join of {u} created");
                if live {
                    assert_eq!(j.view.status.ticket, m.tickets[&u], "same ticket on rejoin");
                } else {
                    m.tickets.insert(u, j.view.status.ticket.clone());
                    m.line.push(u);
                    assert_eq!(j.view.status.position, Some(m.line.len() as u64));
                }
            }
            Op::Status(u) => {
                m.expire_sessions();
                if let Some(t) = m.tickets.get(&u) {
                    let v = status(&e, &id, t, m.now);
                    let want = if m.line.contains(&u) {
                        TicketState::Waiting
                    } else if m.admitted.contains_key(&u) {
                        TicketState::Admitted
                    } else {
                        v.status.state // ended: left or expired, checked below
                    };
                    assert_eq!(v.status.state, want);
                    assert!(matches!(
                        v.status.state,
                        TicketState::Waiting
                            | TicketState::Admitted
                            | TicketState::Left
                            | TicketState::Expired
                    ));
                }
            }
            Op::Leave(u) => {
                m.expire_sessions();
                if let Some(t) = m.tickets.get(&u) {
                    let _ = e.leave(&id, t, m.now).expect("leave");
                    m.line.retain(|x| *x != u);
                    m.admitted.remove(&u);
                    let v = status(&e, &id, t, m.now);
                    assert!(matches!(
                        v.status.state,
                        TicketState::Left | TicketState::Expired
                    ));
                }
            }
            Op::Complete(u) => {
                m.expire_sessions();
                if let Some(t) = m.tickets.get(&u) {
                    let r = e.complete(&id, t, m.now).map(Receipt::into_value);
                    if m.admitted.remove(&u).is_some() {
                        assert_eq!(r, Ok(()));
                    } else if m.line.contains(&u) {
                        assert_eq!(r, Err(Rejection::NotAdmitted));
                    }
                }
            }
            Op::Pause => {
                let _ = e.pause(&id, m.now).expect("pause");
                m.paused = true;
            }
            Op::Resume => {
                let _ = e.resume(&id, m.now).expect("resume");
                m.paused = false;
            }
            Op::Hold {
                user: u,
                seats,
                key,
            } => {
                let names: Vec<SeatId> = seats.iter().map(|&s| seat_name(s)).collect();
                let choice = SeatChoice::Exact(names);
                let k = key.map(|k| IdempotencyKey::new(&format!("key-{k}")).expect("key"));
                let r = e
                    .hold(&id, &user(u), &choice, k.as_ref(), m.now)
                    .map(Receipt::into_value);
                let request = (u, seats.clone());
                if let Some(kk) = key {
                    if let Some((req, idx)) = m.hold_keys.get(&kk) {
                        if *req == request {
                            let reply = r.expect("idempotent replay");
                            assert!(reply.replayed);
                            assert_eq!(reply.hold.id, m.holds[*idx].id, "I5 same hold");
                        } else {
                            assert_eq!(r, Err(Rejection::IdempotencyKeyReused));
                        }
                        check_seats(&e, &id, &m);
                        continue;
                    }
                }
                let mut dedup = seats.clone();
                dedup.sort_unstable();
                dedup.dedup();
                let occ = m.occupied();
                let taken: Vec<u32> = seats.iter().copied().filter(|s| occ[*s as usize]).collect();
                let over = m.user_seats(u) + seats.len() as u32 > MAX_PER_USER;
                match r {
                    _ if dedup.len() != seats.len() => {
                        assert!(matches!(r, Err(Rejection::InvalidRequest(_))), "{r:?}")
                    }
                    Ok(reply) => {
                        assert!(taken.is_empty() && !over, "hold granted over taken/limit");
                        assert_eq!(reply.hold.expires_at, m.now.plus_ms(HOLD_TTL_MS));
                        m.holds.push(MHold {
                            id: reply.hold.id,
                            user: u,
                            seats: seats.clone(),
                            created: m.now,
                            expires: m.now.plus_ms(HOLD_TTL_MS),
                            sold: false,
                            released: false,
                        });
                        if let Some(kk) = key {
                            m.hold_keys.insert(kk, (request, m.holds.len() - 1));
                        }
                    }
                    Err(Rejection::SeatsUnavailable { seats: got }) => {
                        assert!(!taken.is_empty());
                        let mut want: Vec<String> =
                            taken.iter().map(|s| seat_name(*s).to_string()).collect();
                        let mut got = got;
                        want.sort();
                        want.dedup();
                        got.sort();
                        assert_eq!(got, want, "taken seats listed");
                    }
                    Err(Rejection::LimitExceeded { .. }) => assert!(over),
                    other => panic!("unexpected {other:?}"),
                }
            }
            Op::Best { user: u, count } => {
                let choice = SeatChoice::Best {
                    count: nz(count),
                    category: "VIP".into(),
                };
                let occ = m.occupied();
                let fits = (0..2).any(|row| {
                    (0..=SEATS - count).any(|start| {
                        (start..start + count).all(|i| !occ[(row * SEATS + i) as usize])
                    })
                });
                let over = m.user_seats(u) + count > MAX_PER_USER;
                match e
                    .hold(&id, &user(u), &choice, None, m.now)
                    .map(Receipt::into_value)
                {
                    Ok(reply) => {
                        assert!(fits && !over);
                        let idx: Vec<u32> = reply.hold.seats.iter().map(seat_index).collect();
                        assert_eq!(idx.len() as u32, count);
                        assert!(
                            idx.iter().all(|s| !occ[*s as usize]),
                            "best took a taken seat"
                        );
                        assert!(idx.iter().all(|s| s / SEATS == idx[0] / SEATS), "one row");
                        let mut sorted = idx.clone();
                        sorted.sort_unstable();
                        assert!(sorted.windows(2).all(|w| w[1] == w[0] + 1), "adjacent");
                        m.holds.push(MHold {
                            id: reply.hold.id,
                            user: u,
                            seats: idx,
                            created: m.now,
                            expires: m.now.plus_ms(HOLD_TTL_MS),
                            sold: false,
                            released: false,
                        });
                    }
                    Err(Rejection::NoAdjacent { .. }) => assert!(!fits || over),
                    Err(Rejection::LimitExceeded { .. }) => assert!(over),
                    other => panic!("unexpected {other:?}"),
                }
            }
            Op::Confirm(i) => {
                let Some(h) = m.holds.get(i % m.holds.len().max(1)).cloned() else {
                    continue;
                };
                let idx = i % m.holds.len();
                let r = e
                    .confirm(&id, h.id, "order-1", m.now)
                    .map(Receipt::into_value);
                if h.sold || h.live(m.now) {
                    let info = r.expect("confirm");
                    assert_eq!(info.state, HoldState::Sold);
                    m.holds[idx].sold = true;
                } else {
                    assert_eq!(
                        r,
                        Err(Rejection::HoldExpired),
                        "confirm of a lapsed hold (I4)"
                    );
                }
            }
            Op::Extend(i, ttl) => {
                let Some(h) = m.holds.get(i % m.holds.len().max(1)).cloned() else {
                    continue;
                };
                let idx = i % m.holds.len();
                let r = e.extend(&id, h.id, ttl, m.now).map(Receipt::into_value);
                let asked = m.now.plus_secs(u64::from(ttl));
                // An extend never shortens a hold.
                let want_exp = asked.max(h.expires);
                if h.sold {
                    assert_eq!(r, Err(Rejection::HoldSold), "a sold hold says sold");
                } else if !h.live(m.now) {
                    assert_eq!(r, Err(Rejection::HoldExpired));
                } else if asked > h.created.plus_ms(MAX_TTL_MS) {
                    assert!(matches!(r, Err(Rejection::TtlTooLong { .. })), "{r:?}");
                } else {
                    assert_eq!(r.expect("extend").expires_at, want_exp);
                    m.holds[idx].expires = want_exp;
                }
            }
            Op::Release(i) => {
                let Some(h) = m.holds.get(i % m.holds.len().max(1)).cloned() else {
                    continue;
                };
                let idx = i % m.holds.len();
                let r = e.release(&id, h.id, m.now).map(Receipt::into_value);
                if h.sold {
                    assert_eq!(r, Err(Rejection::HoldSold));
                } else {
                    assert_eq!(r, Ok(()));
                    if h.live(m.now) {
                        m.holds[idx].released = true;
                    }
                }
            }
            Op::Claim { user: u, key } => {
                let k = key.map(|k| IdempotencyKey::new(&format!("key-{k}")).expect("key"));
                let r = e
                    .claim(&coupon, &user(u), k.as_ref(), m.now)
                    .map(Receipt::into_value);
                if let Some(kk) = key {
                    if let Some((ku, idx)) = m.claim_keys.get(&kk) {
                        if *ku == u {
                            let reply = r.expect("replay");
                            assert!(reply.replayed);
                            assert_eq!(reply.claim, m.claims[*idx].0, "I5 same claim");
                        } else {
                            assert_eq!(r, Err(Rejection::IdempotencyKeyReused));
                        }
                        continue;
                    }
                }
                let issued = m.claims.iter().filter(|c| !c.2).count() as u32;
                if m.live_claims(u) >= PER_USER {
                    assert_eq!(r, Err(Rejection::AlreadyClaimed));
                } else if issued >= STOCK {
                    assert_eq!(r, Err(Rejection::SoldOut));
                } else {
                    let reply = r.expect("claim");
                    assert_eq!(reply.remaining, STOCK - issued - 1);
                    m.claims.push((reply.claim, u, false));
                    if let Some(kk) = key {
                        m.claim_keys.insert(kk, (u, m.claims.len() - 1));
                    }
                }
            }
            Op::Return(i) => {
                if m.claims.is_empty() {
                    continue;
                }
                let idx = i % m.claims.len();
                let _ = e
                    .return_claim(&coupon, m.claims[idx].0, m.now)
                    .expect("return");
                m.claims[idx].2 = true;
            }
        }
        // Invariants after every step.
        m.expire_sessions();
        check_seats(&e, &id, &m);
        check_queue(&e, &id, &m);
        let (cfg, counts) = e.coupon(&coupon).expect("coupon");
        let issued = m.claims.iter().filter(|c| !c.2).count() as u32;
        assert_eq!(counts.issued, issued, "I2 issued");
        assert_eq!(
            counts.issued + counts.remaining,
            cfg.stock,
            "I2 conservation"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
    #[test]
    fn engine_matches_model(ops in prop::collection::vec(op(), 1..120)) {
        run(ops);
    }
}
