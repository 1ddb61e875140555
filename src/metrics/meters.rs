//! The counters labelled by an event or coupon id: one meter per live event
//! and coupon, made when it is first counted (until then it renders as
//! zeros), with a fixed atomic cell per label value. A write finds its meter under a shared (read) lock and bumps
//! a cell found by index: no label is hashed, no key or string is built,
//! and writes to different events never wait for each other. The meter is
//! dropped with its event or coupon, and so are its series.
//!
//! Each of these metrics has a fixed label set: every label value of every
//! live event and coupon shows on `/metrics`, at zero until counted (the
//! contract: every documented series present from start).
//!
//! The same typed label sets name the reasons of the server-wide labelled
//! counters ([`RefusedReason`], [`CutReason`]), so the values registered at
//! zero on start and the values counted cannot drift apart.

use boxoffice_engine::{CouponId, EventId};
use parking_lot::{RwLock, RwLockReadGuard};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};

/// Label values of one metric, in the order they are rendered.
pub trait Label: Copy + 'static {
    const ALL: &'static [Self];
    fn label(self) -> &'static str;
    fn index(self) -> usize;
}

macro_rules! labels {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name { $($(#[$vm])* $v),+ }

        impl Label for $name {
            const ALL: &'static [Self] = &[$($name::$v),+];
            fn label(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }
            fn index(self) -> usize {
                self as usize
            }
        }
    };
}

labels!(
    /// `kind` of `boxoffice_queue_joins_total`.
    JoinKind { New => "new", Rejoin => "rejoin" }
);
labels!(
    /// `outcome` of `boxoffice_seats_holds_total`.
    HoldOutcome {
        Held => "held",
        Replayed => "replayed",
        Unavailable => "unavailable",
        UnknownSeat => "unknown_seat",
        LimitExceeded => "limit_exceeded",
        PassRefused => "pass_refused",
        KeyReused => "key_reused",
        Other => "other",
    }
);
labels!(
    /// `step` of `boxoffice_seats_hold_steps_total`.
    HoldStep { Confirm => "confirm", Extend => "extend", Release => "release" }
);
labels!(
    /// `outcome` of `boxoffice_coupons_claims_total`.
    ClaimOutcome {
        Claimed => "claimed",
        Replayed => "replayed",
        AlreadyClaimed => "already_claimed",
        SoldOut => "sold_out",
        NotOpen => "not_open",
        KeyReused => "key_reused",
        Other => "other",
    }
);

labels!(
    /// `reason` of `boxoffice_http_connections_refused_total`.
    RefusedReason {
        /// The address is at `--max-connections-per-client`.
        PerClient => "per_client",
    }
);
labels!(
    /// `reason` of `boxoffice_http_sse_streams_cut_total`.
    CutReason {
        /// Refused at `--max-streams`.
        MaxStreams => "max_streams",
        /// Ended for a newer stream of the same ticket.
        Replaced => "replaced",
    }
);

/// One cell per value of `L`.
#[derive(Debug)]
pub struct Cells<L: Label, const N: usize>([AtomicU64; N], std::marker::PhantomData<L>);

impl<L: Label, const N: usize> Default for Cells<L, N> {
    fn default() -> Self {
        const { assert!(N > 0) };
        Cells(
            std::array::from_fn(|_| AtomicU64::new(0)),
            Default::default(),
        )
    }
}

impl<L: Label, const N: usize> Cells<L, N> {
    pub fn bump(&self, l: L) {
        // `N == L::ALL.len()` is checked in the tests; a wrong N cannot panic.
        if let Some(c) = self.0.get(l.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Each label with its count, in `L::ALL` order.
    pub fn each(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        L::ALL
            .iter()
            .zip(self.0.iter())
            .map(|(l, c)| (l.label(), c.load(Ordering::Relaxed)))
    }
}

#[derive(Debug, Default)]
pub struct EventMeter {
    pub joins: Cells<JoinKind, 2>,
    pub leaves: AtomicU64,
    pub completions: AtomicU64,
    pub holds: Cells<HoldOutcome, 8>,
    pub steps: Cells<HoldStep, 3>,
}

#[derive(Debug, Default)]
pub struct CouponMeter {
    pub claims: Cells<ClaimOutcome, 7>,
    pub returns: AtomicU64,
}

/// Meters by id.
#[derive(Debug)]
pub struct Meters<K, M> {
    by_id: RwLock<HashMap<K, M>>,
}

impl<K, M> Default for Meters<K, M> {
    fn default() -> Self {
        Meters {
            by_id: RwLock::new(HashMap::new()),
        }
    }
}

pub type EventMeters = Meters<EventId, EventMeter>;
pub type CouponMeters = Meters<CouponId, CouponMeter>;

impl<K: Eq + Hash + Clone, M: Default> Meters<K, M> {
    /// Runs `f` on `id`'s meter, made at zero if it has none yet.
    pub fn with(&self, id: &K, f: impl FnOnce(&M)) {
        if let Some(m) = self.by_id.read().get(id) {
            return f(m);
        }
        let mut w = self.by_id.write();
        f(w.entry(id.clone()).or_default())
    }

    pub fn forget(&self, id: &K) {
        self.by_id.write().remove(id);
    }

    /// Keeps only the meters whose id `live` says is still there.
    pub fn retain(&self, mut live: impl FnMut(&K) -> bool) {
        let gone = self.by_id.read().keys().any(|k| !live(k));
        if gone {
            self.by_id.write().retain(|k, _| live(k));
        }
    }

    /// The meters, for rendering (writers wait while it is held).
    pub fn read(&self) -> RwLockReadGuard<'_, HashMap<K, M>> {
        self.by_id.read()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sized<L: Label, const N: usize>(_: &Cells<L, N>) {
        assert_eq!(N, L::ALL.len());
        for (i, l) in L::ALL.iter().enumerate() {
            assert_eq!(l.index(), i, "{}", l.label());
        }
    }

    #[test]
    fn every_label_has_its_own_cell() {
        let e = EventMeter::default();
        sized(&e.joins);
        sized(&e.holds);
        sized(&e.steps);
        sized(&CouponMeter::default().claims);
        for l in HoldOutcome::ALL {
            e.holds.bump(*l);
            e.holds.bump(*l);
        }
        e.holds.bump(HoldOutcome::Held);
        let counts: Vec<_> = e.holds.each().collect();
        assert_eq!(counts[0], ("held", 3));
        assert!(counts[1..].iter().all(|(_, n)| *n == 2), "{counts:?}");
        assert_eq!(counts.len(), HoldOutcome::ALL.len());
    }

    #[test]
    fn meters_are_made_on_first_use_and_forgotten() {
        let m = EventMeters::default();
        let a = EventId::new("a").expect("id");
        let b = EventId::new("b").expect("id");
        m.with(&a, |e| e.joins.bump(JoinKind::New));
        m.with(&a, |e| e.joins.bump(JoinKind::New));
        m.with(&b, |e| {
            e.leaves.fetch_add(1, Ordering::Relaxed);
        });
        let joins = |id: &EventId| m.read().get(id).map(|e| e.joins.each().collect::<Vec<_>>());
        assert_eq!(joins(&a), Some(vec![("new", 2), ("rejoin", 0)]));
        m.retain(|k| k != &b);
        assert!(m.read().get(&b).is_none());
        m.forget(&a);
        assert_eq!(joins(&a), None);
    }
}
