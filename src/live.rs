//! Line movement, broadcast per event for the live status streams.
//!
//! 100k open streams must not cost 100k timers or 100k wake-ups per join:
//! handlers and ticks only mark a watched line dirty; the driver, once per
//! live interval, bumps a `watch` counter per dirty line, and each stream then
//! computes its own status (O(log n) in the engine). Wake-ups per stream are
//! thus bounded by the live interval, however busy the line is. Lines nobody
//! watches cost nothing.

use boxoffice_engine::EventId;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{oneshot, watch, OwnedSemaphorePermit, Semaphore};

#[derive(Debug)]
struct Line {
    tx: watch::Sender<u64>,
    dirty: bool,
}

/// The watched lines, by event.
#[derive(Debug, Default)]
pub struct Lines {
    lines: Mutex<HashMap<EventId, Line>>,
}

impl Lines {
    /// A receiver woken when the event's line moves.
    pub fn subscribe(&self, event: &EventId) -> watch::Receiver<u64> {
        let mut lines = self.lines.lock();
        match lines.get(event) {
            Some(line) => line.tx.subscribe(),
            None => {
                let (tx, rx) = watch::channel(0);
                lines.insert(event.clone(), Line { tx, dirty: false });
                rx
            }
        }
    }

    /// Notes that the event's line moved (woken at the next flush).
    pub fn touch(&self, event: &EventId) {
        if let Some(line) = self.lines.lock().get_mut(event) {
            line.dirty = true;
        }
    }

    pub fn touch_all(&self) {
        for line in self.lines.lock().values_mut() {
            line.dirty = true;
        }
    }

    /// Wakes the watchers of every dirty line and forgets lines nobody watches.
    pub fn flush(&self) {
        let mut lines = self.lines.lock();
        lines.retain(|_, line| {
            if line.tx.receiver_count() == 0 {
                return false;
            }
            if line.dirty {
                line.dirty = false;
                line.tx.send_modify(|n| *n = n.wrapping_add(1));
            }
            true
        });
    }

    /// Number of watched lines.
    pub fn len(&self) -> usize {
        self.lines.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The open live streams: a cap of their own (`--max-streams`, apart from
/// the connection cap: a stream gives its connection slot back), and at most
/// a few per ticket, a newer one ending the oldest (a client reopening
/// streams in a loop holds no more than that).
#[derive(Debug)]
pub struct Streams {
    slots: Arc<Semaphore>,
    per_ticket: usize,
    next: AtomicU64,
    open: Mutex<HashMap<(EventId, String), OnTicket>>,
}

/// A ticket's open streams, oldest first: id and the sender whose drop ends it.
type OnTicket = VecDeque<(u64, oneshot::Sender<()>)>;

/// One open stream's place under `--max-streams` (held until dropped); its
/// entry on the ticket is forgotten with [`Streams::close`].
#[derive(Debug)]
pub struct StreamPlace {
    pub id: u64,
    _slot: OwnedSemaphorePermit,
}

/// A new stream: its place, a receiver that resolves when a newer stream on
/// the ticket replaced it, and how many older streams it replaced.
#[derive(Debug)]
pub struct Opened {
    pub place: StreamPlace,
    pub ended: oneshot::Receiver<()>,
    pub replaced: usize,
}

/// Every stream slot is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many live streams are open")]
pub struct StreamsFull;

impl Streams {
    pub fn new(max_streams: usize, per_ticket: usize) -> Self {
        Streams {
            slots: Arc::new(Semaphore::new(max_streams)),
            per_ticket: per_ticket.max(1),
            next: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
        }
    }

    /// A place for a new stream on the ticket (ending the oldest beyond
    /// the per-ticket number); `StreamsFull` at the cap.
    pub fn open(&self, event: &EventId, ticket: &str) -> Result<Opened, StreamsFull> {
        let slot = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| StreamsFull)?;
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, ended) = oneshot::channel();
        let mut open = self.open.lock();
        let on_ticket = open.entry((event.clone(), ticket.to_string())).or_default();
        on_ticket.push_back((id, tx));
        let mut replaced = 0;
        while on_ticket.len() > self.per_ticket {
            // Dropping the sender ends that stream at its next poll.
            on_ticket.pop_front();
            replaced += 1;
        }
        Ok(Opened {
            place: StreamPlace { id, _slot: slot },
            ended,
            replaced,
        })
    }

    /// Forgets a stream that ended.
    pub fn close(&self, event: &EventId, ticket: &str, id: u64) {
        let mut open = self.open.lock();
        let key = (event.clone(), ticket.to_string());
        if let Some(on_ticket) = open.get_mut(&key) {
            on_ticket.retain(|(i, _)| *i != id);
            if on_ticket.is_empty() {
                open.remove(&key);
            }
        }
    }

    /// Tickets with open streams.
    pub fn tickets(&self) -> usize {
        self.open.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_capped_per_ticket_and_in_all() {
        use oneshot::error::TryRecvError;
        let s = Streams::new(4, 2);
        let e = EventId::new("e1").expect("valid");
        let mut a = s.open(&e, "t1").expect("room");
        let b = s.open(&e, "t1").expect("room");
        assert_eq!(a.ended.try_recv(), Err(TryRecvError::Empty));
        let c = s.open(&e, "t1").expect("room");
        assert_eq!(c.replaced, 1);
        assert_eq!(
            a.ended.try_recv(),
            Err(TryRecvError::Closed),
            "the oldest is told to end"
        );
        let d = s.open(&e, "t2").expect("room");
        // `a` still holds its slot until it ends: 4 in all.
        assert_eq!(s.open(&e, "t3").err(), Some(StreamsFull));
        s.close(&e, "t1", a.place.id);
        drop(a);
        let f = s.open(&e, "t3").expect("a slot is free again");
        for (t, p) in [("t1", b), ("t1", c), ("t2", d), ("t3", f)] {
            s.close(&e, t, p.place.id);
        }
        assert_eq!(s.tickets(), 0, "nothing kept for tickets without streams");
    }

    #[test]
    fn touch_wakes_only_at_flush_and_only_watchers() {
        let lines = Lines::default();
        let e = EventId::new("e1").expect("valid");
        lines.touch(&e); // nobody watches: nothing kept
        assert!(lines.is_empty());
        let mut rx = lines.subscribe(&e);
        lines.touch(&e);
        lines.touch(&e);
        assert!(!rx.has_changed().unwrap_or(true));
        lines.flush();
        assert!(rx.has_changed().unwrap_or(false));
        rx.borrow_and_update();
        lines.flush(); // not dirty: no wake-up
        assert!(!rx.has_changed().unwrap_or(true));
        drop(rx);
        lines.flush();
        assert!(lines.is_empty());
    }
}
