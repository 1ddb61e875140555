//! The waiting room through the engine: join, status, leave, complete, and
//! the pass check of a hold.
//!
//! Invariants: FIFO admission (I3) and capacity (I7) live in
//! [`crate::queue`]; here a pass is checked under the same shard lock as the
//! hold it allows, so a session that ends in between cannot slip a hold
//! through (I8).

use super::events::{event_phase, Phase};
use super::{Engine, Keyed, PassInvalid, Receipt, Rejection};
use crate::config::Identity;
use crate::idempotency::{IdemOutcome, IdemScope, SERVICE_CALLER};
use crate::ids::{EventId, IdempotencyKey, UserId};
use crate::journal::Change;
use crate::passes::{self, PassClaims};
use crate::queue::{Admission, QueueStatus, StatusReport, TicketState, WaitingRoom};
use crate::shard::EventState;
use crate::time::Timestamp;
use crate::user_token::UserToken;

/// A ticket's status plus, when admitted, its signed pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketView {
    pub event: EventId,
    pub status: QueueStatus,
    pub pass: Option<String>,
    pub pass_expires_at: Option<Timestamp>,
}

/// [`TicketView`] without its heap parts ([`Engine::status_report`]): the
/// event and ticket are the caller's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketReport {
    pub status: StatusReport,
    pub pass: Option<String>,
    pub pass_expires_at: Option<Timestamp>,
}

/// Who a join is for, as far as the caller proved it (`queue.identity`).
#[derive(Clone, Copy, Debug)]
pub enum JoinAs<'a> {
    /// The service realm (the booking backend): the user as given, for any
    /// identity mode.
    Trusted(&'a UserId),
    /// A public join: the user and user token it sent, if any, and a fresh
    /// unguessable id the caller drew, taken only by an anonymous event.
    Public {
        user: Option<&'a UserId>,
        user_token: Option<&'a str>,
        minted: &'a UserId,
    },
}

/// Decides who a join is for from the event's identity mode alone, before
/// anything looks up a ticket: a refused join learns nothing of anyone's
/// place.
fn joining_user<'a>(
    keys: &crate::passes::PassKeys,
    event: &EventId,
    identity: Identity,
    who: JoinAs<'a>,
    now: Timestamp,
) -> Result<&'a UserId, Rejection> {
    let (user, user_token, minted) = match who {
        JoinAs::Trusted(user) => return Ok(user),
        JoinAs::Public {
            user,
            user_token,
            minted,
        } => (user, user_token, minted),
    };
    match identity {
        Identity::Anonymous => match (user, user_token) {
            (None, None) => Ok(minted),
            _ => Err(Rejection::InvalidRequest(
                "this event's waiting room is anonymous: send no user or user_token, the server names the user".into(),
            )),
        },
        Identity::Signed => {
            let user = user.ok_or_else(|| {
                Rejection::InvalidRequest("user: required (with its user_token)".into())
            })?;
            let token = user_token.ok_or(Rejection::UserTokenRequired)?;
            UserToken::verify(token, keys, event, user, now)
                .map_err(Rejection::UserTokenInvalid)?;
            Ok(user)
        }
    }
}

/// A join's `Idempotency-Key` and where it came from. The key is scoped to
/// the caller: the service realm's keys are the backend's, a signed user's
/// are that (verified) user's, and an anonymous join's are the client
/// address's, so a key never names somebody else's join. Same key, same
/// caller: the same user (the same ticket, with the first answer's
/// `created`) or, for another user, [`Rejection::IdempotencyKeyReused`].
#[derive(Clone, Copy, Debug)]
pub struct JoinKey<'a> {
    pub key: &'a IdempotencyKey,
    /// The client's address (only anonymous joins are scoped by it).
    pub address: &'a str,
}

/// A ticket read or write on an event without a waiting room: no room
/// issued the ticket, so it is unknown (`ticket_not_found`).
fn no_room_no_ticket(r: Rejection) -> Rejection {
    match r {
        Rejection::NoQueue => Rejection::TicketNotFound,
        r => r,
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Joined {
    /// A new ticket (for a replay: whether the first answer's was).
    pub created: bool,
    pub view: TicketView,
    /// Answered from the key's record: nothing was written.
    pub replayed: bool,
}

impl Engine {
    /// Opens a pre-queue whose time has come (a write, taken only when due).
    pub(super) fn open_if_due(&self, id: &EventId, now: Timestamp) {
        let due = {
            let shard = self.event_shard(id).read();
            let now = shard.observe(now);
            shard
                .events
                .get(id)
                .and_then(|e| e.room.as_ref())
                .is_some_and(|r| r.needs_open(now))
        };
        if due {
            let _ = self.with_room(id, now, |room, out, now| {
                room.open_if_due(now, out);
                Ok(())
            });
        }
    }

    fn view(&self, e: &EventState, status: QueueStatus) -> TicketView {
        let (pass, pass_expires_at) = self.pass(
            e,
            status.state,
            status.admission,
            status.user.as_str(),
            &status.ticket,
        );
        TicketView {
            event: e.id.clone(),
            status,
            pass,
            pass_expires_at,
        }
    }

    /// The signed pass of an admitted ticket, and when it expires.
    fn pass(
        &self,
        e: &EventState,
        state: TicketState,
        admission: Option<Admission>,
        user: &str,
        ticket: &str,
    ) -> (Option<String>, Option<Timestamp>) {
        match admission {
            Some(a) if state == TicketState::Admitted => {
                let claims = PassClaims {
                    event: e.id.to_string(),
                    user: user.to_string(),
                    ticket: ticket.to_string(),
                    issued_ms: a.admitted_at.as_millis(),
                    expires_ms: a.expires_at.as_millis(),
                };
                (
                    Some(passes::sign(&claims, &self.cfg.pass_keys.current)),
                    Some(a.expires_at),
                )
            }
            _ => (None, None),
        }
    }

    /// [`Engine::status`] without heap copies of the event id, user id and
    /// ticket (the poll path): the same report, and the pass while admitted.
    /// The event is named by its id's text (an invalid id names no event).
    pub fn status_report(
        &self,
        event: &str,
        ticket: &str,
        now: Timestamp,
    ) -> Result<TicketReport, Rejection> {
        self.read_room(event, now, |e, room, now| {
            let status = room.status_report(ticket, now)?;
            let (pass, pass_expires_at) = self.pass(
                e,
                status.state,
                status.admission,
                status.user.as_str(),
                ticket,
            );
            Ok(TicketReport {
                status,
                pass,
                pass_expires_at,
            })
        })
    }

    /// A trusted join (the service realm): [`Engine::join_as`] with
    /// [`JoinAs::Trusted`].
    pub fn join(
        &self,
        id: &EventId,
        user: &UserId,
        now: Timestamp,
    ) -> Result<Receipt<Joined>, Rejection> {
        self.join_as(id, JoinAs::Trusted(user), now)
    }

    /// Joins the line (a rejoin keeps the ticket and place). Who joins is
    /// decided from `who` and the event's `queue.identity` before the line
    /// is looked at, under the same lock, so a refusal reveals nothing.
    pub fn join_as(
        &self,
        id: &EventId,
        who: JoinAs<'_>,
        now: Timestamp,
    ) -> Result<Receipt<Joined>, Rejection> {
        self.join_keyed(id, who, None, now)
    }

    /// [`Engine::join_as`] with an idempotency key (see [`JoinKey`]).
    pub fn join_keyed(
        &self,
        id: &EventId,
        who: JoinAs<'_>,
        key: Option<JoinKey<'_>>,
        now: Timestamp,
    ) -> Result<Receipt<Joined>, Rejection> {
        let mut shard = self.event_shard(id).write();
        let now = shard.advance(now);
        let e = shard.events.get_mut(id).ok_or(Rejection::EventNotFound)?;
        let Some(q) = &e.config.queue else {
            return Err(Rejection::NoQueue);
        };
        let user = joining_user(&self.cfg.pass_keys, id, q.identity, who, now)?;
        // Scoped once the caller is known (a signed user's token checked).
        let keyed = key.and_then(|k| {
            let caller: Box<str> = match who {
                JoinAs::Trusted(_) => SERVICE_CALLER.into(),
                JoinAs::Public { user: Some(u), .. } => format!("user:{u}").into(),
                JoinAs::Public { user: None, .. } => format!("address:{}", k.address).into(),
            };
            // An anonymous join's user is minted anew each time: its
            // request is the same whatever the user.
            let named = match who {
                JoinAs::Public { user: None, .. } => None,
                _ => Some(user),
            };
            Keyed::new(IdemScope::Join(id.clone(), caller), Some(k.key), &named)
        });
        if let Some(keyed) = &keyed {
            match keyed.lookup(&shard, now)? {
                None => {}
                Some(IdemOutcome::Join { uid, created }) => {
                    let e = shard.events.get(id).ok_or(Rejection::EventNotFound)?;
                    let room = e.room.as_ref().ok_or(Rejection::NoQueue)?;
                    let status = room.status_of(uid, now)?;
                    let view = self.view(e, status);
                    let joined = Joined {
                        created,
                        view,
                        replayed: true,
                    };
                    return Ok(Receipt::new(&shard, joined));
                }
                Some(_) => return Err(Rejection::IdempotencyKeyReused),
            }
        }
        let e = shard.events.get_mut(id).ok_or(Rejection::EventNotFound)?;
        if event_phase(e, now) == Phase::Closed {
            return Err(Rejection::EventClosed);
        }
        let mut out = Vec::new();
        let result = e
            .room
            .as_mut()
            .map(|room| room.join(user, now, &mut out))
            .ok_or(Rejection::NoQueue)?;
        let joined = result.map(|j| (j.created, j.status));
        let view = match &joined {
            Ok((_, status)) => Some(self.view(e, status.clone())),
            Err(_) => None,
        };
        let uid = match (&joined, &e.room) {
            (Ok((_, status)), Some(room)) => room.uid_of(&status.ticket),
            _ => None,
        };
        shard.record_all(now, out, |change| Change::Queue {
            event: id.clone(),
            change,
        });
        let (created, _) = joined?;
        let view = view.ok_or(Rejection::TicketNotFound)?;
        if let (Some(keyed), Some(uid)) = (keyed, uid) {
            keyed.remember(&mut shard, IdemOutcome::Join { uid, created }, now);
        }
        let joined = Joined {
            created,
            view,
            replayed: false,
        };
        Ok(Receipt::new(&shard, joined))
    }

    /// A ticket's status; counts as the user's presence. Takes the shared
    /// lock once; only the first read after `opens_at` (the opening) writes.
    pub fn status(
        &self,
        id: &EventId,
        ticket: &str,
        now: Timestamp,
    ) -> Result<TicketView, Rejection> {
        self.read_room(id.as_str(), now, |e, room, now| {
            let status = room.status(ticket, now)?;
            Ok(self.view(e, status))
        })
    }

    /// Runs `read` on the waiting room of the event named `event` (its id's
    /// text), under the shard's read lock, once a pre-queue whose time has
    /// come has been opened (a write, taken only when due).
    fn read_room<R>(
        &self,
        event: &str,
        now: Timestamp,
        read: impl Fn(&EventState, &WaitingRoom, Timestamp) -> Result<R, Rejection>,
    ) -> Result<R, Rejection> {
        let mut opened = false;
        loop {
            let shard = self.event_shard_named(event).read();
            let now = shard.observe(now);
            let e = shard.events.get(event).ok_or(Rejection::EventNotFound)?;
            // No room has issued no ticket: the ticket is unknown (as for
            // any id the server never issued), not a question about rooms.
            let room = e.room.as_ref().ok_or(Rejection::TicketNotFound)?;
            if !opened && room.needs_open(now) {
                let id = e.id.clone();
                drop(shard);
                self.open_if_due(&id, now);
                opened = true;
                continue;
            }
            return read(e, room, now);
        }
    }

    pub fn leave(
        &self,
        id: &EventId,
        ticket: &str,
        now: Timestamp,
    ) -> Result<Receipt<()>, Rejection> {
        self.with_room(id, now, |room, out, now| Ok(room.leave(ticket, now, out)?))
            .map_err(no_room_no_ticket)
    }

    pub fn complete(
        &self,
        id: &EventId,
        ticket: &str,
        now: Timestamp,
    ) -> Result<Receipt<()>, Rejection> {
        self.with_room(id, now, |room, out, now| {
            Ok(room.complete(ticket, now, out)?)
        })
        .map_err(no_room_no_ticket)
    }

    /// Checks a pass for a hold: signature, expiry, event, user, and that the
    /// session behind it is still admitted. Events without a waiting room need
    /// no pass. [`Engine::hold_with_pass`] does this and the hold atomically.
    pub fn check_pass(
        &self,
        id: &EventId,
        user: &UserId,
        pass: Option<&str>,
        now: Timestamp,
    ) -> Result<(), Rejection> {
        let shard = self.event_shard(id).read();
        let now = shard.observe(now);
        let e = shard.events.get(id).ok_or(Rejection::EventNotFound)?;
        self.verify_pass(e, user, pass, now)
    }

    /// The claims of a pass the engine honours for `id` right now:
    /// signature, expiry, event, and the session behind it still admitted.
    /// Who it names comes from the pass itself (the gate, which has no other
    /// word for the user); one verification, under the shard's read lock.
    pub fn honoured_pass(
        &self,
        id: &EventId,
        pass: &str,
        now: Timestamp,
    ) -> Result<PassClaims, Rejection> {
        let shard = self.event_shard(id).read();
        let now = shard.observe(now);
        let e = shard.events.get(id).ok_or(Rejection::EventNotFound)?;
        let room = e.room.as_ref().ok_or(Rejection::NoQueue)?;
        self.session_pass(e, room, None, pass, now)
    }

    pub(super) fn verify_pass(
        &self,
        e: &EventState,
        user: &UserId,
        pass: Option<&str>,
        now: Timestamp,
    ) -> Result<(), Rejection> {
        let Some(room) = &e.room else {
            return Ok(());
        };
        let pass = pass.ok_or(Rejection::PassRequired)?;
        self.session_pass(e, room, Some(user), pass, now)
            .map(|_| ())
    }

    /// A pass's claims when it verifies, names this event (and `user`, when
    /// given), and its session is still admitted; checked in that order.
    fn session_pass(
        &self,
        e: &EventState,
        room: &WaitingRoom,
        user: Option<&UserId>,
        pass: &str,
        now: Timestamp,
    ) -> Result<PassClaims, Rejection> {
        let invalid = |p| Rejection::PassInvalid(p);
        let claims = passes::verify(pass, &self.cfg.pass_keys, now)
            .map_err(|err| invalid(PassInvalid::Token(err)))?;
        if claims.event != e.id.as_str() {
            return Err(invalid(PassInvalid::OtherEvent));
        }
        if user.is_some_and(|u| claims.user != u.as_str()) {
            return Err(invalid(PassInvalid::OtherUser));
        }
        if !room.is_admitted(&claims.ticket, now) {
            return Err(invalid(PassInvalid::SessionEnded));
        }
        Ok(claims)
    }
}
