//! Unit tests, one or more per rule. Every test that changes state also checks
//! that replaying its changes onto the starting snapshot reproduces the map.

use super::*;
use crate::config::nz;

pub(super) fn rr(section: &str, row: &str, first: u32, last: u32, category: &str) -> RowRange {
    RowRange {
        section: section.into(),
        row: row.into(),
        first,
        last,
        category: category.into(),
    }
}

fn seat(s: &str) -> SeatId {
    SeatId::parse(s).expect("test seat id")
}

fn seats(list: &[&str]) -> Vec<SeatId> {
    list.iter().map(|s| seat(s)).collect()
}

fn user(s: &str) -> UserId {
    UserId::new(s).expect("test user id")
}

const T0: Timestamp = Timestamp(1_700_000_000_000);
/// The writer epoch holds are made under here.
const E: u64 = 3;

fn policy(ttl_s: u32, max_ttl_s: u32, max_seats: u32) -> HoldPolicy {
    HoldPolicy {
        ttl_s: nz(ttl_s),
        max_ttl_s: nz(max_ttl_s),
        max_seats_per_user: nz(max_seats),
    }
}

/// A map plus everything it emitted since it was created.
struct H {
    layout: Vec<RowRange>,
    policy: HoldPolicy,
    start: SeatSnapshot,
    map: SeatMap,
    out: Vec<SeatChange>,
}

impl H {
    fn new(layout: Vec<RowRange>, policy: HoldPolicy) -> Self {
        let map = SeatMap::new(&layout, policy, [7; 32]);
        H {
            start: map.to_snapshot(),
            layout,
            policy,
            map,
            out: Vec::new(),
        }
    }

    /// A-1 1..10 and A-2 1..10 VIP, B-1 1..20 R; ttl 600 s, max 1800 s, 4 seats.
    fn small() -> Self {
        H::new(
            vec![
                rr("A", "1", 1, 10, "VIP"),
                rr("A", "2", 1, 10, "VIP"),
                rr("B", "1", 1, 20, "R"),
            ],
            policy(600, 1800, 4),
        )
    }

    fn hold(&mut self, u: &str, list: &[&str], now: Timestamp) -> Result<HoldInfo, SeatRefusal> {
        self.map.hold(
            &user(u),
            &SeatChoice::Exact(seats(list)),
            E,
            now,
            &mut self.out,
        )
    }

    fn held(&mut self, u: &str, list: &[&str], now: Timestamp) -> HoldInfo {
        match self.hold(u, list, now) {
            Ok(info) => info,
            other => panic!("expected a hold, got {other:?}"),
        }
    }

    fn best(
        &mut self,
        u: &str,
        count: u32,
        cat: &str,
        now: Timestamp,
    ) -> Result<HoldInfo, SeatRefusal> {
        let choice = SeatChoice::Best {
            count: nz(count),
            category: cat.into(),
        };
        self.map.hold(&user(u), &choice, E, now, &mut self.out)
    }

    fn best_seats(&mut self, u: &str, count: u32, cat: &str, now: Timestamp) -> Vec<String> {
        match self.best(u, count, cat, now) {
            Ok(info) => info.seats.iter().map(|s| s.to_string()).collect(),
            other => panic!("expected a hold, got {other:?}"),
        }
    }

    fn rows(&self, section: &str, now: Timestamp) -> Vec<String> {
        self.map
            .section_rows(section, now)
            .expect("section exists")
            .into_iter()
            .map(|r| r.status)
            .collect()
    }

    /// Replaying the emitted changes onto the first snapshot gives this map.
    fn check_replay(&self) {
        let mut replica = SeatMap::from_snapshot(self.start.clone(), &self.layout, self.policy);
        for c in &self.out {
            replica
                .apply(c, T0)
                .unwrap_or_else(|e| panic!("replay of {c:?}: {e}"));
        }
        assert_eq!(replica.to_snapshot(), self.map.to_snapshot());
    }
}

fn counts(free: u64, held: u64, sold: u64) -> Counts {
    Counts { free, held, sold }
}

#[test]
fn exact_hold_succeeds_with_ttl() {
    let mut h = H::small();
    let info = h.held("u1", &["A-1-2", "A-1-1"], T0);
    assert_eq!(info.user, user("u1"));
    assert_eq!(info.seats, seats(&["A-1-2", "A-1-1"]));
    assert_eq!(info.state, HoldState::Held);
    assert_eq!(info.created_at, T0);
    assert_eq!(info.expires_at, T0.plus_secs(600));
    assert_eq!(info.order, None);
    assert_eq!(h.map.get(info.id, T0), Some(info.clone()));
    assert_eq!(h.map.counts(T0).total, counts(38, 2, 0));
    assert_eq!(h.map.user_seats(&user("u1")), 2);
    assert_eq!(h.rows("A", T0)[0], "HHFFFFFFFF");
    assert_eq!(h.out.len(), 1);
    h.check_replay();
}

#[test]
fn exact_hold_rejections() {
    let mut h = H::small();
    assert_eq!(h.hold("u1", &[], T0), Err(SeatRefusal::InvalidRequest));
    assert_eq!(
        h.hold("u1", &["A-1-1", "A-1-1"], T0),
        Err(SeatRefusal::InvalidRequest)
    );
    assert_eq!(
        h.hold("u1", &["A-1-1", "A-1-2", "A-1-3", "A-1-4", "A-1-5"], T0),
        Err(SeatRefusal::LimitExceeded {
            limit: 4,
            current: 0,
            requested: 5
        })
    );
    assert_eq!(
        h.hold("u1", &["A-1-1", "A-1-11", "C-1-1", "A-1-11"], T0),
        Err(SeatRefusal::UnknownSeat {
            seats: seats(&["A-1-11", "C-1-1"])
        })
    );
    assert!(h.out.is_empty(), "rejections change nothing");
    h.held("u2", &["A-1-2", "A-1-4"], T0);
    assert_eq!(
        h.hold("u1", &["A-1-1", "A-1-4", "A-1-3", "A-1-2"], T0),
        Err(SeatRefusal::Taken {
            seats: seats(&["A-1-4", "A-1-2"])
        })
    );
    // A seat already in one of the user's own holds is taken too (one seat,
    // one hold).
    assert_eq!(
        h.hold("u2", &["A-1-4"], T0),
        Err(SeatRefusal::Taken {
            seats: seats(&["A-1-4"])
        })
    );
    assert_eq!(h.map.counts(T0).total, counts(38, 2, 0));
    h.check_replay();
}

#[test]
fn user_limit_counts_held_and_sold() {
    let mut h = H::small();
    let a = h.held("u1", &["A-1-1", "A-1-2"], T0);
    let b = h.held("u1", &["A-1-3"], T0);
    assert!(h.map.confirm(a.id, "o1", T0, &mut h.out).is_ok());
    assert_eq!(
        h.hold("u1", &["B-1-1", "B-1-2"], T0),
        Err(SeatRefusal::LimitExceeded {
            limit: 4,
            current: 3,
            requested: 2
        })
    );
    assert_eq!(
        h.best("u1", 2, "R", T0),
        Err(SeatRefusal::LimitExceeded {
            limit: 4,
            current: 3,
            requested: 2
        })
    );
    h.held("u2", &["B-1-1", "B-1-2", "B-1-3", "B-1-4"], T0);
    assert_eq!(h.map.release(b.id, T0, &mut h.out), Ok(Released::Now));
    assert_eq!(h.map.user_seats(&user("u1")), 2);
    h.held("u1", &["B-1-5", "B-1-6"], T0);
    // Expiry gives the quota back at the instant it is due, tick or not.
    let t = T0.plus_secs(600);
    assert_eq!(
        h.hold("u1", &["B-1-7"], t.minus_ms(1)),
        Err(SeatRefusal::LimitExceeded {
            limit: 4,
            current: 4,
            requested: 1
        })
    );
    h.held("u1", &["B-1-7", "B-1-8"], t);
    assert_eq!(h.map.user_seats(&user("u1")), 4);
    assert_eq!(h.map.user_seats(&user("u2")), 0);
    h.check_replay();
}

#[test]
fn expiry_is_exact_at_the_instant_without_tick() {
    let mut h = H::small();
    let info = h.held("u1", &["A-1-1", "A-1-2"], T0);
    let due = T0.plus_secs(600);
    let before = due.minus_ms(1);
    assert_eq!(
        h.map.get(info.id, before).map(|i| i.state),
        Some(HoldState::Held)
    );
    assert_eq!(
        h.map.get(info.id, due).map(|i| i.state),
        Some(HoldState::Expired)
    );
    assert_eq!(h.map.counts(before).total, counts(38, 2, 0));
    assert_eq!(h.map.counts(due).total, counts(40, 0, 0));
    assert_eq!(h.map.counts(due).categories["VIP"], counts(20, 0, 0));
    assert_eq!(h.rows("A", before)[0], "HHFFFFFFFF");
    assert_eq!(h.rows("A", due)[0], "FFFFFFFFFF");
    assert!(h.map.in_use(before));
    assert!(!h.map.in_use(due));
    assert_eq!(
        h.hold("u2", &["A-1-2"], before),
        Err(SeatRefusal::Taken {
            seats: seats(&["A-1-2"])
        })
    );
    // The write at `due` first expires the hold, then takes the seat.
    let n = h.out.len();
    h.held("u2", &["A-1-2"], due);
    assert!(matches!(h.out[n], SeatChange::Expired { id, .. } if id == info.id));
    assert!(matches!(h.out[n + 1], SeatChange::Held { .. }));
    assert_eq!(
        h.map.confirm(info.id, "o", due, &mut h.out),
        Err(SeatRefusal::Expired)
    );
    assert_eq!(
        h.map.extend(info.id, 60, due, &mut h.out),
        Err(SeatRefusal::NotHeld)
    );
    assert_eq!(
        h.map.release(info.id, due, &mut h.out),
        Ok(Released::AlreadyGone)
    );
    assert_eq!(h.map.tick(due, &mut h.out), 0, "already swept by the write");
    h.check_replay();
}

#[test]
fn tick_expires_and_reports() {
    let mut h = H::small();
    h.held("u1", &["A-1-1"], T0);
    h.held("u2", &["A-1-2"], T0.plus_secs(1));
    assert_eq!(h.map.next_deadline(), Some(T0.plus_secs(600)));
    assert_eq!(h.map.tick(T0.plus_secs(599), &mut h.out), 0);
    assert_eq!(h.map.tick(T0.plus_secs(600), &mut h.out), 1);
    assert_eq!(h.map.tick(T0.plus_secs(700), &mut h.out), 1);
    assert_eq!(h.map.counts(T0.plus_secs(700)).total, counts(40, 0, 0));
    h.check_replay();
}

/// I4 race: a timer entry left behind by an extend must not end the renewed
/// hold. To see this test fail, drop `&& h.expires_at == at` from
/// `entry_is_current` in expiry.rs: the old entry then expires the hold at
/// the original deadline.
#[test]
fn stale_timer_never_expires_an_extended_hold() {
    let mut h = H::small();
    let info = h.held("u1", &["A-1-1"], T0);
    let t = T0.plus_secs(300);
    let Ok(ext) = h.map.extend(info.id, 900, t, &mut h.out) else {
        panic!("extend failed");
    };
    assert_eq!(ext.expires_at, t.plus_secs(900));
    // The original deadline passes, with a tick and a write right at it.
    let old = T0.plus_secs(600);
    assert_eq!(h.map.tick(old, &mut h.out), 0);
    assert_eq!(
        h.hold("u2", &["A-1-1"], old),
        Err(SeatRefusal::Taken {
            seats: seats(&["A-1-1"])
        })
    );
    assert_eq!(
        h.map.get(info.id, old).map(|i| i.state),
        Some(HoldState::Held)
    );
    assert!(h.map.confirm(info.id, "o1", old, &mut h.out).is_ok());
    assert!(!h
        .out
        .iter()
        .any(|c| matches!(c, SeatChange::Expired { .. })));
    h.check_replay();
}

/// I4 race on a recycled slot: the previous occupant's timer entry must not
/// end the new hold. To see it fail, make `entry_is_current` in expiry.rs
/// return `true` (neither generation nor deadline checked).
#[test]
fn stale_timer_never_expires_a_recycled_slot() {
    let mut h = H::new(vec![rr("A", "1", 1, 10, "R")], policy(600, 86_400, 4));
    let old = h.held("u1", &["A-1-1"], T0);
    // Stretch it to a day, then release it: its timer entry stays behind.
    let Ok(_) = h.map.extend(old.id, 86_400, T0, &mut h.out) else {
        panic!("extend failed");
    };
    assert_eq!(h.map.release(old.id, T0, &mut h.out), Ok(Released::Now));
    let t = T0.plus_ms(TERMINAL_RETENTION_MS);
    h.map.tick(t, &mut h.out);
    assert_eq!(h.map.get(old.id, t), None, "recycled after the retention");
    // The slot's next hold is alive when the old entry comes due.
    let day = T0.plus_secs(86_400);
    let new = h.held("u2", &["A-1-2"], day.minus_ms(300_000));
    assert_eq!(
        new.id,
        HoldId {
            index: old.id.index,
            generation: old.id.generation + 1,
            epoch: E,
        }
    );
    assert_eq!(h.map.tick(day, &mut h.out), 0);
    assert_eq!(
        h.map.get(new.id, day).map(|i| i.state),
        Some(HoldState::Held)
    );
    assert_eq!(h.rows("A", day)[0], "FHFFFFFFFF");
    assert_eq!(
        h.map.confirm(old.id, "o", day, &mut h.out),
        Err(SeatRefusal::Expired)
    );
    h.check_replay();
}

#[test]
fn extend_rules() {
    let mut h = H::small();
    let info = h.held("u1", &["A-1-1"], T0);
    let t = T0.plus_secs(100);
    let Ok(e) = h.map.extend(info.id, 1000, t, &mut h.out) else {
        panic!("extend failed");
    };
    assert_eq!(e.expires_at, t.plus_secs(1000));
    assert_eq!(e.state, HoldState::Held);
    assert_eq!(
        h.map.extend(info.id, 1701, t, &mut h.out),
        Err(SeatRefusal::TooLong {
            max_expires_at: T0.plus_secs(1800)
        })
    );
    assert_eq!(
        h.map.extend(info.id, u32::MAX, t, &mut h.out),
        Err(SeatRefusal::TooLong {
            max_expires_at: T0.plus_secs(1800)
        })
    );
    assert!(h.map.extend(info.id, 1700, t, &mut h.out).is_ok());
    assert_eq!(
        h.map.extend(
            HoldId {
                index: 9,
                generation: 0,
                epoch: E,
            },
            10,
            t,
            &mut h.out
        ),
        Err(SeatRefusal::NotFound)
    );
    let end = T0.plus_secs(1800);
    assert_eq!(
        h.map.extend(info.id, 1, end, &mut h.out),
        Err(SeatRefusal::NotHeld)
    );
    let sold = h.held("u1", &["A-1-2"], end);
    let _ = h.map.confirm(sold.id, "o", end, &mut h.out);
    assert_eq!(
        h.map.extend(sold.id, 1, end, &mut h.out),
        Err(SeatRefusal::Sold)
    );
    h.check_replay();
}

#[test]
fn extend_never_shortens() {
    let mut h = H::small();
    let info = h.held("u1", &["A-1-1"], T0);
    let t = T0.plus_secs(100);
    let n = h.out.len();
    let Ok(e) = h.map.extend(info.id, 10, t, &mut h.out) else {
        panic!("extend failed");
    };
    assert_eq!(e.expires_at, info.expires_at, "kept, not cut to t + 10 s");
    assert_eq!(h.out.len(), n, "nothing journaled");
    let Ok(e) = h.map.extend(info.id, 900, t, &mut h.out) else {
        panic!("extend failed");
    };
    assert_eq!(e.expires_at, t.plus_secs(900));
    let Ok(e) = h.map.extend(info.id, 1, t, &mut h.out) else {
        panic!("extend failed");
    };
    assert_eq!(e.expires_at, t.plus_secs(900));
    h.check_replay();
}

#[test]
fn release_rules() {
    let mut h = H::small();
    let a = h.held("u1", &["A-1-1", "A-1-2"], T0);
    assert_eq!(h.map.release(a.id, T0, &mut h.out), Ok(Released::Now));
    assert_eq!(h.map.counts(T0).total, counts(40, 0, 0));
    assert_eq!(
        h.map.get(a.id, T0).map(|i| i.state),
        Some(HoldState::Released)
    );
    assert_eq!(
        h.map.release(a.id, T0, &mut h.out),
        Ok(Released::AlreadyGone)
    );
    // Free at once: another user takes them in the same millisecond.
    let b = h.held("u2", &["A-1-1", "A-1-2"], T0);
    let _ = h.map.confirm(b.id, "o", T0, &mut h.out);
    assert_eq!(h.map.release(b.id, T0, &mut h.out), Err(SeatRefusal::Sold));
    assert_eq!(
        h.map.release(
            HoldId {
                index: 0,
                generation: 5,
                epoch: E,
            },
            T0,
            &mut h.out
        ),
        Err(SeatRefusal::NotFound)
    );
    assert_eq!(
        h.map.release(
            HoldId {
                index: 99,
                generation: 0,
                epoch: E,
            },
            T0,
            &mut h.out
        ),
        Err(SeatRefusal::NotFound)
    );
    h.check_replay();
}

#[test]
fn confirm_rules() {
    let mut h = H::small();
    let a = h.held("u1", &["A-1-1"], T0);
    let Ok(s) = h.map.confirm(a.id, "o-1", T0, &mut h.out) else {
        panic!("confirm failed");
    };
    assert_eq!(
        (s.state, s.order.as_deref()),
        (HoldState::Sold, Some("o-1"))
    );
    let n = h.out.len();
    // Idempotent, first order kept, nothing journaled; sold never expires.
    let later = T0.plus_secs(1_000_000);
    let Ok(again) = h.map.confirm(a.id, "o-2", later, &mut h.out) else {
        panic!("confirm failed");
    };
    assert_eq!(again.order.as_deref(), Some("o-1"));
    assert_eq!(h.out.len(), n);
    assert_eq!(h.map.counts(later).total, counts(39, 0, 1));
    assert_eq!(h.rows("A", later)[0], "SFFFFFFFFF");
    let b = h.held("u1", &["A-1-2"], later);
    let _ = h.map.release(b.id, later, &mut h.out);
    assert_eq!(
        h.map.confirm(b.id, "o", later, &mut h.out),
        Err(SeatRefusal::Expired)
    );
    let c = h.held("u1", &["A-1-3"], later);
    let due = later.plus_secs(600);
    assert_eq!(
        h.map.confirm(c.id, "o", due, &mut h.out),
        Err(SeatRefusal::Expired)
    );
    assert_eq!(
        h.map.confirm(c.id, "o", due.minus_ms(1), &mut h.out),
        Err(SeatRefusal::Expired)
    );
    assert_eq!(
        h.map.confirm(
            HoldId {
                index: 50,
                generation: 0,
                epoch: E,
            },
            "o",
            due,
            &mut h.out
        ),
        Err(SeatRefusal::NotFound)
    );
    // Sold holds are kept forever, never recycled.
    h.map.tick(due.plus_secs(10 * 86_400), &mut h.out);
    assert_eq!(
        h.map.get(a.id, due.plus_secs(10 * 86_400)).map(|i| i.state),
        Some(HoldState::Sold)
    );
    h.check_replay();
}

#[test]
fn terminal_holds_are_kept_then_recycled() {
    let mut h = H::small();
    let a = h.held("u1", &["A-1-1"], T0);
    let b = h.held("u1", &["A-1-2"], T0);
    let _ = h.map.release(a.id, T0.plus_secs(10), &mut h.out);
    // b expires at T0 + 600 s; retention counts from there.
    let keep_a = T0.plus_secs(10).plus_ms(TERMINAL_RETENTION_MS);
    let keep_b = T0.plus_secs(600).plus_ms(TERMINAL_RETENTION_MS);
    h.map.tick(keep_a.minus_ms(1), &mut h.out);
    assert_eq!(
        h.map.get(a.id, keep_a).map(|i| i.state),
        Some(HoldState::Released)
    );
    h.map.tick(keep_a, &mut h.out);
    assert_eq!(h.map.get(a.id, keep_a), None);
    assert_eq!(
        h.map.get(b.id, keep_a).map(|i| i.state),
        Some(HoldState::Expired)
    );
    assert_eq!(
        h.map.confirm(a.id, "o", keep_a, &mut h.out),
        Err(SeatRefusal::Expired)
    );
    assert_eq!(
        h.map.release(a.id, keep_a, &mut h.out),
        Ok(Released::AlreadyGone)
    );
    assert_eq!(
        h.map.extend(a.id, 1, keep_a, &mut h.out),
        Err(SeatRefusal::NotHeld)
    );
    h.map.tick(keep_b, &mut h.out);
    assert_eq!(h.map.get(b.id, keep_b), None);
    let recycled = h
        .out
        .iter()
        .filter(|c| matches!(c, SeatChange::Recycled { .. }))
        .count();
    assert_eq!(recycled, 2);
    // The lowest vacant slot is reused, with the next generation.
    let c = h.held("u3", &["A-1-1"], keep_b);
    assert_eq!(
        c.id,
        HoldId {
            index: a.id.index,
            generation: 1,
            epoch: E,
        }
    );
    let d = h.held("u3", &["A-1-2"], keep_b);
    assert_eq!(
        d.id,
        HoldId {
            index: b.id.index,
            generation: 1,
            epoch: E,
        }
    );
    let e = h.held("u3", &["A-1-3"], keep_b);
    assert_eq!(
        e.id,
        HoldId {
            index: 2,
            generation: 0,
            epoch: E,
        }
    );
    assert_eq!(h.map.get(a.id, keep_b), None);
    h.check_replay();
}

#[test]
fn odd_hold_ids_and_inputs_do_not_panic() {
    let mut h = H::small();
    h.held("u1", &["A-1-1"], T0);
    for id in [
        HoldId {
            index: u32::MAX,
            generation: u32::MAX,
            epoch: E,
        },
        HoldId {
            index: 0,
            generation: u32::MAX,
            epoch: E,
        },
        HoldId {
            index: u32::MAX,
            generation: 0,
            epoch: E,
        },
        HoldId {
            index: 1,
            generation: 0,
            epoch: E,
        },
    ] {
        assert_eq!(h.map.get(id, T0), None);
        assert_eq!(
            h.map.confirm(id, "o", T0, &mut h.out),
            Err(SeatRefusal::NotFound)
        );
        assert_eq!(
            h.map.extend(id, u32::MAX, T0, &mut h.out),
            Err(SeatRefusal::NotFound)
        );
        assert_eq!(
            h.map.release(id, T0, &mut h.out),
            Err(SeatRefusal::NotFound)
        );
    }
    let far = Timestamp(u64::MAX);
    h.held("u2", &["A-1-2"], far.minus_ms(5));
    assert_eq!(h.map.counts(far).total.held, 0);
    h.map.tick(far, &mut h.out);
    assert_eq!(
        h.hold("u3", &["A-1-999999999", "A-99-1"], T0),
        Err(SeatRefusal::UnknownSeat {
            seats: seats(&["A-1-999999999", "A-99-1"])
        })
    );
    let many: Vec<SeatId> = (1..=10_000)
        .map(|n| SeatId {
            section: "A".into(),
            row: "1".into(),
            number: n,
        })
        .collect();
    assert!(matches!(
        h.map
            .hold(&user("u3"), &SeatChoice::Exact(many), E, T0, &mut h.out),
        Err(SeatRefusal::LimitExceeded {
            requested: 10_000,
            ..
        })
    ));
    let huge = SeatChoice::Best {
        count: nz(u32::MAX),
        category: "VIP".into(),
    };
    assert!(matches!(
        h.map.hold(&user("u3"), &huge, E, T0, &mut h.out),
        Err(SeatRefusal::LimitExceeded { .. })
    ));
    // Changes that do not fit are refused whole.
    let bad = [
        SeatChange::Held {
            id: HoldId {
                index: 40,
                generation: 0,
                epoch: E,
            },
            user: user("x"),
            seats: vec![5],
            created_at: T0,
            expires_at: T0,
        },
        SeatChange::Held {
            id: HoldId {
                index: 2,
                generation: 0,
                epoch: E,
            },
            user: user("x"),
            seats: vec![5, 6, 5],
            created_at: T0,
            expires_at: T0,
        },
        SeatChange::Held {
            id: HoldId {
                index: 2,
                generation: 0,
                epoch: E,
            },
            user: user("x"),
            seats: vec![5, u32::MAX],
            created_at: T0,
            expires_at: T0,
        },
        SeatChange::Confirmed {
            id: HoldId {
                index: 7,
                generation: 0,
                epoch: E,
            },
            order: "o".into(),
            user: user("x"),
            seats: vec![],
        },
        SeatChange::Recycled {
            index: 0,
            generation: 1,
        },
        SeatChange::Expired {
            id: HoldId {
                index: 0,
                generation: 3,
                epoch: E,
            },
            user: user("x"),
            seats: vec![],
        },
    ];
    let before = h.map.to_snapshot();
    for c in &bad {
        assert!(h.map.apply(c, T0).is_err(), "{c:?}");
    }
    assert_eq!(h.map.to_snapshot(), before);
}

#[test]
fn counts_per_category_and_in_use() {
    let mut h = H::small();
    assert!(!h.map.in_use(T0));
    let c = h.map.counts(T0);
    assert_eq!(c.total, counts(40, 0, 0));
    assert_eq!(c.categories.len(), 2);
    assert_eq!(c.categories["VIP"], counts(20, 0, 0));
    assert_eq!(c.categories["R"], counts(20, 0, 0));
    let a = h.held("u1", &["A-2-1", "B-1-1"], T0);
    h.held("u2", &["B-1-2", "B-1-3"], T0);
    let _ = h.map.confirm(a.id, "o", T0, &mut h.out);
    let c = h.map.counts(T0);
    assert_eq!(c.total, counts(36, 2, 2));
    assert_eq!(c.categories["VIP"], counts(19, 0, 1));
    assert_eq!(c.categories["R"], counts(17, 2, 1));
    assert!(h.map.in_use(T0.plus_secs(10_000)), "sold counts as in use");
    h.check_replay();
}

#[test]
fn section_rows_show_every_range() {
    let mut h = H::new(
        vec![
            rr("A", "1", 1, 4, "VIP"),
            rr("A", "1", 5, 8, "R"),
            rr("B", "1", 1, 2, "R"),
            rr("A", "2", 3, 5, "R"),
        ],
        policy(600, 1800, 4),
    );
    let a = h.held("u1", &["A-1-4", "A-1-5"], T0);
    let _ = h.map.confirm(a.id, "o", T0, &mut h.out);
    h.held("u2", &["A-2-5"], T0);
    let rows = h.map.section_rows("A", T0).expect("section A");
    let got: Vec<(&str, u32, &str)> = rows
        .iter()
        .map(|r| (r.row.as_str(), r.first, r.status.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![("1", 1, "FFFS"), ("1", 5, "SFFF"), ("2", 3, "FFH")]
    );
    assert_eq!(h.map.section_rows("C", T0), None);
    assert_eq!(h.map.section_rows("", T0), None);
    h.check_replay();
}

#[test]
fn best_takes_adjacent_seats_in_the_best_row_near_the_middle() {
    let mut h = H::new(
        vec![
            rr("A", "1", 1, 9, "VIP"),
            rr("A", "2", 1, 9, "VIP"),
            rr("B", "1", 1, 9, "R"),
        ],
        policy(600, 1800, 10),
    );
    // Three seats in row 1 of 9: the middle block 4-6 is the only one that
    // is centred; spreading may take a neighbour block, all in row 1.
    let got = h.best_seats("u1", 3, "VIP", T0);
    assert!(got.iter().all(|s| s.starts_with("A-1-")), "{got:?}");
    let nums: Vec<u32> = got
        .iter()
        .map(|s| {
            s.rsplit('-')
                .next()
                .and_then(|n| n.parse().ok())
                .expect("number")
        })
        .collect();
    assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "{nums:?}");
    // Top 4 by distance from the middle, none leaving a lone seat: 4-6,
    // 3-5, 5-7, 1-3.
    assert!([1, 3, 4, 5].contains(&nums[0]), "{nums:?}");
    assert_eq!(
        h.best("u1", 3, "Nope", T0),
        Err(SeatRefusal::UnknownCategory)
    );
    assert_eq!(
        h.best("u2", 10, "VIP", T0),
        Err(SeatRefusal::NoAdjacent { count: 10 })
    );
    assert_eq!(
        h.best("u2", 10, "R", T0),
        Err(SeatRefusal::NoAdjacent { count: 10 })
    );
    h.check_replay();
}

#[test]
fn best_prefers_better_rows_and_skips_full_ones() {
    // Rows of 4, blocks of 4: one candidate a row, so each pick is one of
    // the best BEST_SPREAD rows still empty.
    let layout: Vec<RowRange> = (1..=8)
        .map(|r| rr("A", &r.to_string(), 1, 4, "R"))
        .collect();
    let mut h = H::new(layout, policy(600, 1800, 100));
    let mut empty: Vec<u32> = (1..=8).collect();
    while !empty.is_empty() {
        let got = h.best_seats("u", 4, "R", T0);
        let row: u32 = got[0]
            .split('-')
            .nth(1)
            .and_then(|r| r.parse().ok())
            .expect("row");
        let pos = empty.iter().position(|&r| r == row).expect("an empty row");
        assert!(
            pos < BEST_SPREAD,
            "row {row} picked while {empty:?} were empty"
        );
        empty.remove(pos);
    }
    assert_eq!(
        h.best("u", 1, "R", T0),
        Err(SeatRefusal::NoAdjacent { count: 1 })
    );
    assert_eq!(h.map.counts(T0).total, counts(0, 32, 0));
    h.check_replay();
}

#[test]
fn best_never_leaves_a_lone_seat_when_a_clean_choice_exists() {
    let pol = policy(600, 1800, 10);
    let pick = |layout: &[RowRange], taken: &[&str], count: u32, seed: u8| -> Vec<String> {
        let mut m = SeatMap::new(layout, pol, [seed; 32]);
        let mut out = Vec::new();
        for (i, s) in taken.iter().enumerate() {
            let held = m.hold(
                &user(&format!("x{i}")),
                &SeatChoice::Exact(seats(&[s])),
                E,
                T0,
                &mut out,
            );
            assert!(held.is_ok());
        }
        let choice = SeatChoice::Best {
            count: nz(count),
            category: "R".into(),
        };
        match m.hold(&user("u"), &choice, E, T0, &mut out) {
            Ok(info) => info.seats.iter().map(|s| s.to_string()).collect(),
            other => panic!("expected a hold, got {other:?}"),
        }
    };
    let two_rows = [rr("A", "1", 1, 5, "R"), rr("A", "2", 1, 4, "R")];
    for seed in 0..8 {
        // Row 1 has 2-4 free (a pair leaves one alone); row 2 has 3-4 free (a
        // clean fit). Row 2 wins although row 1 is better.
        let got = pick(&two_rows, &["A-1-1", "A-1-5", "A-2-1", "A-2-2"], 2, seed);
        assert_eq!(got, ["A-2-3", "A-2-4"]);
        // With no clean choice at all, a lone seat is allowed.
        let got = pick(&two_rows[..1], &["A-1-1", "A-1-5"], 2, seed);
        assert!(
            got == ["A-1-2", "A-1-3"] || got == ["A-1-3", "A-1-4"],
            "{got:?}"
        );
        // One seat out of 2-4 | 6-7: taking 3, 6 or 7 leaves a lone seat.
        let one_row = [rr("A", "1", 1, 7, "R")];
        let got = pick(&one_row, &["A-1-1", "A-1-5"], 1, seed);
        assert!(got == ["A-1-2"] || got == ["A-1-4"], "{got:?}");
    }
}

#[test]
fn best_spreads_over_the_top_candidates_deterministically() {
    let layout = vec![rr("A", "1", 1, 30, "R"), rr("A", "2", 1, 30, "R")];
    let mut picks = std::collections::BTreeSet::new();
    for seed in 0..40u8 {
        let mut a = SeatMap::new(&layout, policy(600, 1800, 4), [seed; 32]);
        let mut b = SeatMap::new(&layout, policy(600, 1800, 4), [seed; 32]);
        let choice = SeatChoice::Best {
            count: nz(2),
            category: "R".into(),
        };
        let (mut oa, mut ob) = (Vec::new(), Vec::new());
        let ra = a.hold(&user("u"), &choice, E, T0, &mut oa);
        let rb = b.hold(&user("u"), &choice, E, T0, &mut ob);
        assert_eq!(ra, rb, "same seed, same pick");
        let Ok(info) = ra else { panic!("no hold") };
        picks.insert(info.seats[0].to_string());
    }
    // The top 4 pairs of row 1 around its middle (15-16): 14, 15, 16, 13.
    let want: std::collections::BTreeSet<String> = ["A-1-13", "A-1-14", "A-1-15", "A-1-16"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(picks, want);
}

#[test]
fn best_is_fast_enough_on_a_big_venue_and_correct_when_fragmented() {
    // 50 rows of 1 000: fill every other seat so no pair fits in most rows.
    let layout: Vec<RowRange> = (1..=50)
        .map(|r| rr("A", &r.to_string(), 1, 1000, "R"))
        .collect();
    let mut h = H::new(layout, policy(600, 1800, 100));
    let mut out = Vec::new();
    let mut m = SeatMap::new(&h.layout, h.policy, [1; 32]);
    for r in 1..=49 {
        for n in (2..=1000).step_by(2) {
            let s = SeatId {
                section: "A".into(),
                row: r.to_string().into(),
                number: n,
            };
            let u = user(&format!("u{r}-{n}"));
            assert!(m
                .hold(&u, &SeatChoice::Exact(vec![s]), E, T0, &mut out)
                .is_ok());
        }
    }
    h.map = m;
    h.start = h.map.to_snapshot();
    for _ in 0..20 {
        let got = h.best_seats("v", 2, "R", T0);
        assert!(got[0].starts_with("A-50-"), "{got:?}");
    }
    h.check_replay();
}

#[test]
fn snapshot_round_trips_through_postcard_and_guards_its_layout() {
    let mut h = H::small();
    let a = h.held("u1", &["A-1-1", "A-1-2"], T0);
    let _ = h.map.confirm(a.id, "o-1", T0, &mut h.out);
    let b = h.held("u2", &["B-1-1"], T0);
    let _ = h.map.release(b.id, T0, &mut h.out);
    h.held("u3", &["B-1-1"], T0);
    let snap = h.map.to_snapshot();
    let bytes = postcard::to_allocvec(&snap).expect("serialise");
    let back: SeatSnapshot = postcard::from_bytes(&bytes).expect("deserialise");
    assert_eq!(back, snap);
    let restored =
        SeatMap::try_from_snapshot(back.clone(), &h.layout, h.policy).expect("same layout");
    assert_eq!(restored.to_snapshot(), snap);
    assert_eq!(restored.counts(T0), h.map.counts(T0));
    assert_eq!(restored.get(a.id, T0), h.map.get(a.id, T0));
    for c in &h.out {
        let bytes = postcard::to_allocvec(c).expect("serialise");
        assert_eq!(
            &postcard::from_bytes::<SeatChange>(&bytes).expect("deserialise"),
            c
        );
    }
    let other = vec![rr("A", "1", 1, 2, "VIP")];
    assert_eq!(
        SeatMap::try_from_snapshot(back.clone(), &other, h.policy).err(),
        Some(SnapshotError::OtherLayout)
    );
    // Restoring onto the wrong layout anyway keeps I1 and does not panic.
    let lenient = SeatMap::from_snapshot(back, &other, h.policy);
    assert_eq!(
        lenient.counts(T0).total.free
            + lenient.counts(T0).total.held
            + lenient.counts(T0).total.sold,
        2
    );
    h.check_replay();
}

#[test]
fn seat_map_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<SeatMap>();
    check::<SeatChange>();
    check::<SeatSnapshot>();
}

/// Many threads race for the same seats through a lock, as the shard will:
/// every seat ends with at most one live hold, and the winners' holds are
/// exactly the held seats.
#[test]
fn threads_never_double_book() {
    use parking_lot::RwLock;
    use std::sync::Arc;
    let layout = vec![rr("A", "1", 1, 40, "R")];
    let map = Arc::new(RwLock::new(SeatMap::new(
        &layout,
        policy(600, 1800, 4),
        [3; 32],
    )));
    let won: Vec<Vec<HoldId>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|t| {
                let map = Arc::clone(&map);
                s.spawn(move || {
                    let mut won = Vec::new();
                    let mut out = Vec::new();
                    for i in 0..200u32 {
                        let u = user(&format!("t{t}-{i}"));
                        let a = (i * 7 + t) % 40 + 1;
                        let b = (i * 13 + t * 3) % 40 + 1;
                        let list = if a == b { vec![a] } else { vec![a, b] };
                        let choice = SeatChoice::Exact(
                            list.iter()
                                .map(|&n| SeatId {
                                    section: "A".into(),
                                    row: "1".into(),
                                    number: n,
                                })
                                .collect(),
                        );
                        let now = T0.plus_ms(u64::from(i));
                        if let Ok(h) = map.write().hold(&u, &choice, E, now, &mut out) {
                            won.push(h.id);
                        }
                        let _ = map.read().counts(now);
                    }
                    won
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    let map = map.read();
    let now = T0.plus_ms(300);
    let mut seen = std::collections::HashSet::new();
    let mut held = 0;
    for id in won.into_iter().flatten() {
        let info = map.get(id, now).expect("winner's hold");
        assert_eq!(info.state, HoldState::Held);
        for s in info.seats {
            assert!(seen.insert(s.to_string()), "seat {s} in two holds");
            held += 1;
        }
    }
    assert_eq!(map.counts(now).total, counts(40 - held, held, 0));
    assert_eq!(held, 40, "every seat was won once");
}

/// Timings in release mode:
/// `cargo test --release -p boxoffice-engine seats::tests::perf -- --ignored --nocapture`
#[test]
#[ignore = "timing, run in release by hand"]
fn perf() {
    use std::time::Instant;
    // 50 000 seats: 10 sections x 50 rows x 100 seats.
    let mut layout = Vec::new();
    for s in 0..10 {
        for r in 1..=50 {
            layout.push(rr(&format!("S{s}"), &r.to_string(), 1, 100, "R"));
        }
    }
    let pol = policy(600, 1800, 4);
    let users: Vec<UserId> = (0..25_000).map(|i| user(&format!("user-{i}"))).collect();
    let mut m = SeatMap::new(&layout, pol, [9; 32]);
    let mut out = Vec::with_capacity(1 << 16);
    let choices: Vec<SeatChoice> = (0..25_000u32)
        .map(|i| {
            let (s, r, n) = (i / 2500, i / 50 % 50 + 1, i % 50 * 2 + 1);
            let seat = |n| SeatId {
                section: format!("S{s}").into(),
                row: r.to_string().into(),
                number: n,
            };
            SeatChoice::Exact(vec![seat(n), seat(n + 1)])
        })
        .collect();
    let mut ids = Vec::with_capacity(25_000);
    let mut el = std::time::Duration::ZERO;
    let rounds = 20;
    for round in 0..rounds {
        m = SeatMap::new(&layout, pol, [9; 32]);
        out.clear();
        ids.clear();
        let t = Instant::now();
        for (u, c) in users.iter().zip(&choices) {
            if let Ok(h) = m.hold(u, c, E, T0, &mut out) {
                ids.push(h.id);
            }
        }
        el += t.elapsed();
        assert_eq!(ids.len(), 25_000, "round {round}");
    }
    println!("exact hold of 2 seats: {:?}/op", el / (25_000 * rounds));
    if std::env::var_os("SEATS_PERF_EXACT_ONLY").is_some() {
        return;
    }
    if std::env::var_os("SEATS_PERF_BEST_ONLY").is_some() {
        let choice = SeatChoice::Best {
            count: nz(2),
            category: "R".into(),
        };
        let t = Instant::now();
        for _ in 0..20 {
            let mut m = SeatMap::new(&layout, pol, [9; 32]);
            out.clear();
            for u in &users[..20_000] {
                let _ = std::hint::black_box(m.hold(u, &choice, E, T0, &mut out));
            }
        }
        println!(
            "best of 2, 20 000 holds on 50 000 seats: {:?}/op",
            t.elapsed() / 400_000
        );
        return;
    }
    let t = Instant::now();
    for (i, id) in ids.iter().enumerate() {
        let _ = m.confirm(
            *id,
            if i % 2 == 0 { "order-a" } else { "order-b" },
            T0,
            &mut out,
        );
        if out.len() > 60_000 {
            out.clear();
        }
    }
    println!("confirm: {:?}/op", t.elapsed() / 25_000);
    let t = Instant::now();
    for i in 0..1000 {
        std::hint::black_box(m.counts(T0.plus_ms(i)));
    }
    println!("counts: {:?}/op", t.elapsed() / 1000);
    let t = Instant::now();
    for i in 0..1000 {
        std::hint::black_box(m.section_rows("S3", T0.plus_ms(i)));
    }
    println!("section_rows (5 000 seats): {:?}/op", t.elapsed() / 1000);

    for count in [2u32, 4] {
        let mut m = SeatMap::new(&layout, pol, [9; 32]);
        let choice = SeatChoice::Best {
            count: nz(count),
            category: "R".into(),
        };
        let n = 50_000 / count as usize;
        let t = Instant::now();
        let mut got = 0;
        for u in users.iter().cycle().take(n) {
            out.clear();
            if m.hold(u, &choice, E, T0, &mut out).is_ok() {
                got += 1;
            }
        }
        let el = t.elapsed();
        println!(
            "best of {count} until sold out (50 000 seats): {got} holds, {:?}/op, left {:?}",
            el / n as u32,
            m.counts(T0).total
        );
    }
}
