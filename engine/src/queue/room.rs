//! [`WaitingRoom`]: the state machine that ties tickets, the line, presence,
//! the pre-queue draw and admission together. See the module docs in
//! `queue/mod.rs` for the rules.
//!
//! Invariants: ties together what the queue modules own: I3 (FIFO, the
//! line and the pre-queue draw), I7 (capacity and rate, admission), the
//! session half of I4, and I8 (a ticket names one place; only its holder
//! reads or ends it).

use super::admission::{RateGate, Sessions};
use super::advice;
use super::line::Line;
use super::prequeue::random_order;
use super::ticket::TicketCodec;
use super::users::{st, Users};
use super::{
    Admission, JoinOutcome, QueueChange, QueueRejection, QueueStatus, RoomInit, RoomPhase,
    RoomSnapshot, RoomTick, SessionRecord, StatusReport, TicketState, UserText, POLL_MAX_MS,
    POLL_MIN_MS, SWEEP_MIN,
};
use crate::config::{PrequeueOrder, QueueConfig};
use crate::ids::{EventId, UserId};
use crate::keys;
use crate::time::Timestamp;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::fmt;

/// Slot ↔ uid maps of a random pre-queue draw (only the first `len` uids).
#[derive(Clone, Default)]
struct Draw {
    slot_to_uid: Vec<u32>,
    uid_to_slot: Vec<u32>,
}

impl Draw {
    /// `None` unless `slot_to_uid` is a permutation of `0..len`.
    fn new(slot_to_uid: Vec<u32>) -> Option<Draw> {
        let mut uid_to_slot = vec![u32::MAX; slot_to_uid.len()];
        for (slot, &uid) in slot_to_uid.iter().enumerate() {
            let s = uid_to_slot.get_mut(uid as usize)?;
            if *s != u32::MAX {
                return None;
            }
            *s = slot as u32;
        }
        Some(Draw {
            slot_to_uid,
            uid_to_slot,
        })
    }
}

/// A ticket as a read sees it at `now` (idle users and ended sessions are
/// reported as expired before any sweep journals it).
struct View {
    state: TicketState,
    position: Option<u64>,
    admission: Option<Admission>,
}

/// What a read reports of a ticket, beside its ticket and user.
struct Fields {
    state: TicketState,
    position: Option<u64>,
    waiting: u64,
    eta_s: Option<u64>,
    poll_after_ms: u64,
    admission: Option<Admission>,
}

/// The waiting room of one event.
pub struct WaitingRoom {
    cfg: QueueConfig,
    event: EventId,
    incarnation: u64,
    seed: [u8; 32],
    seed_sha256: [u8; 32],
    opens_at: Option<Timestamp>,
    tickets: TicketCodec,
    users: Users,
    line: Line,
    draw: Option<Draw>,
    /// Tickets minted before opening (meaningful once opened).
    prequeue_len: u32,
    opened: bool,
    paused: bool,
    prequeue_live: u64,
    sessions: Sessions,
    rate: RateGate,
    served: u64,
    /// Most users in line at once so far (derived from the journal).
    peak_in_line: u64,
    // Soft state (not journaled, not in snapshots).
    sweep_next: u32,
    sweep_at: Timestamp,
    /// Presence deadline given to users replayed in after a restore:
    /// `apply(Joined)` records `max(at + idle, presence_floor)` so a long
    /// outage drops nobody.
    presence_floor: u64,
    /// The user-id hash `join` computed for the uid it is about to journal,
    /// so `apply` need not hash again (checked against the uid; replay hashes).
    join_hash: Option<(u32, u32)>,
    /// Fewest tickets a sweep checks ([`SWEEP_MIN`]; lowered in tests so the
    /// front-skip path is exercised on small rooms).
    sweep_min: u64,
}

impl fmt::Debug for WaitingRoom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitingRoom")
            .field("event", &self.event)
            .field("incarnation", &self.incarnation)
            .field("opened", &self.opened)
            .field("paused", &self.paused)
            .field("tickets", &self.users.len())
            .field("prequeue", &self.prequeue_live)
            .field("waiting", &self.line.live())
            .field("sessions", &self.sessions.iter().count())
            .field("served", &self.served)
            .finish_non_exhaustive()
    }
}

/// Key of the user-id hash index: secret (from the ticket key), unlike the
/// seed, which is published after opening.
fn index_key(init: &RoomInit) -> [u8; 16] {
    keys::derive16(&init.ticket_key, keys::label::USER_INDEX, &init.seed)
}

impl WaitingRoom {
    pub fn new(cfg: &QueueConfig, init: RoomInit) -> Self {
        let opened = init.opens_at.is_none_or(|t| t <= init.created_at);
        WaitingRoom {
            cfg: cfg.clone(),
            seed_sha256: Sha256::digest(init.seed).into(),
            tickets: TicketCodec::new(&init.ticket_key),
            users: Users::new(index_key(&init)),
            event: init.event,
            incarnation: init.incarnation,
            seed: init.seed,
            opens_at: init.opens_at,
            line: Line::default(),
            draw: None,
            prequeue_len: 0,
            opened,
            paused: false,
            prequeue_live: 0,
            sessions: Sessions::default(),
            rate: RateGate::default(),
            served: 0,
            peak_in_line: 0,
            sweep_next: 0,
            sweep_at: init.created_at,
            sweep_min: SWEEP_MIN,
            join_hash: None,
            presence_floor: 0,
        }
    }

    /// The event was replaced while nothing was held or sold: keep the line
    /// and the sessions, adopt the new limits. A room not yet open adopts the
    /// new `opens_at` (and opens at the next `open_if_due`/`join`/`tick` if it
    /// is due); an open room stays open. Not journaled here: the engine
    /// journals the replacement and replays it through this method.
    pub fn reconfigure(&mut self, cfg: &QueueConfig, opens_at: Option<Timestamp>) {
        self.cfg = cfg.clone();
        if !self.opened {
            self.opens_at = opens_at;
        }
    }

    // ---- the journal ------------------------------------------------------

    /// Apply one journaled change. The only place journaled state changes;
    /// changes that do not fit the current state are ignored (never a panic).
    pub fn apply(&mut self, change: &QueueChange, at: Timestamp) {
        match change {
            QueueChange::Joined { uid, user } => self.apply_joined(*uid, user, at),
            QueueChange::Opened { order } => self.apply_opened(*order),
            QueueChange::Admitted { uid } => self.apply_admitted(*uid, at),
            QueueChange::Left { uid } => {
                if matches!(
                    self.users.state(*uid),
                    Some(st::PREQUEUE | st::WAITING | st::ADMITTED)
                ) {
                    self.end(*uid, st::LEFT);
                }
            }
            QueueChange::Completed { uid } => {
                if self.users.state(*uid) == Some(st::ADMITTED) {
                    self.end(*uid, st::COMPLETED);
                }
            }
            QueueChange::IdleDropped { uids } => {
                for &uid in uids {
                    if matches!(self.users.state(uid), Some(st::PREQUEUE | st::WAITING)) {
                        self.end(uid, st::IDLE);
                    }
                }
            }
            QueueChange::SessionsExpired { uids } => {
                for &uid in uids {
                    if self.users.state(uid) == Some(st::ADMITTED) {
                        self.end(uid, st::SESSION_END);
                    }
                }
            }
            QueueChange::Paused => self.paused = true,
            QueueChange::Resumed => {
                self.paused = false;
                // The pause gap says nothing about the admission rate.
                self.rate.clear_slots();
            }
        }
    }

    fn apply_joined(&mut self, uid: u32, user: &UserId, at: Timestamp) {
        if uid != self.users.len() {
            return;
        }
        let state = if self.opened {
            st::WAITING
        } else {
            st::PREQUEUE
        };
        let bytes = user.as_str().as_bytes();
        let hash = match self.join_hash.take() {
            Some((u, h)) if u == uid => h,
            _ => self.users.hash(bytes),
        };
        if self
            .users
            .push(
                bytes,
                Some(hash),
                state,
                at.as_millis()
                    .saturating_add(self.idle_ms())
                    .max(self.presence_floor),
            )
            .is_none()
        {
            return;
        }
        if self.opened {
            // Joins after opening: slot == uid (uids >= prequeue_len).
            self.line.ensure(uid);
            self.line.insert(uid);
        } else {
            self.prequeue_live += 1;
        }
        self.peak_in_line = self.peak_in_line.max(self.in_line());
    }

    fn apply_opened(&mut self, order: PrequeueOrder) {
        if self.opened {
            return;
        }
        let p = self.users.len();
        self.prequeue_len = p;
        self.draw = match order {
            PrequeueOrder::Random if p > 1 => Draw::new(random_order(&self.seed, &self.tickets, p)),
            _ => None,
        };
        let mut words = vec![0u64; (p as usize).div_ceil(64)];
        for uid in 0..p {
            if self.users.state(uid) == Some(st::PREQUEUE) {
                self.users.set_state(uid, st::WAITING);
                let slot = self.slot_of(uid) as usize;
                if let Some(w) = words.get_mut(slot / 64) {
                    *w |= 1 << (slot % 64);
                }
            }
        }
        self.line = Line::from_words(words);
        self.prequeue_live = 0;
        self.opened = true;
    }

    fn apply_admitted(&mut self, uid: u32, at: Timestamp) {
        if self.users.state(uid) != Some(st::WAITING) {
            return;
        }
        self.line.remove(self.slot_of(uid));
        self.users.set_state(uid, st::ADMITTED);
        let ttl_s = u64::from(self.cfg.session_ttl_s.get());
        self.sessions.insert(
            uid,
            Admission {
                admitted_at: at,
                expires_at: at.plus_secs(ttl_s),
            },
        );
        self.served += 1;
        self.rate.record(at.as_millis(), self.cfg.admit_per_s.get());
    }

    /// End a live ticket with final state `to`.
    fn end(&mut self, uid: u32, to: u8) {
        match self.users.state(uid) {
            Some(st::PREQUEUE) => self.prequeue_live = self.prequeue_live.saturating_sub(1),
            Some(st::WAITING) => {
                self.line.remove(self.slot_of(uid));
            }
            Some(st::ADMITTED) => self.sessions.remove(uid),
            _ => return,
        }
        self.users.set_state(uid, to);
    }

    fn record(&mut self, change: QueueChange, now: Timestamp, out: &mut Vec<QueueChange>) {
        self.apply(&change, now);
        out.push(change);
    }

    // ---- lookups ----------------------------------------------------------

    #[inline]
    fn slot_of(&self, uid: u32) -> u32 {
        match &self.draw {
            Some(d) if uid < self.prequeue_len => {
                d.uid_to_slot.get(uid as usize).copied().unwrap_or(uid)
            }
            _ => uid,
        }
    }

    #[inline]
    fn uid_at(&self, slot: u32) -> u32 {
        match &self.draw {
            Some(d) if slot < self.prequeue_len => {
                d.slot_to_uid.get(slot as usize).copied().unwrap_or(slot)
            }
            _ => slot,
        }
    }

    #[inline]
    fn idle_ms(&self) -> u64 {
        u64::from(self.cfg.idle_timeout_s.get()) * 1000
    }

    /// Past its presence deadline at `now` (see [`advice`]).
    #[inline]
    fn is_idle(&self, uid: u32, now: Timestamp) -> bool {
        now.as_millis() >= self.users.due(uid)
    }

    #[inline]
    fn budget(&self) -> u32 {
        self.cfg.poll_budget_per_s.get()
    }

    /// The cap on the unbudgeted advice that keeps a short line's presence
    /// rule "heard from within `idle_timeout`".
    #[inline]
    fn presence_cap(&self) -> u64 {
        (self.idle_ms() / 3).max(100)
    }

    /// Live users in line (pre-queue or waiting).
    #[inline]
    fn in_line(&self) -> u64 {
        self.prequeue_live + self.line.live()
    }

    /// The user a ticket of this room names (a join's idempotency record).
    pub fn uid_of(&self, ticket: &str) -> Option<u32> {
        self.decode(ticket).ok().map(|(uid, _)| uid)
    }

    /// The status of `uid`'s ticket (a join replayed by its key).
    pub fn status_of(&self, uid: u32, now: Timestamp) -> Result<QueueStatus, QueueRejection> {
        self.status(&self.tickets.encode_string(uid), now)
    }

    fn user_id(&self, uid: u32) -> Option<UserId> {
        let bytes = self.users.bytes(uid)?;
        UserId::new(std::str::from_utf8(bytes).ok()?).ok()
    }

    fn view(&self, uid: u32, raw: u8, now: Timestamp) -> View {
        let (state, position, admission) = match raw {
            st::PREQUEUE | st::WAITING if self.is_idle(uid, now) => {
                (TicketState::Expired, None, None)
            }
            st::PREQUEUE => (TicketState::Prequeue, None, None),
            st::WAITING => {
                let pos = self.line.rank(self.slot_of(uid)) + 1;
                (TicketState::Waiting, Some(pos), None)
            }
            st::ADMITTED => match self.sessions.get(uid) {
                Some(a) if a.expires_at > now => (TicketState::Admitted, None, Some(*a)),
                _ => (TicketState::Expired, None, None),
            },
            st::LEFT | st::COMPLETED => (TicketState::Left, None, None),
            _ => (TicketState::Expired, None, None),
        };
        View {
            state,
            position,
            admission,
        }
    }

    fn eta_s(&self, position: u64) -> Option<u64> {
        if self.paused || !self.opened {
            return None;
        }
        self.rate.eta_s(position)
    }

    fn poll_after_ms(&self, uid: u32, v: &View, eta_s: Option<u64>, now: Timestamp) -> u64 {
        match v.state {
            TicketState::Waiting => advice::waiting(
                v.position.unwrap_or(1),
                self.in_line(),
                eta_s,
                self.budget(),
                self.presence_cap(),
            ),
            TicketState::Prequeue => advice::prequeue(
                self.opens_at.map_or(0, |t| t.ms_since(now)),
                self.in_line(),
                uid,
                self.budget(),
                self.presence_cap(),
            ),
            TicketState::Admitted => v
                .admission
                .map_or(POLL_MIN_MS, |a| a.expires_at.ms_since(now))
                .clamp(POLL_MIN_MS, POLL_MAX_MS),
            TicketState::Expired | TicketState::Left => POLL_MAX_MS,
        }
    }

    /// The status of `uid` as `v` says, with its advice; for a user in line
    /// the read counts as presence, with the deadline that advice implies.
    fn report(
        &self,
        uid: u32,
        ticket: String,
        user: UserId,
        v: View,
        now: Timestamp,
    ) -> QueueStatus {
        let f = self.fields(uid, &v, now);
        QueueStatus {
            poll_after_ms: f.poll_after_ms,
            ticket,
            user,
            state: f.state,
            position: f.position,
            waiting: f.waiting,
            eta_s: f.eta_s,
            admission: f.admission,
        }
    }

    /// [`WaitingRoom::report`]'s fields: the advice, and the presence the
    /// read records.
    fn fields(&self, uid: u32, v: &View, now: Timestamp) -> Fields {
        let eta_s = v.position.and_then(|p| self.eta_s(p));
        let poll_after_ms = self.poll_after_ms(uid, v, eta_s, now);
        if matches!(v.state, TicketState::Prequeue | TicketState::Waiting) {
            self.users.touch(
                uid,
                advice::deadline(now.as_millis(), poll_after_ms, self.idle_ms()),
            );
        }
        Fields {
            state: v.state,
            position: v.position,
            waiting: self.in_line(),
            eta_s,
            poll_after_ms,
            admission: v.admission,
        }
    }

    /// Journal what a read at `now` already reported: an idle user dropped,
    /// or an admitted session over.
    fn settle(&mut self, uid: u32, now: Timestamp, out: &mut Vec<QueueChange>) {
        match self.users.state(uid) {
            Some(st::PREQUEUE | st::WAITING) if self.is_idle(uid, now) => {
                self.record(QueueChange::IdleDropped { uids: vec![uid] }, now, out);
            }
            Some(st::ADMITTED) if self.sessions.get(uid).is_none_or(|a| a.expires_at <= now) => {
                self.record(QueueChange::SessionsExpired { uids: vec![uid] }, now, out);
            }
            _ => {}
        }
    }

    fn decode(&self, ticket: &str) -> Result<(u32, u8), QueueRejection> {
        let uid = self
            .tickets
            .decode(ticket)
            .ok_or(QueueRejection::TicketNotFound)?;
        let raw = self
            .users
            .state(uid)
            .ok_or(QueueRejection::TicketNotFound)?;
        Ok((uid, raw))
    }

    // ---- operations -------------------------------------------------------

    /// Join the line (or get one's live ticket back: same ticket, same place).
    pub fn join(
        &mut self,
        user: &UserId,
        now: Timestamp,
        out: &mut Vec<QueueChange>,
    ) -> Result<JoinOutcome, QueueRejection> {
        self.open_if_due(now, out);
        let hash = self.users.hash(user.as_str().as_bytes());
        if let Some(uid) = self.users.find(user.as_str().as_bytes(), hash) {
            let raw = self.users.state(uid).unwrap_or(st::LEFT);
            let v = self.view(uid, raw, now);
            match v.state {
                TicketState::Prequeue | TicketState::Waiting | TicketState::Admitted => {
                    let status =
                        self.report(uid, self.tickets.encode_string(uid), user.clone(), v, now);
                    return Ok(JoinOutcome {
                        created: false,
                        status,
                    });
                }
                TicketState::Expired | TicketState::Left => self.settle(uid, now, out),
            }
        }
        if self.in_line() >= u64::from(self.cfg.max_waiting.get()) || self.users.len() == u32::MAX {
            return Err(QueueRejection::Full);
        }
        let uid = self.users.len();
        self.join_hash = Some((uid, hash));
        self.record(
            QueueChange::Joined {
                uid,
                user: user.clone(),
            },
            now,
            out,
        );
        let raw = self.users.state(uid).unwrap_or(st::LEFT);
        let v = self.view(uid, raw, now);
        let status = self.report(uid, self.tickets.encode_string(uid), user.clone(), v, now);
        Ok(JoinOutcome {
            created: true,
            status,
        })
    }

    /// The status of a ticket; counts as presence for a user in line.
    pub fn status(&self, ticket: &str, now: Timestamp) -> Result<QueueStatus, QueueRejection> {
        let (uid, raw) = self.decode(ticket)?;
        let user = self.user_id(uid).ok_or(QueueRejection::TicketNotFound)?;
        let v = self.view(uid, raw, now);
        // A ticket that decodes has exactly one spelling: the input.
        Ok(self.report(uid, ticket.to_owned(), user, v, now))
    }

    /// [`WaitingRoom::status`] without allocating: the same report (and the
    /// same presence it records), the user id copied into a buffer.
    pub fn status_report(
        &self,
        ticket: &str,
        now: Timestamp,
    ) -> Result<StatusReport, QueueRejection> {
        let (uid, raw) = self.decode(ticket)?;
        let user = self
            .users
            .bytes(uid)
            .and_then(|b| std::str::from_utf8(b).ok())
            // The same ids `user_id` accepts.
            .filter(|s| UserId::is_valid(s))
            .and_then(UserText::new)
            .ok_or(QueueRejection::TicketNotFound)?;
        let v = self.view(uid, raw, now);
        let f = self.fields(uid, &v, now);
        Ok(StatusReport {
            user,
            state: f.state,
            position: f.position,
            waiting: f.waiting,
            eta_s: f.eta_s,
            poll_after_ms: f.poll_after_ms,
            admission: f.admission,
        })
    }

    /// Leave the line, or give up an admitted session (the slot frees at
    /// once). Leaving an ended ticket is a no-op.
    pub fn leave(
        &mut self,
        ticket: &str,
        now: Timestamp,
        out: &mut Vec<QueueChange>,
    ) -> Result<(), QueueRejection> {
        let (uid, raw) = self.decode(ticket)?;
        match self.view(uid, raw, now).state {
            TicketState::Prequeue | TicketState::Waiting | TicketState::Admitted => {
                self.record(QueueChange::Left { uid }, now, out);
            }
            TicketState::Expired | TicketState::Left => self.settle(uid, now, out),
        }
        Ok(())
    }

    /// The purchase is over: end the admitted session and free its slot. A
    /// retry after success is a no-op; any other ticket not admitted at `now`
    /// is [`QueueRejection::NotAdmitted`].
    pub fn complete(
        &mut self,
        ticket: &str,
        now: Timestamp,
        out: &mut Vec<QueueChange>,
    ) -> Result<(), QueueRejection> {
        let (uid, raw) = self.decode(ticket)?;
        match self.view(uid, raw, now).state {
            TicketState::Admitted => {
                self.record(QueueChange::Completed { uid }, now, out);
                Ok(())
            }
            // A second `complete` is refused like any other ticket that is
            // not admitted (the contract's 409), so a caller learns its
            // retry found the session already over.
            _ => Err(QueueRejection::NotAdmitted),
        }
    }

    /// Is the pre-queue due to open at `now` (a read, for the engine to
    /// decide whether to take the write lock)?
    pub fn needs_open(&self, now: Timestamp) -> bool {
        !self.opened && self.opens_at.is_none_or(|t| now >= t)
    }

    /// Open the pre-queue if due: order it (journaled as one change).
    pub fn open_if_due(&mut self, now: Timestamp, out: &mut Vec<QueueChange>) -> bool {
        if !self.needs_open(now) {
            return false;
        }
        let order = self.cfg.prequeue;
        self.record(QueueChange::Opened { order }, now, out);
        true
    }

    /// Drive time: open if due, end sessions that ran out, sweep part of the
    /// line for idle users, admit in queue order within capacity and rate.
    pub fn tick(&mut self, now: Timestamp, out: &mut Vec<QueueChange>) -> RoomTick {
        let mut t = RoomTick {
            opened: self.open_if_due(now, out),
            ..RoomTick::default()
        };
        let due = self.sessions.due(now);
        if !due.is_empty() {
            t.sessions_expired = due.len() as u64;
            self.record(QueueChange::SessionsExpired { uids: due }, now, out);
        }
        t.idle_dropped += self.sweep(now, out);
        if self.opened && !self.paused {
            self.admit(now, out, &mut t);
        }
        t
    }

    /// Budgeted idle sweep: checks `ceil(tickets × elapsed / (idle_timeout / 4))`
    /// tickets (at least [`SWEEP_MIN`], at most all), so a full pass takes at
    /// most `idle_timeout / 4` of time.
    fn sweep(&mut self, now: Timestamp, out: &mut Vec<QueueChange>) -> u64 {
        let n = u64::from(self.users.len());
        let elapsed = now.ms_since(self.sweep_at);
        if now > self.sweep_at {
            self.sweep_at = now;
        }
        if n == 0 {
            return 0;
        }
        let quarter = (self.idle_ms() / 4).max(1);
        let want = (u128::from(n) * u128::from(elapsed)).div_ceil(u128::from(quarter));
        let budget = u64::try_from(want)
            .unwrap_or(u64::MAX)
            .max(self.sweep_min)
            .min(n);
        let mut uid = if u64::from(self.sweep_next) < n {
            self.sweep_next
        } else {
            0
        };
        let mut drops = Vec::new();
        for _ in 0..budget {
            if matches!(self.users.state(uid), Some(st::PREQUEUE | st::WAITING))
                && self.is_idle(uid, now)
            {
                drops.push(uid);
            }
            uid += 1;
            if u64::from(uid) >= n {
                uid = 0;
            }
        }
        self.sweep_next = uid;
        let dropped = drops.len() as u64;
        if dropped > 0 {
            self.record(QueueChange::IdleDropped { uids: drops }, now, out);
        }
        dropped
    }

    fn admit(&mut self, now: Timestamp, out: &mut Vec<QueueChange>, t: &mut RoomTick) {
        let cap = u64::from(self.cfg.capacity.get());
        let rate = self.cfg.admit_per_s.get();
        let mut live = self.sessions.live(now);
        let mut from = self.line.head_slot();
        while live < cap && self.rate.allows(now.as_millis(), rate) {
            let mut drops = Vec::new();
            let mut pick = None;
            while let Some(slot) = self.line.next_live(from) {
                from = u64::from(slot) + 1;
                let uid = self.uid_at(slot);
                if self.users.state(uid) != Some(st::WAITING) {
                    continue;
                }
                if self.is_idle(uid, now) {
                    // Skipped at once: nobody waits behind an idle user.
                    drops.push(uid);
                } else {
                    pick = Some(uid);
                    break;
                }
            }
            if !drops.is_empty() {
                t.idle_dropped += drops.len() as u64;
                self.record(QueueChange::IdleDropped { uids: drops }, now, out);
            }
            let Some(uid) = pick else { break };
            self.record(QueueChange::Admitted { uid }, now, out);
            t.admitted += 1;
            live += 1;
        }
        self.line.advance_head();
    }

    /// Stop admitting (joining goes on). No-op if already paused.
    pub fn pause(&mut self, now: Timestamp, out: &mut Vec<QueueChange>) {
        if !self.paused {
            self.record(QueueChange::Paused, now, out);
        }
    }

    /// Restart admitting. No-op unless paused.
    pub fn resume(&mut self, now: Timestamp, out: &mut Vec<QueueChange>) {
        if self.paused {
            self.record(QueueChange::Resumed, now, out);
        }
    }

    /// `Prequeue` until opened (even if due but not yet opened), then
    /// `Paused` or `Open`.
    pub fn phase(&self, _now: Timestamp) -> RoomPhase {
        if !self.opened {
            RoomPhase::Prequeue
        } else if self.paused {
            RoomPhase::Paused
        } else {
            RoomPhase::Open
        }
    }

    /// Live users in line (pre-queue or waiting; idle users count until the
    /// sweep or the front drops them).
    pub fn waiting(&self, _now: Timestamp) -> u64 {
        self.in_line()
    }

    /// Admitted sessions not over at `now`.
    pub fn admitted(&self, now: Timestamp) -> u64 {
        self.sessions.live(now)
    }

    /// Admissions so far.
    pub fn served(&self) -> u64 {
        self.served
    }

    /// SHA-256 of the pre-queue seed (public from the start).
    pub fn seed_sha256(&self) -> [u8; 32] {
        self.seed_sha256
    }

    /// The pre-queue seed, once the room has opened.
    pub fn revealed_seed(&self) -> Option<[u8; 32]> {
        self.opened.then_some(self.seed)
    }

    /// Admitted, and the session not over at `now`.
    pub fn is_admitted(&self, ticket: &str, now: Timestamp) -> bool {
        match self.decode(ticket) {
            Ok((uid, st::ADMITTED)) => self.sessions.get(uid).is_some_and(|a| a.expires_at > now),
            _ => false,
        }
    }

    /// Give every user presence at `now`, and users replayed in later too.
    /// For recovery: [`WaitingRoom::from_snapshot`] does this itself; call it
    /// after rebuilding a room by replaying a journal into
    /// [`WaitingRoom::new`], so that time spent down drops nobody.
    pub fn refresh_presence(&mut self, now: Timestamp) {
        let longest = advice::bound(self.peak_in_line, self.budget(), self.presence_cap());
        let due = advice::deadline(now.as_millis(), longest, self.idle_ms());
        self.presence_floor = self.presence_floor.max(due);
        self.users.set_all_due(due);
    }

    /// Approximate heap bytes held by the room (for metrics and benchmarks).
    pub fn heap_bytes(&self) -> usize {
        let draw = self.draw.as_ref().map_or(0, |d| {
            d.slot_to_uid.capacity() * 4 + d.uid_to_slot.capacity() * 4
        });
        self.users.heap_bytes() + self.line.heap_bytes() + draw
    }

    #[cfg(test)]
    pub(super) fn set_sweep_cursor(&mut self, uid: u32) {
        self.sweep_next = uid;
    }

    #[cfg(test)]
    pub(super) fn set_sweep_min(&mut self, min: u64) {
        self.sweep_min = min;
    }

    #[cfg(test)]
    pub(super) fn set_sweep_clock(&mut self, at: Timestamp) {
        self.sweep_at = at;
    }

    // ---- snapshots --------------------------------------------------------

    pub fn to_snapshot(&self) -> RoomSnapshot {
        let n = self.users.len();
        let mut user_lens = Vec::with_capacity(n as usize);
        let mut user_bytes = Vec::new();
        let mut states = Vec::with_capacity(n as usize);
        for uid in 0..n {
            // Every uid below `len` has its bytes and state, and user ids are
            // at most 128 bytes, so the length fits a byte; a snapshot that
            // silently dropped a user would restore another room.
            let b = self
                .users
                .bytes(uid)
                .expect("every minted uid has its user id");
            let len = u8::try_from(b.len()).expect("user ids are at most 128 bytes");
            user_lens.push(len);
            user_bytes.extend_from_slice(b);
            states.push(self.users.state(uid).expect("every minted uid has a state"));
        }
        RoomSnapshot {
            opened: self.opened,
            paused: self.paused,
            prequeue_len: if self.opened { self.prequeue_len } else { 0 },
            prequeue_order: self
                .draw
                .as_ref()
                .map(|d| d.slot_to_uid.clone())
                .unwrap_or_default(),
            user_lens,
            user_bytes,
            states,
            sessions: self
                .sessions
                .iter()
                .map(|(uid, a)| SessionRecord {
                    uid,
                    admitted_at: a.admitted_at,
                    expires_at: a.expires_at,
                })
                .collect(),
            served: self.served,
            tat_ns: self.rate.tat_ns,
            slot_ns: self.rate.slots.iter().copied().collect(),
            recent_ms: self.rate.recent.iter().copied().collect(),
            peak_in_line: self.peak_in_line,
        }
    }

    /// Restore a room. Every live user in line gets presence at `now` (a
    /// crash must not drop anyone). A damaged snapshot never panics: entries
    /// that do not fit are dropped or ended.
    pub fn from_snapshot(
        snap: RoomSnapshot,
        cfg: &QueueConfig,
        init: RoomInit,
        now: Timestamp,
    ) -> Self {
        let mut room = WaitingRoom::new(cfg, init);
        room.opened = snap.opened;
        room.paused = snap.paused;
        let now_ms = now.as_millis();
        let mut off = 0usize;
        for (&len, &raw) in snap.user_lens.iter().zip(&snap.states) {
            let end = off + usize::from(len);
            let Some(bytes) = snap.user_bytes.get(off..end) else {
                break;
            };
            off = end;
            let valid = std::str::from_utf8(bytes)
                .ok()
                .is_some_and(|s| UserId::new(s).is_ok());
            let state = match raw {
                _ if !valid || raw > st::MAX => st::LEFT,
                st::WAITING if !room.opened => st::PREQUEUE,
                st::ADMITTED if !room.opened => st::SESSION_END,
                st::PREQUEUE if room.opened => st::WAITING,
                s => s,
            };
            let hash = valid.then(|| room.users.hash(bytes));
            if room.users.push(bytes, hash, state, now_ms).is_none() {
                break;
            }
        }
        let n = room.users.len();
        if room.opened {
            room.prequeue_len = snap.prequeue_len.min(n);
            if !snap.prequeue_order.is_empty()
                && snap.prequeue_order.len() == room.prequeue_len as usize
            {
                room.draw = Draw::new(snap.prequeue_order);
            }
            let mut words = vec![0u64; (n as usize).div_ceil(64)];
            for uid in 0..n {
                if room.users.state(uid) == Some(st::WAITING) {
                    let slot = room.slot_of(uid) as usize;
                    if let Some(w) = words.get_mut(slot / 64) {
                        *w |= 1 << (slot % 64);
                    }
                }
            }
            room.line = Line::from_words(words);
        } else {
            room.prequeue_live = (0..n)
                .filter(|&u| room.users.state(u) == Some(st::PREQUEUE))
                .count() as u64;
        }
        for s in &snap.sessions {
            if room.users.state(s.uid) == Some(st::ADMITTED) {
                room.sessions.insert(
                    s.uid,
                    Admission {
                        admitted_at: s.admitted_at,
                        expires_at: s.expires_at,
                    },
                );
            }
        }
        for uid in 0..n {
            if room.users.state(uid) == Some(st::ADMITTED) && room.sessions.get(uid).is_none() {
                room.users.set_state(uid, st::SESSION_END);
            }
        }
        room.served = snap.served;
        room.peak_in_line = snap.peak_in_line.max(room.in_line());
        let mut recent = snap.recent_ms;
        recent.sort_unstable();
        room.rate = RateGate {
            tat_ns: snap.tat_ns,
            recent: VecDeque::from(recent),
            slots: VecDeque::from(snap.slot_ns),
        };
        room.refresh_presence(now);
        room.sweep_at = now;
        room
    }
}
