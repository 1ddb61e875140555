//! Property test: the seat map against a naive reference model (a vector of
//! seats, each with its owning hold, and a list of holds with expiry evaluated
//! on the fly), over random exact and best holds, confirms, extends, releases,
//! ticks and time jumps across expiries and the slot retention.
//!
//! Checked after every step: outcomes, I1 (a hold is only granted on seats the
//! model has free; sold seats stay sold), counts per category, section rows,
//! every hold as `get` sees it, the per-user limit, best-available adjacency,
//! ranking and the no-lone-seat rule, and `in_use`. At the end, snapshots
//! taken at random points plus the later changes replay to the live map.

use super::tests::rr;
use super::*;
use crate::config::nz;
use proptest::prelude::*;
use std::collections::BTreeMap;

const TTL_S: u32 = 10;
const MAX_TTL_S: u32 = 25;
const CATS: [&str; 3] = ["X", "Y", "Nope"];
const USERS: u8 = 6;
/// Added to an issued id's epoch to forge the id of a lost hold (the runs
/// take far fewer epochs than this).
const LOST_EPOCH: u64 = 1 << 40;

/// Layout 0: small and crowded (23 seats, several ranges a row). Layout 1:
/// long rows (a run crosses 64-seat words of the free bit set).
fn layout(kind: u8) -> Vec<RowRange> {
    if kind == 1 {
        return vec![
            rr("A", "1", 1, 40, "X"),
            rr("A", "2", 1, 70, "X"),
            rr("A", "2", 71, 73, "Y"),
            rr("B", "1", 5, 7, "Y"),
        ];
    }
    vec![
        rr("A", "1", 1, 6, "X"),
        rr("A", "1", 7, 9, "Y"),
        rr("A", "2", 1, 5, "X"),
        rr("B", "1", 1, 4, "Y"),
        rr("B", "2", 10, 12, "X"),
        rr("B", "3", 1, 2, "X"),
    ]
}

/// Seat ids requests may name: the layout's, then a few that do not exist.
fn seat_names(layout: &[RowRange]) -> Vec<String> {
    let mut v: Vec<String> = layout
        .iter()
        .flat_map(|r| (r.first..=r.last).map(move |n| format!("{}-{}-{}", r.section, r.row, n)))
        .collect();
    v.extend(["A-1-10", "C-1-1", "B-2-9", "A-3-1", "A-1-41", "B-1-4"].map(String::from));
    v
}

#[derive(Clone, Debug)]
enum Op {
    Exact {
        user: u8,
        seats: Vec<u8>,
    },
    Best {
        user: u8,
        count: u32,
        cat: u8,
    },
    Confirm {
        pick: u8,
        order: u8,
    },
    Extend {
        pick: u8,
        ttl_s: u32,
    },
    Release {
        pick: u8,
    },
    Tick,
    Advance(u64),
    Checkpoint,
    /// A new writer epoch (a restart that lost nothing): later holds carry
    /// it, earlier ids keep working.
    NewEpoch,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..USERS, prop::collection::vec(any::<u8>(), 0..6))
            .prop_map(|(user, seats)| Op::Exact { user, seats }),
        5 => (0..USERS, 1..6u32, prop_oneof![4 => 0..2u8, 1 => Just(2u8)])
            .prop_map(|(user, count, cat)| Op::Best { user, count, cat }),
        3 => (any::<u8>(), 0..3u8).prop_map(|(pick, order)| Op::Confirm { pick, order }),
        2 => (any::<u8>(), prop_oneof![0..30u32, Just(u32::MAX)])
            .prop_map(|(pick, ttl_s)| Op::Extend { pick, ttl_s }),
        2 => any::<u8>().prop_map(|pick| Op::Release { pick }),
        2 => Just(Op::Tick),
        4 => prop_oneof![
            4 => 0..3_000u64,
            1 => Just(u64::from(TTL_S) * 1000),
            2 => 3_000..30_000u64,
            1 => Just(TERMINAL_RETENTION_MS),
            1 => TERMINAL_RETENTION_MS..TERMINAL_RETENTION_MS + 60_000,
        ]
        .prop_map(Op::Advance),
        1 => Just(Op::Checkpoint),
        1 => Just(Op::NewEpoch),
    ]
}

#[derive(Clone, Debug)]
struct MHold {
    user: u8,
    seats: Vec<usize>,
    created: u64,
    expires: u64,
    state: HoldState,
    ended: u64,
    order: Option<String>,
    /// Slot recycled: the id no longer resolves.
    gone: bool,
}

impl MHold {
    /// State as reads see it at `now`.
    fn state_at(&self, now: u64) -> HoldState {
        if self.state == HoldState::Held && now >= self.expires {
            HoldState::Expired
        } else {
            self.state
        }
    }
}

struct MSeat {
    name: String,
    section: String,
    range: usize,
    cat: usize,
}

struct Model {
    seats: Vec<MSeat>,
    /// Per range: (first dense index, len, category).
    ranges: Vec<(usize, usize, usize)>,
    cats: Vec<String>,
    /// Owning hold of each seat, if not released/expired (expiry aside).
    owner: Vec<Option<HoldId>>,
    holds: BTreeMap<HoldId, MHold>,
    issued: Vec<HoldId>,
    limit: u32,
}

impl Model {
    fn new(layout: &[RowRange], limit: u32) -> Self {
        let mut m = Model {
            seats: Vec::new(),
            ranges: Vec::new(),
            cats: Vec::new(),
            owner: Vec::new(),
            holds: BTreeMap::new(),
            issued: Vec::new(),
            limit,
        };
        for (ri, r) in layout.iter().enumerate() {
            let cat = match m.cats.iter().position(|c| *c == r.category) {
                Some(c) => c,
                None => {
                    m.cats.push(r.category.clone());
                    m.cats.len() - 1
                }
            };
            m.ranges
                .push((m.seats.len(), (r.last - r.first + 1) as usize, cat));
            for n in r.first..=r.last {
                m.seats.push(MSeat {
                    name: format!("{}-{}-{}", r.section, r.row, n),
                    section: r.section.clone(),
                    range: ri,
                    cat,
                });
                m.owner.push(None);
            }
        }
        m
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.seats.iter().position(|s| s.name == name)
    }

    /// `Some(true)` sold, `Some(false)` held, `None` free, at `now`.
    fn seat_state(&self, s: usize, now: u64) -> Option<bool> {
        let h = &self.holds[&self.owner[s]?];
        match h.state_at(now) {
            HoldState::Sold => Some(true),
            HoldState::Held => Some(false),
            _ => None,
        }
    }

    fn user_count(&self, user: u8, now: u64) -> u32 {
        self.holds
            .values()
            .filter(|h| h.user == user && !h.gone)
            .filter(|h| matches!(h.state_at(now), HoldState::Held | HoldState::Sold))
            .map(|h| h.seats.len() as u32)
            .sum()
    }

    /// What every write does first: due holds become expired.
    fn sweep(&mut self, now: u64) -> u64 {
        let mut n = 0;
        for (id, h) in self.holds.iter_mut() {
            if h.state == HoldState::Held && now >= h.expires {
                h.state = HoldState::Expired;
                h.ended = h.expires;
                n += 1;
                for &s in &h.seats {
                    if self.owner[s] == Some(*id) {
                        self.owner[s] = None;
                    }
                }
            }
        }
        n
    }

    fn counts(&self, now: u64) -> SeatCounts {
        let mut c = SeatCounts::default();
        for (i, s) in self.seats.iter().enumerate() {
            let e = c.categories.entry(self.cats[s.cat].clone()).or_default();
            let field = |k: &mut Counts| match self.seat_state(i, now) {
                None => k.free += 1,
                Some(false) => k.held += 1,
                Some(true) => k.sold += 1,
            };
            field(e);
            field(&mut c.total);
        }
        c
    }

    fn rows(&self, section: &str, now: u64) -> Vec<String> {
        let mut rows: Vec<String> = Vec::new();
        let mut last = usize::MAX;
        for (i, s) in self
            .seats
            .iter()
            .enumerate()
            .filter(|(_, s)| s.section == section)
        {
            if s.range != last {
                rows.push(String::new());
                last = s.range;
            }
            if let Some(r) = rows.last_mut() {
                r.push(match self.seat_state(i, now) {
                    None => 'F',
                    Some(false) => 'H',
                    Some(true) => 'S',
                });
            }
        }
        rows
    }

    /// Every block of `count` free seats in one range of `cat`:
    /// `(leaves_lone, rank, dist, start)`.
    fn best_candidates(
        &self,
        cat: usize,
        count: usize,
        now: u64,
    ) -> Vec<(bool, usize, u64, usize)> {
        let free = |s: usize| self.seat_state(s, now).is_none();
        let mut v = Vec::new();
        let ranges = self.ranges.iter().filter(|r| r.2 == cat);
        for (rank, &(base, len, _)) in ranges.enumerate() {
            for off in 0..len.saturating_sub(count - 1) {
                let start = base + off;
                if !(start..start + count).all(free) {
                    continue;
                }
                // A free neighbour whose other side is the range end or taken.
                let left = off >= 1 && free(start - 1) && (off == 1 || !free(start - 2));
                let end = off + count; // offset just past the block
                let right =
                    end < len && free(base + end) && (end + 1 == len || !free(base + end + 1));
                let dist = (2 * off as i64 + count as i64 - len as i64).unsigned_abs();
                v.push((left || right, rank, dist, start));
            }
        }
        v
    }

    fn add_hold(&mut self, id: HoldId, user: u8, seats: Vec<usize>, now: u64) {
        for &s in &seats {
            // I1: the map granted a seat the model has taken.
            assert!(
                self.seat_state(s, now).is_none(),
                "seat {} granted twice",
                self.seats[s].name
            );
            self.owner[s] = Some(id);
        }
        let prev = self.holds.insert(
            id,
            MHold {
                user,
                seats,
                created: now,
                expires: now + u64::from(TTL_S) * 1000,
                state: HoldState::Held,
                ended: 0,
                order: None,
                gone: false,
            },
        );
        assert!(
            !matches!(prev, Some(p) if !p.gone),
            "id {id} reused while readable"
        );
        self.issued.push(id);
        assert!(self.user_count(user, now) <= self.limit);
    }

    /// An issued id; or one never issued: an unknown slot, or (224..240) an
    /// issued slot and generation under an epoch no writer here used, as a
    /// writer whose changes were lost would have issued it.
    fn pick(&self, pick: u8) -> HoldId {
        if self.issued.is_empty() || pick >= 240 {
            return HoldId {
                index: u32::from(pick) + 1000,
                generation: 0,
                epoch: 1,
            };
        }
        let id = self.issued[pick as usize % self.issued.len()];
        if pick >= 224 {
            return HoldId {
                epoch: id.epoch + LOST_EPOCH,
                ..id
            };
        }
        id
    }

    /// The slot and generation of `id` were recycled: its hold is gone (an
    /// id of another epoch on them is stale too, as the map cannot know
    /// which epoch an old generation had).
    fn gone(&self, id: HoldId) -> bool {
        self.holds
            .iter()
            .any(|(k, h)| k.index == id.index && k.generation == id.generation && h.gone)
    }

    fn live(&self, id: HoldId) -> Option<&MHold> {
        self.holds.get(&id).filter(|h| !h.gone)
    }
}

struct Run {
    layout: Vec<RowRange>,
    policy: HoldPolicy,
    names: Vec<String>,
    map: SeatMap,
    model: Model,
    out: Vec<SeatChange>,
    now: u64,
    /// The writer epoch new holds carry.
    epoch: u64,
    checkpoints: Vec<(SeatSnapshot, usize)>,
}

impl Run {
    fn user(u: u8) -> UserId {
        UserId::new(&format!("user-{u}")).expect("user id")
    }

    fn step(&mut self, op: &Op) {
        let now = self.now;
        let t = Timestamp(now);
        let limit = self.model.limit;
        match op {
            Op::Exact { user, seats } => {
                let names: Vec<&str> = seats
                    .iter()
                    .map(|&i| self.names[i as usize % self.names.len()].as_str())
                    .collect();
                let ids: Vec<SeatId> = names
                    .iter()
                    .map(|s| SeatId::parse(s).expect("seat"))
                    .collect();
                let got = self.map.hold(
                    &Self::user(*user),
                    &SeatChoice::Exact(ids.clone()),
                    self.epoch,
                    t,
                    &mut self.out,
                );
                self.model.sweep(now);
                let current = self.model.user_count(*user, now);
                let idx: Vec<Option<usize>> = names.iter().map(|n| self.model.index(n)).collect();
                let mut unknown: Vec<SeatId> = Vec::new();
                for (i, s) in idx.iter().zip(&ids) {
                    if i.is_none() && !unknown.contains(s) {
                        unknown.push(s.clone());
                    }
                }
                let n = names.len() as u32;
                let want = if names.is_empty() {
                    Some(Err(SeatRefusal::InvalidRequest))
                } else if n > limit {
                    Some(Err(SeatRefusal::LimitExceeded {
                        limit,
                        current,
                        requested: n,
                    }))
                } else if !unknown.is_empty() {
                    Some(Err(SeatRefusal::UnknownSeat { seats: unknown }))
                } else if (1..names.len()).any(|i| names[..i].contains(&names[i])) {
                    Some(Err(SeatRefusal::InvalidRequest))
                } else if current + n > limit {
                    Some(Err(SeatRefusal::LimitExceeded {
                        limit,
                        current,
                        requested: n,
                    }))
                } else {
                    let taken: Vec<SeatId> = idx
                        .iter()
                        .zip(&ids)
                        .filter(|(i, _)| i.is_some_and(|i| self.model.seat_state(i, now).is_some()))
                        .map(|(_, s)| s.clone())
                        .collect();
                    (!taken.is_empty()).then_some(Err(SeatRefusal::Taken { seats: taken }))
                };
                match (want, got) {
                    (Some(w), g) => assert_eq!(g, w),
                    (None, Ok(info)) => {
                        assert_eq!(info.seats, ids);
                        assert_eq!(info.state, HoldState::Held);
                        assert_eq!(info.expires_at, t.plus_secs(u64::from(TTL_S)));
                        let seats = idx.into_iter().flatten().collect();
                        self.model.add_hold(info.id, *user, seats, now);
                    }
                    (None, g) => panic!("expected a hold, got {g:?}"),
                }
            }
            Op::Best { user, count, cat } => {
                let name = CATS[*cat as usize];
                let choice = SeatChoice::Best {
                    count: nz(*count),
                    category: name.into(),
                };
                let got = self
                    .map
                    .hold(&Self::user(*user), &choice, self.epoch, t, &mut self.out);
                self.model.sweep(now);
                let current = self.model.user_count(*user, now);
                let Some(c) = self.model.cats.iter().position(|c| c == name) else {
                    assert_eq!(got, Err(SeatRefusal::UnknownCategory));
                    return;
                };
                if current + count > limit {
                    assert_eq!(
                        got,
                        Err(SeatRefusal::LimitExceeded {
                            limit,
                            current,
                            requested: *count
                        })
                    );
                    return;
                }
                let mut cands = self.model.best_candidates(c, *count as usize, now);
                if cands.is_empty() {
                    assert_eq!(got, Err(SeatRefusal::NoAdjacent { count: *count }));
                    return;
                }
                let Ok(info) = got else {
                    panic!("expected a best hold, got {got:?} with {cands:?}");
                };
                let seats: Vec<usize> = info
                    .seats
                    .iter()
                    .map(|s| self.model.index(&s.to_string()).expect("known seat"))
                    .collect();
                // Adjacent, in one range, of the category.
                assert_eq!(seats.len(), *count as usize);
                assert!(seats.windows(2).all(|w| w[1] == w[0] + 1), "{seats:?}");
                let r = self.model.seats[seats[0]].range;
                assert!(seats.iter().all(|&s| self.model.seats[s].range == r));
                assert_eq!(self.model.seats[seats[0]].cat, c);
                // Among the best few of the preferred class: no lone seat
                // when a clean choice existed.
                cands.sort();
                let class = cands[0].0;
                let top: Vec<usize> = cands
                    .iter()
                    .filter(|k| k.0 == class)
                    .take(BEST_SPREAD)
                    .map(|k| k.3)
                    .collect();
                assert!(top.contains(&seats[0]), "picked {} of {cands:?}", seats[0]);
                self.model.add_hold(info.id, *user, seats, now);
            }
            Op::Confirm { pick, order } => {
                let id = self.model.pick(*pick);
                let order = format!("o{order}");
                let got = self.map.confirm(id, &order, t, &mut self.out);
                self.model.sweep(now);
                match self.model.live(id).map(|h| h.state) {
                    None if self.model.gone(id) => {
                        assert_eq!(got, Err(SeatRefusal::Expired))
                    }
                    None => assert_eq!(got, Err(SeatRefusal::NotFound)),
                    Some(HoldState::Held | HoldState::Sold) => {
                        let h = self.model.holds.get_mut(&id).expect("live hold");
                        h.state = HoldState::Sold;
                        h.order.get_or_insert(order);
                        let Ok(info) = got else {
                            panic!("expected sold, got {got:?}");
                        };
                        assert_eq!(info.order, h.order);
                    }
                    Some(_) => assert_eq!(got, Err(SeatRefusal::Expired)),
                }
            }
            Op::Extend { pick, ttl_s } => {
                let id = self.model.pick(*pick);
                let got = self.map.extend(id, *ttl_s, t, &mut self.out);
                self.model.sweep(now);
                match self.model.live(id) {
                    None if self.model.gone(id) => {
                        assert_eq!(got, Err(SeatRefusal::NotHeld))
                    }
                    None => assert_eq!(got, Err(SeatRefusal::NotFound)),
                    Some(h) if h.state == HoldState::Sold => {
                        assert_eq!(got, Err(SeatRefusal::Sold))
                    }
                    Some(h) if h.state != HoldState::Held => {
                        assert_eq!(got, Err(SeatRefusal::NotHeld))
                    }
                    Some(h) => {
                        let max = h.created + u64::from(MAX_TTL_S) * 1000;
                        // An extend never shortens: less than the time left keeps it.
                        let new = now.saturating_add(u64::from(*ttl_s) * 1000).max(h.expires);
                        if new > max {
                            assert_eq!(
                                got,
                                Err(SeatRefusal::TooLong {
                                    max_expires_at: Timestamp(max)
                                })
                            );
                        } else {
                            let Ok(info) = got else {
                                panic!("expected extended, got {got:?}");
                            };
                            assert_eq!(info.expires_at, Timestamp(new));
                            if let Some(h) = self.model.holds.get_mut(&id) {
                                h.expires = new;
                            }
                        }
                    }
                }
            }
            Op::Release { pick } => {
                let id = self.model.pick(*pick);
                let got = self.map.release(id, t, &mut self.out);
                self.model.sweep(now);
                match self.model.live(id).map(|h| h.state) {
                    None if self.model.gone(id) => {
                        assert_eq!(got, Ok(Released::AlreadyGone))
                    }
                    None => assert_eq!(got, Err(SeatRefusal::NotFound)),
                    Some(HoldState::Held) => {
                        assert_eq!(got, Ok(Released::Now));
                        let h = self.model.holds.get_mut(&id).expect("live hold");
                        h.state = HoldState::Released;
                        h.ended = now;
                        for &s in &h.seats {
                            self.model.owner[s] = None;
                        }
                    }
                    Some(HoldState::Sold) => assert_eq!(got, Err(SeatRefusal::Sold)),
                    Some(_) => assert_eq!(got, Ok(Released::AlreadyGone)),
                }
            }
            Op::Tick => {
                let got = self.map.tick(t, &mut self.out);
                assert_eq!(got, self.model.sweep(now));
                for h in self.model.holds.values_mut() {
                    if h.state.is_terminal() && h.ended + TERMINAL_RETENTION_MS <= now {
                        h.gone = true;
                    }
                }
            }
            Op::Advance(ms) => self.now += ms,
            Op::NewEpoch => self.epoch += 1,
            Op::Checkpoint => {
                if self.checkpoints.len() < 3 {
                    self.checkpoints
                        .push((self.map.to_snapshot(), self.out.len()));
                }
            }
        }
        self.check(self.now);
    }

    fn check(&self, now: u64) {
        let t = Timestamp(now);
        assert_eq!(self.map.counts(t), self.model.counts(now));
        for section in ["A", "B"] {
            let rows: Vec<String> = self
                .map
                .section_rows(section, t)
                .expect("section")
                .into_iter()
                .map(|r| r.status)
                .collect();
            assert_eq!(rows, self.model.rows(section, now), "section {section}");
        }
        for (id, h) in &self.model.holds {
            let got = self.map.get(*id, t);
            if h.gone {
                assert_eq!(got, None);
                continue;
            }
            let info = got.unwrap_or_else(|| panic!("hold {id} missing"));
            assert_eq!(info.state, h.state_at(now), "hold {id}");
            assert_eq!(info.expires_at, Timestamp(h.expires));
            assert_eq!(info.created_at, Timestamp(h.created));
            assert_eq!(info.order, h.order);
            let names: Vec<String> = info.seats.iter().map(|s| s.to_string()).collect();
            let want: Vec<String> = h
                .seats
                .iter()
                .map(|&s| self.model.seats[s].name.clone())
                .collect();
            assert_eq!(names, want);
        }
        for u in 0..USERS {
            assert!(self.model.user_count(u, now) <= self.model.limit);
        }
        let used = (0..self.model.seats.len()).any(|s| self.model.seat_state(s, now).is_some());
        assert_eq!(self.map.in_use(t), used);
    }

    fn check_replays(&self) {
        for (snap, from) in &self.checkpoints {
            let mut replica = SeatMap::try_from_snapshot(snap.clone(), &self.layout, self.policy)
                .expect("own snapshot");
            for c in &self.out[*from..] {
                replica
                    .apply(c, Timestamp(self.now))
                    .unwrap_or_else(|e| panic!("replay of {c:?}: {e}"));
            }
            assert_eq!(replica.to_snapshot(), self.map.to_snapshot());
            assert_eq!(
                replica.counts(Timestamp(self.now)),
                self.map.counts(Timestamp(self.now))
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn seat_map_matches_model(
        limit in 1..6u32,
        seed in any::<[u8; 32]>(),
        ops in prop::collection::vec(op(), 1..100),
        kind in 0..2u8,
    ) {
        let layout = layout(kind);
        let policy = HoldPolicy {
            ttl_s: nz(TTL_S),
            max_ttl_s: nz(MAX_TTL_S),
            max_seats_per_user: nz(limit),
        };
        let map = SeatMap::new(&layout, policy, seed);
        let mut run = Run {
            names: seat_names(&layout),
            model: Model::new(&layout, limit),
            checkpoints: vec![(map.to_snapshot(), 0)],
            map,
            layout,
            policy,
            out: Vec::new(),
            now: 1_700_000_000_000,
            epoch: 1,
        };
        for op in &ops {
            run.step(op);
        }
        run.checkpoints.push((run.map.to_snapshot(), run.out.len()));
        run.check_replays();
    }
}
