//! Tests of the waiting room: one unit test per rule, and a proptest that
//! runs the room against a naive reference model (a `Vec` line with O(n)
//! positions) and checks every journaled decision, then replays the journal.

use super::*;
use crate::config::{PrequeueOrder, QueueConfig};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use sha2::{Digest, Sha256};
use std::num::NonZeroU32;

const T0: Timestamp = Timestamp(1_800_000_000_000);
const SEED: [u8; 32] = [5; 32];
const KEY: [u8; 16] = [6; 16];

fn nz(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v.max(1)).unwrap_or(NonZeroU32::MIN)
}

fn cfg(capacity: u32, rate: u32) -> QueueConfig {
    QueueConfig {
        capacity: nz(capacity),
        admit_per_s: nz(rate),
        session_ttl_s: nz(600),
        idle_timeout_s: nz(120),
        max_waiting: nz(1_000_000),
        poll_budget_per_s: QueueConfig::default_poll_budget(nz(rate), nz(1_000_000)),
        identity: crate::config::Identity::Signed,
        prequeue: PrequeueOrder::Random,
    }
}

fn init(opens_at: Option<Timestamp>) -> RoomInit {
    RoomInit {
        event: EventId::new("e1").unwrap_or_else(|_| unreachable!()),
        incarnation: 1,
        seed: SEED,
        opens_at,
        created_at: T0,
        ticket_key: KEY,
    }
}

fn user(i: u64) -> UserId {
    UserId::new(&format!("user-{i:015}")).unwrap_or_else(|_| unreachable!())
}

fn room(c: &QueueConfig) -> WaitingRoom {
    WaitingRoom::new(c, init(None))
}

/// Join and return the ticket.
fn join(r: &mut WaitingRoom, i: u64, now: Timestamp) -> String {
    let mut out = vec![];
    match r.join(&user(i), now, &mut out) {
        Ok(j) => j.status.ticket,
        Err(e) => panic!("join {i}: {e:?}"),
    }
}

fn status(r: &WaitingRoom, t: &str, now: Timestamp) -> QueueStatus {
    match r.status(t, now) {
        Ok(s) => s,
        Err(e) => panic!("status {t}: {e:?}"),
    }
}

fn pos(r: &WaitingRoom, t: &str, now: Timestamp) -> Option<u64> {
    status(r, t, now).position
}

fn tick(r: &mut WaitingRoom, now: Timestamp) -> (RoomTick, Vec<QueueChange>) {
    let mut out = vec![];
    let t = r.tick(now, &mut out);
    (t, out)
}

#[test]
fn room_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<WaitingRoom>();
}

#[test]
fn join_gives_places_and_a_rejoin_keeps_its_place() {
    let mut r = room(&cfg(1, 1));
    let t: Vec<String> = (0..3).map(|i| join(&mut r, i, T0)).collect();
    assert!(t.iter().all(|t| t.len() == TICKET_LEN));
    for (i, t) in t.iter().enumerate() {
        let s = status(&r, t, T0);
        assert_eq!(s.state, TicketState::Waiting);
        assert_eq!(s.position, Some(i as u64 + 1));
        assert_eq!(s.waiting, 3);
        assert_eq!(s.user, user(i as u64));
        assert_eq!(&s.ticket, t);
    }
    let mut out = vec![];
    let again = r.join(&user(1), T0.plus_secs(5), &mut out).ok();
    assert!(out.is_empty(), "a rejoin changes nothing: {out:?}");
    let again = again.map(|j| (j.created, j.status.ticket, j.status.position));
    assert_eq!(again, Some((false, t[1].clone(), Some(2))));
    assert_eq!(r.waiting(T0), 3);
}

#[test]
fn leaving_from_the_middle_moves_everyone_behind() {
    let mut r = room(&cfg(1, 1));
    let t: Vec<String> = (0..5).map(|i| join(&mut r, i, T0)).collect();
    let mut out = vec![];
    assert_eq!(r.leave(&t[1], T0, &mut out), Ok(()));
    assert_eq!(out, vec![QueueChange::Left { uid: 1 }]);
    assert_eq!(pos(&r, &t[0], T0), Some(1));
    assert_eq!(pos(&r, &t[2], T0), Some(2));
    assert_eq!(pos(&r, &t[4], T0), Some(4));
    assert_eq!(status(&r, &t[1], T0).state, TicketState::Left);
    // Leaving again is a no-op.
    out.clear();
    assert_eq!(r.leave(&t[1], T0, &mut out), Ok(()));
    assert!(out.is_empty());
    // A user whose ticket ended gets a new one at the back.
    let j = r.join(&user(1), T0, &mut out).ok();
    assert_eq!(j.as_ref().map(|j| j.created), Some(true));
    let nt = j.map(|j| j.status.ticket).unwrap_or_default();
    assert_ne!(nt, t[1]);
    assert_eq!(pos(&r, &nt, T0), Some(5));
    assert_eq!(status(&r, &t[1], T0).state, TicketState::Left);
}

#[test]
fn full_refuses_new_users_but_not_rejoins() {
    let mut c = cfg(1, 1);
    c.max_waiting = nz(2);
    let mut r = room(&c);
    let a = join(&mut r, 0, T0);
    join(&mut r, 1, T0);
    let mut out = vec![];
    assert_eq!(
        r.join(&user(2), T0, &mut out).err(),
        Some(QueueRejection::Full)
    );
    assert!(out.is_empty());
    assert_eq!(r.join(&user(1), T0, &mut out).map(|j| j.created), Ok(false));
    r.leave(&a, T0, &mut out).ok();
    assert_eq!(r.join(&user(2), T0, &mut out).map(|j| j.created), Ok(true));
}

#[test]
fn forged_and_garbage_tickets_are_not_found() {
    let mut r = room(&cfg(1, 1));
    let t = join(&mut r, 0, T0);
    let other = WaitingRoom::new(
        &cfg(1, 1),
        RoomInit {
            ticket_key: [7; 16],
            ..init(None)
        },
    );
    let mut out = vec![];
    let mut flipped = t.clone().into_bytes();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap_or_default();
    let unminted = super::ticket::TicketCodec::new(&KEY).encode_string(1);
    for bad in [
        "",
        "nope",
        &"A".repeat(22),
        &flipped,
        &unminted,
        &format!("{t} "),
        "ü",
    ] {
        assert_eq!(
            r.status(bad, T0).err(),
            Some(QueueRejection::TicketNotFound),
            "{bad:?}"
        );
        assert_eq!(
            r.leave(bad, T0, &mut out).err(),
            Some(QueueRejection::TicketNotFound)
        );
        assert_eq!(
            r.complete(bad, T0, &mut out).err(),
            Some(QueueRejection::TicketNotFound)
        );
        assert!(!r.is_admitted(bad, T0));
    }
    assert_eq!(
        other.status(&t, T0).err(),
        Some(QueueRejection::TicketNotFound)
    );
    assert!(out.is_empty());
}

#[test]
fn admission_is_fifo_within_capacity_and_sessions_end() {
    let mut r = room(&cfg(2, 100));
    let t: Vec<String> = (0..4).map(|i| join(&mut r, i, T0)).collect();
    let (k, out) = tick(&mut r, T0);
    assert_eq!(k.admitted, 2);
    assert_eq!(
        out,
        vec![
            QueueChange::Admitted { uid: 0 },
            QueueChange::Admitted { uid: 1 }
        ]
    );
    let s = status(&r, &t[0], T0);
    assert_eq!(s.state, TicketState::Admitted);
    assert_eq!(
        s.admission,
        Some(Admission {
            admitted_at: T0,
            expires_at: T0.plus_secs(600)
        })
    );
    assert!(r.is_admitted(&t[0], T0));
    assert_eq!(pos(&r, &t[2], T0), Some(1));
    assert_eq!((r.admitted(T0), r.served(), r.waiting(T0)), (2, 2, 2));
    // Full: nobody else gets in.
    assert_eq!(tick(&mut r, T0.plus_ms(50)).0.admitted, 0);
    let mut out = vec![];
    assert_eq!(
        r.complete(&t[2], T0, &mut out),
        Err(QueueRejection::NotAdmitted)
    );
    assert_eq!(r.complete(&t[0], T0, &mut out), Ok(()));
    assert_eq!(
        r.complete(&t[0], T0, &mut out),
        Err(QueueRejection::NotAdmitted),
        "a second complete is refused, and journals nothing"
    );
    assert_eq!(out, vec![QueueChange::Completed { uid: 0 }]);
    assert_eq!(status(&r, &t[0], T0).state, TicketState::Left);
    assert_eq!(r.admitted(T0), 1);
    // Leaving while admitted frees the slot too.
    r.leave(&t[1], T0, &mut out).ok();
    assert_eq!(r.admitted(T0), 0);
    let (k, out) = tick(&mut r, T0.plus_ms(100));
    assert_eq!(k.admitted, 2);
    assert_eq!(
        out,
        vec![
            QueueChange::Admitted { uid: 2 },
            QueueChange::Admitted { uid: 3 }
        ]
    );
}

#[test]
fn a_session_is_over_at_its_expiry_before_any_sweep() {
    let mut c = cfg(1, 100);
    c.session_ttl_s = nz(10);
    let mut r = room(&c);
    let a = join(&mut r, 0, T0);
    let b = join(&mut r, 1, T0);
    tick(&mut r, T0);
    let end = T0.plus_secs(10);
    // b keeps polling so it stays present.
    status(&r, &b, end.minus_ms(1));
    assert!(r.is_admitted(&a, end.minus_ms(1)));
    assert_eq!(r.admitted(end.minus_ms(1)), 1);
    assert!(!r.is_admitted(&a, end));
    assert_eq!(r.admitted(end), 0);
    assert_eq!(status(&r, &a, end).state, TicketState::Expired);
    let (k, out) = tick(&mut r, end);
    assert_eq!((k.sessions_expired, k.admitted), (1, 1));
    assert_eq!(
        out,
        vec![
            QueueChange::SessionsExpired { uids: vec![0] },
            QueueChange::Admitted { uid: 1 }
        ]
    );
    assert_eq!(status(&r, &a, end).state, TicketState::Expired);
    // An ended session gets a new ticket on rejoin.
    let mut out = vec![];
    let j = r
        .join(&user(0), end, &mut out)
        .map(|j| (j.created, j.status.state));
    assert_eq!(j, Ok((true, TicketState::Waiting)));
}

#[test]
fn an_idle_user_expires_on_read_and_is_swept() {
    let mut r = room(&cfg(1, 1));
    let a = join(&mut r, 0, T0);
    let b = join(&mut r, 1, T0);
    let idle = T0.plus_secs(120);
    // One millisecond short of idle_timeout b is still in line (and present).
    assert_eq!(status(&r, &b, idle.minus_ms(1)).state, TicketState::Waiting);
    // Not heard from for exactly idle_timeout: gone for every read.
    assert_eq!(status(&r, &a, idle).state, TicketState::Expired);
    assert_eq!(
        status(&r, &a, idle.plus_ms(1)).state,
        TicketState::Expired,
        "no revival"
    );
    let (k, out) = tick(&mut r, idle);
    assert_eq!(k.idle_dropped, 1);
    assert_eq!(out[0], QueueChange::IdleDropped { uids: vec![0] });
    assert_eq!(status(&r, &b, idle).state, TicketState::Admitted);
    // A rejoin after expiry is a new ticket at the back.
    let mut out = vec![];
    let j = r.join(&user(0), idle, &mut out).map(|j| j.status.ticket);
    assert!(j.as_ref().is_ok_and(|t| *t != a));
}

#[test]
fn rejoin_and_status_count_as_presence() {
    let mut r = room(&cfg(1, 1));
    let a = join(&mut r, 0, T0);
    let mut out = vec![];
    r.pause(T0, &mut out);
    r.join(&user(0), T0.plus_secs(100), &mut out).ok();
    status(&r, &a, T0.plus_secs(200));
    assert_eq!(
        status(&r, &a, T0.plus_secs(319)).state,
        TicketState::Waiting
    );
    assert_eq!(tick(&mut r, T0.plus_secs(438)).0.idle_dropped, 0);
    assert_eq!(
        status(&r, &a, T0.plus_secs(439)).state,
        TicketState::Expired
    );
}

#[test]
fn an_idle_user_at_the_front_is_skipped_at_once() {
    let mut r = room(&cfg(1, 100));
    let n = 5000;
    let t: Vec<String> = (0..n).map(|i| join(&mut r, i, T0)).collect();
    let later = T0.plus_secs(120);
    for t in &t[2..] {
        status(&r, t, later.minus_ms(1));
    }
    // Park the sweep far from the front so only admission can see users 0, 1.
    r.set_sweep_cursor(3000);
    r.set_sweep_clock(later);
    let (k, out) = tick(&mut r, later);
    assert_eq!(k.admitted, 1);
    assert_eq!(
        out,
        vec![
            QueueChange::IdleDropped { uids: vec![0, 1] },
            QueueChange::Admitted { uid: 2 }
        ]
    );
    assert_eq!(pos(&r, &t[3], later), Some(1));
}

#[test]
fn the_sweep_makes_a_full_pass_within_a_quarter_of_the_idle_timeout() {
    let mut c = cfg(1, 1);
    c.idle_timeout_s = nz(4);
    // A budget that never binds for 50 000 (at 20 000/s the line's back
    // would be told ~30 s, and presence would follow that advice).
    c.poll_budget_per_s = nz(10_000_000);
    let mut r = room(&c);
    let mut out = vec![];
    r.pause(T0, &mut out);
    let n = 50_000u64;
    let t: Vec<String> = (0..n).map(|i| join(&mut r, i, T0)).collect();
    // Keep one in 100 present; the rest go idle at T0 + 4 s.
    let keep = |i: usize| i % 100 == 7;
    let mut now = T0;
    let mut dropped = 0;
    while now < T0.plus_ms(4000 + 1000 + 50) {
        now = now.plus_ms(50);
        for (i, t) in t.iter().enumerate() {
            if keep(i) && now.as_millis().is_multiple_of(1000) {
                status(&r, t, now);
            }
        }
        dropped += tick(&mut r, now).0.idle_dropped;
    }
    assert_eq!(dropped, n - n / 100);
    assert_eq!(r.waiting(now), n / 100);
}

#[test]
fn prequeue_is_unordered_then_drawn_verifiably_at_opening() {
    let opens = T0.plus_secs(60);
    let mut r = WaitingRoom::new(&cfg(1, 1), init(Some(opens)));
    assert_eq!(r.phase(T0), RoomPhase::Prequeue);
    assert_eq!(r.revealed_seed(), None);
    let want: [u8; 32] = Sha256::digest(SEED).into();
    assert_eq!(r.seed_sha256(), want);
    let t: Vec<String> = (0..200).map(|i| join(&mut r, i, T0.plus_ms(i))).collect();
    let s = status(&r, &t[5], T0.plus_secs(1));
    assert_eq!(
        (s.state, s.position, s.eta_s),
        (TicketState::Prequeue, None, None)
    );
    assert_eq!(s.waiting, 200);
    assert!((1000..=30_000).contains(&s.poll_after_ms));
    let mut out = vec![];
    r.leave(&t[7], T0, &mut out).ok();
    assert!(!r.needs_open(opens.minus_ms(1)));
    assert!(!r.open_if_due(opens.minus_ms(1), &mut out));
    assert!(r.needs_open(opens));
    // Everyone polls just before opening.
    for t in &t {
        r.status(t, opens.minus_ms(1)).ok();
    }
    out.clear();
    assert!(r.open_if_due(opens, &mut out));
    assert_eq!(
        out,
        vec![QueueChange::Opened {
            order: PrequeueOrder::Random
        }]
    );
    assert!(!r.needs_open(opens));
    assert_eq!(r.phase(opens), RoomPhase::Open);
    let seed = r.revealed_seed().unwrap_or_default();
    assert_eq!(seed, SEED);
    // Anyone with the seed and the tickets recomputes the order.
    let mut live: Vec<&String> = t
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 7)
        .map(|(_, t)| t)
        .collect();
    live.sort_by_key(|t| prequeue_order_key(&seed, t));
    for (i, t) in live.iter().enumerate() {
        assert_eq!(pos(&r, t, opens), Some(i as u64 + 1));
    }
    assert_ne!(live[0], &t[0], "not join order (for this seed)");
    // Later joins go to the back in join order.
    let late = join(&mut r, 1000, opens);
    assert_eq!(pos(&r, &late, opens), Some(200));
    // Admission follows the draw.
    let (_, out) = tick(&mut r, opens);
    let first = super::ticket::TicketCodec::new(&KEY).decode(live[0]);
    assert_eq!(
        out,
        vec![QueueChange::Admitted {
            uid: first.unwrap_or(u32::MAX)
        }]
    );
}

#[test]
fn fifo_prequeue_and_opening_on_join_or_tick() {
    let opens = T0.plus_secs(10);
    let mut c = cfg(1, 1);
    c.prequeue = PrequeueOrder::Fifo;
    let mut r = WaitingRoom::new(&c, init(Some(opens)));
    let t: Vec<String> = (0..10).map(|i| join(&mut r, i, T0)).collect();
    // The first join at or after opens_at opens the room first.
    let mut out = vec![];
    let late = r
        .join(&user(99), opens, &mut out)
        .map(|j| j.status.position);
    assert_eq!(late, Ok(Some(11)));
    assert_eq!(
        out[0],
        QueueChange::Opened {
            order: PrequeueOrder::Fifo
        }
    );
    for (i, t) in t.iter().enumerate() {
        assert_eq!(pos(&r, t, opens), Some(i as u64 + 1));
    }
    // A room whose opens_at is past at creation is open at once.
    let r2 = WaitingRoom::new(&c, init(Some(T0.minus_ms(1))));
    assert_eq!(r2.phase(T0), RoomPhase::Open);
    assert!(r2.revealed_seed().is_some());
    // Opening by tick.
    let mut r3 = WaitingRoom::new(&c, init(Some(opens)));
    join(&mut r3, 0, T0);
    assert!(tick(&mut r3, opens).0.opened);
}

#[test]
fn no_one_second_window_exceeds_the_rate() {
    for (rate, step) in [(10u32, 50u64), (10, 37), (3, 50), (250, 50), (250, 13)] {
        let mut r = room(&cfg(1_000_000, rate));
        let n = u64::from(rate) * 6 + 100;
        for i in 0..n {
            join(&mut r, i, T0);
        }
        let mut at = vec![];
        let mut now = T0;
        while now < T0.plus_secs(5) {
            let (_, out) = tick(&mut r, now);
            for c in out {
                if matches!(c, QueueChange::Admitted { .. }) {
                    at.push(now.as_millis());
                }
            }
            now = now.plus_ms(step);
        }
        let k = rate as usize;
        for i in 0..at.len().saturating_sub(k) {
            assert!(at[i + k] - at[i] >= 1000, "rate {rate} step {step}");
        }
        // Nearly the full rate is used.
        assert!(
            at.len() as u64 >= u64::from(rate) * 9 / 2,
            "rate {rate}: {}",
            at.len()
        );
    }
}

#[test]
fn eta_never_rises_while_rate_bound() {
    let rate = 20;
    let mut r = room(&cfg(1_000_000, rate));
    let t: Vec<String> = (0..3000).map(|i| join(&mut r, i, T0)).collect();
    assert_eq!(
        status(&r, &t[100], T0).eta_s,
        None,
        "unknown before 2 admissions"
    );
    let watched = [&t[60], &t[500], &t[2999]];
    let mut last = [u64::MAX; 3];
    let mut now = T0;
    let mut seen_some = false;
    while now < T0.plus_secs(100) {
        tick(&mut r, now);
        for (w, last) in watched.iter().zip(&mut last) {
            let s = status(&r, w, now);
            if let (Some(p), Some(e)) = (s.position, s.eta_s) {
                seen_some = true;
                assert!(e <= *last, "eta rose from {last} to {e} at position {p}");
                // One admission every 50 ms.
                assert_eq!(e, (p * 50).div_ceil(1000));
                *last = e;
            }
        }
        now = now.plus_ms(50);
    }
    assert!(seen_some);
}

#[test]
fn poll_advice_grows_with_distance_and_respects_presence() {
    let mut c = cfg(1, 1);
    c.idle_timeout_s = nz(30);
    let mut r = room(&c);
    let t: Vec<String> = (0..5000).map(|i| join(&mut r, i, T0)).collect();
    let p1 = status(&r, &t[0], T0).poll_after_ms;
    let p500 = status(&r, &t[499], T0).poll_after_ms;
    let p5000 = status(&r, &t[4999], T0).poll_after_ms;
    assert_eq!(p1, POLL_MIN_MS);
    assert_eq!(p500, 5000);
    assert_eq!(p5000, 10_000, "capped at idle_timeout / 3");
}

#[test]
fn pause_stops_admitting_but_not_joining() {
    let mut r = room(&cfg(10, 100));
    let a = join(&mut r, 0, T0);
    tick(&mut r, T0);
    join(&mut r, 1, T0);
    let mut out = vec![];
    r.pause(T0, &mut out);
    r.pause(T0, &mut out);
    assert_eq!(out, vec![QueueChange::Paused]);
    assert_eq!(r.phase(T0), RoomPhase::Paused);
    let b = join(&mut r, 2, T0);
    assert_eq!(tick(&mut r, T0.plus_secs(1)).0.admitted, 0);
    let s = status(&r, &b, T0.plus_secs(1));
    assert_eq!((s.position, s.eta_s), (Some(2), None));
    assert!(r.is_admitted(&a, T0.plus_secs(1)));
    out.clear();
    r.resume(T0.plus_secs(1), &mut out);
    r.resume(T0.plus_secs(1), &mut out);
    assert_eq!(out, vec![QueueChange::Resumed]);
    assert_eq!(tick(&mut r, T0.plus_secs(2)).0.admitted, 2);
}

#[test]
fn reconfigure_keeps_the_line_and_adopts_limits() {
    let mut r = room(&cfg(1, 100));
    let t: Vec<String> = (0..5).map(|i| join(&mut r, i, T0)).collect();
    tick(&mut r, T0);
    r.reconfigure(&cfg(3, 100), None);
    assert_eq!(pos(&r, &t[1], T0), Some(1));
    assert_eq!(tick(&mut r, T0.plus_ms(50)).0.admitted, 2);
    // Not yet open: the new opens_at is adopted.
    let mut p = WaitingRoom::new(&cfg(1, 1), init(Some(T0.plus_secs(100))));
    join(&mut p, 0, T0);
    p.reconfigure(&cfg(1, 1), Some(T0.plus_secs(5)));
    assert!(p.needs_open(T0.plus_secs(5)));
}

#[test]
fn restore_gives_fresh_presence_and_replay_reproduces_state() {
    let mut c = cfg(2, 5);
    c.idle_timeout_s = nz(10);
    let mut r = WaitingRoom::new(&c, init(Some(T0.plus_secs(1))));
    let mut journal = vec![];
    let mut out = vec![];
    for i in 0..20 {
        r.join(&user(i), T0, &mut out).ok();
    }
    journal.extend(out.drain(..).map(|c| (T0, c)));
    let snap = r.to_snapshot();
    let bytes = postcard::to_allocvec(&snap).unwrap_or_default();
    let back: Option<RoomSnapshot> = postcard::from_bytes(&bytes).ok();
    assert_eq!(back.as_ref(), Some(&snap));
    let mut now = T0;
    for k in 0..100 {
        now = now.plus_ms(97);
        r.tick(now, &mut out);
        if k % 10 == 0 {
            r.join(&user(100 + k), now, &mut out).ok();
        }
        journal.extend(out.drain(..).map(|c| (now, c)));
    }
    // Restore the early snapshot long after everyone went quiet.
    let late = T0.plus_secs(1000);
    let mut restored = WaitingRoom::from_snapshot(snap, &c, init(Some(T0.plus_secs(1))), late);
    let t = super::ticket::TicketCodec::new(&KEY).encode_string(3);
    assert_eq!(status(&restored, &t, late).state, TicketState::Prequeue);
    // Replay through a fresh room as well.
    let mut fresh = WaitingRoom::new(&c, init(Some(T0.plus_secs(1))));
    for (at, ch) in &journal {
        fresh.apply(ch, *at);
    }
    for (at, ch) in journal.iter().skip(20) {
        restored.apply(ch, *at);
    }
    // Users who joined after the snapshot are present as of the restore too.
    let t_late = super::ticket::TicketCodec::new(&KEY).encode_string(20);
    let s = status(&restored, &t_late, late.plus_secs(9));
    assert!(matches!(
        s.state,
        TicketState::Waiting | TicketState::Admitted
    ));
    let live = r.to_snapshot();
    let a = restored.to_snapshot();
    assert_eq!(a, live);
    assert_eq!(fresh.to_snapshot(), live);
}

#[test]
fn odd_inputs_never_panic() {
    let mut r = room(&cfg(1, 1));
    let mut out = vec![];
    join(&mut r, 0, T0);
    // Time going backwards.
    r.tick(T0.plus_secs(5), &mut out);
    r.tick(T0, &mut out);
    r.join(&user(1), Timestamp::ZERO, &mut out).ok();
    r.tick(Timestamp(u64::MAX), &mut out);
    r.status("AAAAAAAAAAAAAAAAAAAAAA", Timestamp(u64::MAX)).ok();
    // Changes that do not fit the state are ignored.
    for c in [
        QueueChange::Admitted { uid: 99 },
        QueueChange::Left { uid: u32::MAX },
        QueueChange::Completed { uid: 0 },
        QueueChange::IdleDropped {
            uids: vec![5, 0, 0],
        },
        QueueChange::SessionsExpired { uids: vec![7] },
        QueueChange::Joined {
            uid: 77,
            user: user(1),
        },
        QueueChange::Opened {
            order: PrequeueOrder::Fifo,
        },
    ] {
        r.apply(&c, T0);
    }
    // A damaged snapshot restores without panicking.
    let mut s = r.to_snapshot();
    s.states.push(200);
    s.user_lens.push(50);
    s.prequeue_order = vec![9, 9];
    s.prequeue_len = 2;
    s.sessions.push(SessionRecord {
        uid: 1000,
        admitted_at: T0,
        expires_at: T0,
    });
    let r2 = WaitingRoom::from_snapshot(s, &cfg(1, 1), init(None), T0);
    r2.status("x", T0).ok();
}

// ---- the reference model ---------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ms {
    Pre,
    Wait,
    Adm,
    Left,
    Done,
    Idle,
    Over,
}

#[derive(Clone, Debug)]
struct Mt {
    user: u64,
    st: Ms,
    seen: u64,
    adm: Option<Admission>,
    ticket: String,
}

#[derive(Debug)]
struct Model {
    cfg: QueueConfig,
    opens_at: Option<Timestamp>,
    t: Vec<Mt>,
    /// Waiting users in queue order.
    line: Vec<u32>,
    /// Pre-queue users (unordered).
    pre: Vec<u32>,
    opened: bool,
    paused: bool,
    tat_ns: u64,
    admissions: Vec<u64>,
    last_tick: u64,
}

impl Model {
    fn idle_ms(&self) -> u64 {
        u64::from(self.cfg.idle_timeout_s.get()) * 1000
    }

    fn idle(&self, uid: u32, now: u64) -> bool {
        now.saturating_sub(self.t[uid as usize].seen) >= self.idle_ms()
    }

    fn in_line(&self) -> u64 {
        (self.line.len() + self.pre.len()) as u64
    }

    fn latest(&self, u: u64) -> Option<u32> {
        self.t.iter().rposition(|m| m.user == u).map(|i| i as u32)
    }

    fn live_sessions(&self, now: u64) -> u64 {
        self.t
            .iter()
            .filter(|m| m.st == Ms::Adm && m.adm.is_some_and(|a| a.expires_at.as_millis() > now))
            .count() as u64
    }

    fn rate_blocked(&self, now: u64) -> bool {
        let rate = u64::from(self.cfg.admit_per_s.get());
        let in_window = self.admissions.iter().filter(|&&a| a + 1000 > now).count() as u64;
        let back = self.admissions.last().is_some_and(|&a| a > now);
        back || in_window >= rate || self.tat_ns > now * 1_000_000 + admission::BURST_NS
    }

    /// What a read at `now` says: state, position, admission.
    fn view(&self, uid: u32, now: u64) -> (TicketState, Option<u64>, Option<Admission>) {
        let m = &self.t[uid as usize];
        match m.st {
            Ms::Pre | Ms::Wait if self.idle(uid, now) => (TicketState::Expired, None, None),
            Ms::Pre => (TicketState::Prequeue, None, None),
            Ms::Wait => {
                let p = self
                    .line
                    .iter()
                    .position(|&u| u == uid)
                    .map(|p| p as u64 + 1);
                (TicketState::Waiting, p, None)
            }
            Ms::Adm => match m.adm {
                Some(a) if a.expires_at.as_millis() > now => (TicketState::Admitted, None, Some(a)),
                _ => (TicketState::Expired, None, None),
            },
            Ms::Left | Ms::Done => (TicketState::Left, None, None),
            Ms::Idle | Ms::Over => (TicketState::Expired, None, None),
        }
    }

    fn settle(&self, uid: u32, now: u64) -> Vec<QueueChange> {
        let m = &self.t[uid as usize];
        match m.st {
            Ms::Pre | Ms::Wait if self.idle(uid, now) => {
                vec![QueueChange::IdleDropped { uids: vec![uid] }]
            }
            Ms::Adm if m.adm.is_none_or(|a| a.expires_at.as_millis() <= now) => {
                vec![QueueChange::SessionsExpired { uids: vec![uid] }]
            }
            _ => vec![],
        }
    }

    fn end(&mut self, uid: u32, to: Ms) {
        self.line.retain(|&u| u != uid);
        self.pre.retain(|&u| u != uid);
        let m = &mut self.t[uid as usize];
        m.st = to;
        if to != Ms::Adm {
            m.adm = None;
        }
    }

    /// Apply a change the room journaled, checking that the room was allowed
    /// to make it.
    fn apply(&mut self, c: &QueueChange, now: u64, seed: &[u8; 32]) -> Result<(), TestCaseError> {
        match c {
            QueueChange::Joined { uid, user } => {
                prop_assert_eq!(*uid as usize, self.t.len());
                let u = user
                    .as_str()
                    .trim_start_matches("user-")
                    .parse::<u64>()
                    .unwrap_or(u64::MAX);
                let st = if self.opened { Ms::Wait } else { Ms::Pre };
                self.t.push(Mt {
                    user: u,
                    st,
                    seen: now,
                    adm: None,
                    ticket: String::new(),
                });
                if self.opened {
                    self.line.push(*uid);
                } else {
                    self.pre.push(*uid);
                }
            }
            QueueChange::Opened { order } => {
                prop_assert!(!self.opened);
                prop_assert!(self.opens_at.is_none_or(|o| now >= o.as_millis()));
                prop_assert_eq!(*order, self.cfg.prequeue);
                let mut pre = std::mem::take(&mut self.pre);
                match order {
                    PrequeueOrder::Fifo => pre.sort_unstable(),
                    PrequeueOrder::Random => pre.sort_by_key(|&u| {
                        (prequeue_order_key(seed, &self.t[u as usize].ticket), u)
                    }),
                }
                prop_assert!(self.line.is_empty());
                for &u in &pre {
                    self.t[u as usize].st = Ms::Wait;
                }
                self.line = pre;
                self.opened = true;
            }
            QueueChange::Admitted { uid } => {
                prop_assert!(self.opened && !self.paused);
                prop_assert_eq!(self.line.first(), Some(uid), "FIFO");
                prop_assert!(!self.idle(*uid, now), "admitted an idle user");
                prop_assert!(
                    self.live_sessions(now) < u64::from(self.cfg.capacity.get()),
                    "capacity"
                );
                prop_assert!(!self.rate_blocked(now), "rate");
                let ttl = u64::from(self.cfg.session_ttl_s.get());
                self.line.remove(0);
                let m = &mut self.t[*uid as usize];
                m.st = Ms::Adm;
                m.adm = Some(Admission {
                    admitted_at: Timestamp(now),
                    expires_at: Timestamp(now).plus_secs(ttl),
                });
                let t = admission::spacing_ns(self.cfg.admit_per_s.get());
                self.tat_ns = self.tat_ns.max(now * 1_000_000) + t;
                self.admissions.push(now);
            }
            QueueChange::Left { uid } => {
                let st = self.t[*uid as usize].st;
                prop_assert!(matches!(st, Ms::Pre | Ms::Wait | Ms::Adm));
                self.end(*uid, Ms::Left);
            }
            QueueChange::Completed { uid } => {
                prop_assert_eq!(self.t[*uid as usize].st, Ms::Adm);
                self.end(*uid, Ms::Done);
            }
            QueueChange::IdleDropped { uids } => {
                for &u in uids {
                    prop_assert!(matches!(self.t[u as usize].st, Ms::Pre | Ms::Wait));
                    prop_assert!(self.idle(u, now), "dropped a present user");
                    self.end(u, Ms::Idle);
                }
            }
            QueueChange::SessionsExpired { uids } => {
                for &u in uids {
                    let m = &self.t[u as usize];
                    prop_assert_eq!(m.st, Ms::Adm);
                    prop_assert!(m.adm.is_some_and(|a| a.expires_at.as_millis() <= now));
                    self.end(u, Ms::Over);
                }
            }
            QueueChange::Paused => {
                prop_assert!(!self.paused);
                self.paused = true;
            }
            QueueChange::Resumed => {
                prop_assert!(self.paused);
                self.paused = false;
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
enum Op {
    Join(u64),
    Status(usize),
    PollAll,
    Leave(usize),
    Complete(usize),
    Tick,
    Advance(u64),
    Pause,
    Resume,
    Snapshot,
    Garbage(String),
    Flip(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..24u64).prop_map(Op::Join),
        3 => any::<usize>().prop_map(Op::Status),
        2 => Just(Op::PollAll),
        1 => any::<usize>().prop_map(Op::Leave),
        1 => any::<usize>().prop_map(Op::Complete),
        5 => Just(Op::Tick),
        6 => prop_oneof![4 => 0..120u64, 2 => 0..1500u64, 1 => 0..12_000u64].prop_map(Op::Advance),
        1 => Just(Op::Pause),
        1 => Just(Op::Resume),
        1 => Just(Op::Snapshot),
        1 => "[A-Za-z0-9_=-]{0,24}|\\PC{0,30}".prop_map(Op::Garbage),
        1 => (any::<usize>(), 0..TICKET_LEN).prop_map(|(t, i)| Op::Flip(t, i)),
    ]
}

fn room_cfg() -> impl Strategy<Value = (QueueConfig, Option<u64>)> {
    (
        1..12u32,
        1..8u32,
        1..6u32,
        1..8u32,
        2..20u32,
        any::<bool>(),
        prop::option::of(0..5000u64),
    )
        .prop_map(|(cap, rate, ttl, idle, max, fifo, opens)| {
            let c = QueueConfig {
                capacity: nz(cap),
                admit_per_s: nz(rate),
                session_ttl_s: nz(ttl),
                idle_timeout_s: nz(idle),
                max_waiting: nz(max),
                poll_budget_per_s: QueueConfig::default_poll_budget(nz(rate), nz(max)),
                identity: crate::config::Identity::Signed,
                prequeue: if fifo {
                    PrequeueOrder::Fifo
                } else {
                    PrequeueOrder::Random
                },
            };
            (c, opens)
        })
}

struct Run {
    room: WaitingRoom,
    m: Model,
    init: RoomInit,
    now: u64,
    journal: Vec<(Timestamp, QueueChange)>,
    snap: Option<(RoomSnapshot, usize, Timestamp)>,
}

impl Run {
    fn ticket(&self, i: usize) -> Option<(u32, String)> {
        if self.m.t.is_empty() {
            return None;
        }
        let uid = (i % self.m.t.len()) as u32;
        Some((uid, self.m.t[uid as usize].ticket.clone()))
    }

    fn take(&mut self, out: Vec<QueueChange>) -> Result<(), TestCaseError> {
        for c in out {
            self.m.apply(&c, self.now, &SEED)?;
            self.journal.push((Timestamp(self.now), c));
        }
        Ok(())
    }

    fn expect_opening(&self) -> Vec<QueueChange> {
        if !self.m.opened && self.m.opens_at.is_none_or(|o| self.now >= o.as_millis()) {
            vec![QueueChange::Opened {
                order: self.m.cfg.prequeue,
            }]
        } else {
            vec![]
        }
    }

    fn check_status(&mut self, uid: u32, ticket: &str) -> Result<(), TestCaseError> {
        let now = Timestamp(self.now);
        let (state, position, admission) = self.m.view(uid, self.now);
        let s = self.room.status(ticket, now);
        prop_assert!(s.is_ok(), "status of a minted ticket: {:?}", s);
        let s = s.unwrap_or_else(|_| unreachable!());
        prop_assert_eq!(s.state, state);
        prop_assert_eq!(s.position, position);
        prop_assert_eq!(s.admission, admission);
        prop_assert_eq!(s.waiting, self.m.in_line());
        prop_assert_eq!(s.user, user(self.m.t[uid as usize].user));
        if matches!(state, TicketState::Waiting | TicketState::Prequeue) {
            prop_assert!(s.poll_after_ms <= (self.m.idle_ms() / 3).max(100));
            self.m.t[uid as usize].seen = self.m.t[uid as usize].seen.max(self.now);
        }
        if self.m.paused || state != TicketState::Waiting {
            prop_assert_eq!(s.eta_s, None);
        }
        Ok(())
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let now = Timestamp(self.now);
        let mut out = vec![];
        match op {
            Op::Join(u) => {
                let mut expect = self.expect_opening();
                // Opening changes no liveness, so the model can decide first.
                let latest = self.m.latest(*u);
                let live = latest.filter(|&uid| {
                    matches!(
                        self.m.view(uid, self.now).0,
                        TicketState::Prequeue | TicketState::Waiting | TicketState::Admitted
                    )
                });
                let r = self.room.join(&user(*u), now, &mut out);
                if let Some(uid) = live {
                    prop_assert_eq!(&out, &expect);
                    self.take(out)?;
                    let j = r.map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
                    prop_assert!(!j.created);
                    prop_assert_eq!(&j.status.ticket, &self.m.t[uid as usize].ticket);
                    let (state, position, _) = self.m.view(uid, self.now);
                    prop_assert_eq!((j.status.state, j.status.position), (state, position));
                    if state != TicketState::Admitted {
                        self.m.t[uid as usize].seen = self.now;
                    }
                    return Ok(());
                }
                if let Some(uid) = latest {
                    expect.extend(self.m.settle(uid, self.now));
                }
                let dropped = expect
                    .iter()
                    .any(|c| matches!(c, QueueChange::IdleDropped { .. }));
                let in_line = self.m.in_line() - u64::from(dropped);
                if in_line >= u64::from(self.m.cfg.max_waiting.get()) {
                    prop_assert_eq!(r.as_ref().err(), Some(&QueueRejection::Full));
                    prop_assert_eq!(&out, &expect);
                    return self.take(out);
                }
                expect.push(QueueChange::Joined {
                    uid: self.m.t.len() as u32,
                    user: user(*u),
                });
                prop_assert_eq!(&out, &expect);
                self.take(out)?;
                let j = r.map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
                prop_assert!(j.created);
                let uid = self.m.t.len() as u32 - 1;
                prop_assert_eq!(j.status.ticket.len(), TICKET_LEN);
                self.m.t[uid as usize].ticket = j.status.ticket.clone();
                let (state, position, _) = self.m.view(uid, self.now);
                prop_assert_eq!((j.status.state, j.status.position), (state, position));
                prop_assert_eq!(j.status.waiting, self.m.in_line());
            }
            Op::Status(i) => {
                if let Some((uid, t)) = self.ticket(*i) {
                    self.check_status(uid, &t)?;
                }
            }
            Op::PollAll => {
                let in_line: Vec<u32> = self.m.line.iter().chain(&self.m.pre).copied().collect();
                for uid in in_line {
                    let t = self.m.t[uid as usize].ticket.clone();
                    self.check_status(uid, &t)?;
                }
            }
            Op::Leave(i) => {
                if let Some((uid, t)) = self.ticket(*i) {
                    let expect = match self.m.view(uid, self.now).0 {
                        TicketState::Prequeue | TicketState::Waiting | TicketState::Admitted => {
                            vec![QueueChange::Left { uid }]
                        }
                        _ => self.m.settle(uid, self.now),
                    };
                    prop_assert_eq!(self.room.leave(&t, now, &mut out), Ok(()));
                    prop_assert_eq!(&out, &expect);
                    self.take(out)?;
                }
            }
            Op::Complete(i) => {
                if let Some((uid, t)) = self.ticket(*i) {
                    let (want, expect) =
                        match (self.m.view(uid, self.now).0, self.m.t[uid as usize].st) {
                            (TicketState::Admitted, _) => {
                                (Ok(()), vec![QueueChange::Completed { uid }])
                            }
                            // A second complete included: the contract's 409.
                            _ => (Err(QueueRejection::NotAdmitted), vec![]),
                        };
                    prop_assert_eq!(self.room.complete(&t, now, &mut out), want);
                    prop_assert_eq!(&out, &expect);
                    self.take(out)?;
                }
            }
            Op::Tick => {
                let k = self.room.tick(now, &mut out);
                let admitted = out
                    .iter()
                    .filter(|c| matches!(c, QueueChange::Admitted { .. }))
                    .count();
                prop_assert_eq!(k.admitted, admitted as u64);
                self.take(out)?;
                let n = self.now;
                prop_assert!(self.m.t.iter().all(
                    |m| m.st != Ms::Adm || m.adm.is_some_and(|a| a.expires_at.as_millis() > n)
                ));
                if n - self.m.last_tick >= (self.m.idle_ms() / 4).max(1) {
                    let m = &self.m;
                    let stale = m.line.iter().chain(&m.pre).find(|&&u| m.idle(u, n));
                    prop_assert_eq!(stale, None, "sweep missed an idle user");
                }
                self.m.last_tick = n;
                // Work-conserving: stopped only for capacity, rate or an empty line.
                if self.m.opened && !self.m.paused {
                    let cap = u64::from(self.m.cfg.capacity.get());
                    if self.m.live_sessions(n) < cap && !self.m.rate_blocked(n) {
                        prop_assert!(self.m.line.is_empty(), "admission stalled");
                    }
                }
                prop_assert_eq!(self.room.admitted(now), self.m.live_sessions(n));
            }
            Op::Advance(ms) => self.now += ms,
            Op::Pause => {
                self.room.pause(now, &mut out);
                let expect = if self.m.paused {
                    vec![]
                } else {
                    vec![QueueChange::Paused]
                };
                prop_assert_eq!(&out, &expect);
                self.take(out)?;
            }
            Op::Resume => {
                self.room.resume(now, &mut out);
                let expect = if self.m.paused {
                    vec![QueueChange::Resumed]
                } else {
                    vec![]
                };
                prop_assert_eq!(&out, &expect);
                self.take(out)?;
            }
            Op::Snapshot => {
                if self.snap.is_none() {
                    self.snap = Some((self.room.to_snapshot(), self.journal.len(), now));
                }
            }
            Op::Garbage(s) => {
                prop_assert_eq!(
                    self.room.status(s, now).err(),
                    Some(QueueRejection::TicketNotFound)
                );
                prop_assert_eq!(
                    self.room.leave(s, now, &mut out).err(),
                    Some(QueueRejection::TicketNotFound)
                );
                prop_assert_eq!(
                    self.room.complete(s, now, &mut out).err(),
                    Some(QueueRejection::TicketNotFound)
                );
                prop_assert!(!self.room.is_admitted(s, now));
                prop_assert!(out.is_empty());
            }
            Op::Flip(i, at) => {
                if let Some((_, t)) = self.ticket(*i) {
                    let mut b = t.into_bytes();
                    b[*at] = if b[*at] == b'Q' { b'R' } else { b'Q' };
                    let s = String::from_utf8(b).unwrap_or_default();
                    prop_assert_eq!(
                        self.room.status(&s, now).err(),
                        Some(QueueRejection::TicketNotFound)
                    );
                }
            }
        }
        prop_assert_eq!(self.room.waiting(now), self.m.in_line());
        prop_assert_eq!(
            self.room.phase(now) == RoomPhase::Paused,
            self.m.opened && self.m.paused
        );
        Ok(())
    }

    fn finish(&mut self, c: &QueueConfig) -> Result<(), TestCaseError> {
        // I7: no one-second window holds more than admit_per_s admissions.
        let a = &self.m.admissions;
        let k = self.m.cfg.admit_per_s.get() as usize;
        for i in 0..a.len().saturating_sub(k) {
            prop_assert!(a[i + k] - a[i] >= 1000, "window at {}", a[i]);
        }
        prop_assert_eq!(self.room.served(), a.len() as u64);
        // Exact positions for everyone in line.
        let line = self.m.line.clone();
        for uid in line {
            let t = self.m.t[uid as usize].ticket.clone();
            self.check_status(uid, &t)?;
        }
        // The pre-queue draw is recomputable from the revealed seed.
        prop_assert_eq!(self.room.revealed_seed(), self.m.opened.then_some(SEED));
        let live = self.room.to_snapshot();
        // Replay the whole journal through a fresh room.
        let mut fresh = WaitingRoom::new(c, self.init.clone());
        for (at, ch) in &self.journal {
            fresh.apply(ch, *at);
        }
        prop_assert_eq!(&fresh.to_snapshot(), &live);
        // Restore the mid-run snapshot and replay the rest.
        if let Some((snap, from, at)) = self.snap.take() {
            let bytes =
                postcard::to_allocvec(&snap).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let snap: RoomSnapshot =
                postcard::from_bytes(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut r = WaitingRoom::from_snapshot(snap, c, self.init.clone(), at);
            for (at, ch) in &self.journal[from..] {
                let bytes =
                    postcard::to_allocvec(ch).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let ch: QueueChange =
                    postcard::from_bytes(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
                r.apply(&ch, *at);
            }
            let a = r.to_snapshot();
            let b = live.clone();
            prop_assert_eq!(a, b);
        }
        Ok(())
    }
}

proptest! {
    // No failure persistence: the regressions file would land outside this
    // module's directory; a failure prints its minimal case instead.
    #![proptest_config(ProptestConfig {
        cases: 1000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn room_matches_the_reference_model(
        (c, opens) in room_cfg(),
        ops in prop::collection::vec(op(), 1..200),
    ) {
        let opens_at = opens.map(|o| T0.plus_ms(o));
        let init = init(opens_at);
        let mut room = WaitingRoom::new(&c, init.clone());
        // Sweep only what the time budget demands, so that idle users reach
        // the front and admission has to skip them.
        room.set_sweep_min(1);
        let m = Model {
            cfg: c.clone(),
            opens_at,
            t: vec![],
            line: vec![],
            pre: vec![],
            opened: opens_at.is_none_or(|o| o <= T0),
            paused: false,
            tat_ns: 0,
            admissions: vec![],
            last_tick: T0.as_millis(),
        };
        let mut run = Run { room, m, init, now: T0.as_millis(), journal: vec![], snap: None };
        for op in &ops {
            run.step(op)?;
        }
        run.finish(&c)?;
    }
}

/// Timing and memory probe (release build; run by hand):
/// `QUEUE_PROBE_USERS=10000000 cargo test --release -p boxoffice-engine --lib
/// queue::tests::perf_probe -- --ignored --nocapture`. User ids (20 bytes) are
/// made outside the timed loops; status/rejoin stride through the line like
/// the criterion bench (7 919 apart); times are the best of 5 rounds.
#[test]
#[ignore = "timing probe, run by hand in release"]
fn perf_probe() {
    use std::time::Instant;
    fn rss() -> u64 {
        std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|s| {
                s.split_whitespace()
                    .nth(1)
                    .and_then(|p| p.parse::<u64>().ok())
            })
            .map_or(0, |p| p * 4096)
    }
    fn best(rounds: usize, per_round: usize, mut f: impl FnMut(usize)) -> f64 {
        (0..rounds)
            .map(|r| {
                let start = Instant::now();
                f(r);
                start.elapsed().as_nanos() as f64 / per_round as f64
            })
            .fold(f64::MAX, f64::min)
    }
    let n: u64 = std::env::var("QUEUE_PROBE_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let mut c = cfg(2000, 200);
    c.max_waiting = nz(100_000_000);
    c.idle_timeout_s = nz(86_400);
    let before = rss();
    let mut r = room(&c);
    let mut out = Vec::with_capacity(4);
    let mut join_time = std::time::Duration::ZERO;
    let mut i = 0;
    while i < n {
        let batch: Vec<UserId> = (i..(i + 100_000).min(n)).map(user).collect();
        let start = Instant::now();
        for u in &batch {
            if r.join(u, T0, &mut out).is_err() {
                panic!("join");
            }
            out.clear();
        }
        join_time += start.elapsed();
        i += batch.len() as u64;
    }
    let join_ns = join_time.as_nanos() as f64 / n as f64;
    let grew = rss().saturating_sub(before);
    let k = 100_000usize;
    let codec = super::ticket::TicketCodec::new(&KEY);
    let spots: Vec<u64> = (0..k as u64).map(|j| (j * 7_919) % n).collect();
    let tickets: Vec<String> = spots
        .iter()
        .map(|&u| codec.encode_string(u as u32))
        .collect();
    let users: Vec<UserId> = spots.iter().map(|&u| user(u)).collect();
    let mut sum = 0u64;
    let status_ns = best(5, k, |_| {
        for t in &tickets {
            sum += r.status(t, T0).map_or(0, |s| s.position.unwrap_or(0));
        }
    });
    let hot_ns = best(5, k, |_| {
        for t in tickets.iter().take(100).cycle().take(k) {
            sum += r.status(t, T0).map_or(0, |s| s.waiting);
        }
    });
    let rejoin_ns = best(5, k, |_| {
        for u in &users {
            sum += r.join(u, T0, &mut out).map_or(0, |j| j.status.waiting);
        }
    });
    let leave_ns = best(1, 10_000, |_| {
        for t in tickets.iter().take(10_000) {
            r.leave(t, T0, &mut out).ok();
        }
    });
    out.clear();
    let mut now = T0;
    let tick_ns = best(1, 200, |_| {
        for _ in 0..200 {
            now = now.plus_ms(50);
            r.tick(now, &mut out);
            out.clear();
        }
    });
    println!(
        "users {n}: join {join_ns:.0} ns, status {status_ns:.0} ns (hot {hot_ns:.0} ns), \
         rejoin {rejoin_ns:.0} ns, leave {leave_ns:.0} ns, tick {:.1} us; \
         RSS growth {:.1} B/user, heap {:.1} B/user (check {sum})",
        tick_ns / 1000.0,
        grew as f64 / n as f64,
        r.heap_bytes() as f64 / n as f64
    );
}

#[test]
fn user_text_holds_any_user_id_and_nothing_longer() {
    let longest = "서".repeat(42) + "ab"; // 128 bytes
    assert_eq!(longest.len(), UserId::MAX_LEN);
    assert_eq!(
        UserText::new(&longest).map(|t| t.as_str().to_string()),
        Some(longest.clone())
    );
    assert_eq!(UserText::new("a").map(|t| t.as_str().len()), Some(1));
    assert!(UserText::new(&(longest + "c")).is_none());
}
