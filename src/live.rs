//! Line movement, broadcast per event for the live status streams, and the
//! open streams themselves, by ticket.
//!
//! 100k open streams must not cost 100k timers or 100k wake-ups per join:
//! handlers and ticks only mark a watched line dirty; the driver, once per
//! live interval, bumps a `watch` counter per dirty line, and each stream then
//! computes its ticket's status (O(log n) in the engine). Wake-ups per stream
//! are thus bounded by the live interval, however busy the line is. Lines
//! nobody watches cost nothing.
//!
//! A ticket's streams (a few tabs) share one [`TicketFeed`]: the frame last
//! rendered for each kind of document, under the line and heartbeat counts
//! it was rendered at. The first stream woken at new counts reads and
//! serialises the status; the others clone its bytes.

use boxoffice_engine::EventId;
use bytes::Bytes;
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

/// Which document a stream sends: the v1 status document or the gate's
/// (src/gate/doc.rs). Their frames are kept apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocKind {
    Status,
    Gate,
}

/// The counts a frame was rendered at: the event's line counter
/// ([`Lines::subscribe`]) and the shared heartbeat. Every change to a
/// ticket's document moves one of them (a write touches the line, a tick
/// that admits, drops or opens touches every line, and the heartbeat
/// resends regardless), so streams of the ticket woken at the same counts
/// would render the same document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Versions {
    pub line: u64,
    pub beat: u64,
}

/// One frame of a stream, as sent, and whether the stream ends after it
/// (`admitted`, `expired`, `left`).
#[derive(Clone, Debug)]
pub struct Frame {
    pub bytes: Bytes,
    pub last: bool,
}

/// What the open streams of one ticket share: its name, and per document
/// kind the last frame rendered with the counts it was rendered at.
#[derive(Debug)]
pub struct TicketFeed {
    event: EventId,
    ticket: Arc<str>,
    frames: Mutex<[Option<(Versions, Frame)>; 2]>,
}

impl TicketFeed {
    fn new(event: EventId, ticket: Arc<str>) -> Self {
        TicketFeed {
            event,
            ticket,
            frames: Mutex::new([None, None]),
        }
    }

    pub fn event(&self) -> &EventId {
        &self.event
    }

    pub fn ticket(&self) -> &str {
        &self.ticket
    }

    /// The `kind` frame at `at`: the one a stream of this ticket already
    /// rendered at those counts, else what `render` gives (kept for the
    /// others; `None` is not kept). Rendering happens under the ticket's own
    /// lock, so streams woken together serialise once, not once each; no
    /// other lock waits on it.
    pub fn frame(
        &self,
        kind: DocKind,
        at: Versions,
        render: impl FnOnce() -> Option<Frame>,
    ) -> Option<Frame> {
        let mut frames = self.frames.lock();
        let slot = &mut frames[kind as usize];
        if let Some((v, f)) = slot.as_ref() {
            if *v == at {
                return Some(f.clone());
            }
        }
        let f = render()?;
        *slot = Some((at, f.clone()));
        Some(f)
    }

    /// Keeps `frame`, rendered at `at` (a new stream's first frame: it
    /// always reads the status afresh, and its bytes serve the others).
    pub fn keep(&self, kind: DocKind, at: Versions, frame: &Frame) {
        self.frames.lock()[kind as usize] = Some((at, frame.clone()));
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
    /// By event, then ticket (looked up by `&str`: no key is built per
    /// open or close, and the ticket's name is kept once, in its feed).
    open: Mutex<HashMap<EventId, HashMap<Arc<str>, OnTicket>>>,
}

/// A ticket's feed and its open streams, oldest first: id and the sender
/// whose drop ends it.
#[derive(Debug)]
struct OnTicket {
    feed: Arc<TicketFeed>,
    streams: VecDeque<(u64, oneshot::Sender<()>)>,
}

/// One open stream's place under `--max-streams` (held until dropped); its
/// entry on the ticket is forgotten with [`Streams::close`].
#[derive(Debug)]
pub struct StreamPlace {
    pub id: u64,
    _slot: OwnedSemaphorePermit,
}

/// A new stream: its place, its ticket's feed, a receiver that resolves
/// when a newer stream on the ticket replaced it, and how many older streams
/// it replaced.
#[derive(Debug)]
pub struct Opened {
    pub place: StreamPlace,
    pub feed: Arc<TicketFeed>,
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
        let on_event = match open.get_mut(event) {
            Some(m) => m,
            None => open.entry(event.clone()).or_default(),
        };
        let on_ticket = match on_event.get_mut(ticket) {
            Some(t) => t,
            None => {
                let name: Arc<str> = Arc::from(ticket);
                on_event.entry(name.clone()).or_insert_with(|| OnTicket {
                    feed: Arc::new(TicketFeed::new(event.clone(), name)),
                    streams: VecDeque::with_capacity(1),
                })
            }
        };
        on_ticket.streams.push_back((id, tx));
        let mut replaced = 0;
        while on_ticket.streams.len() > self.per_ticket {
            // Dropping the sender ends that stream at its next poll.
            on_ticket.streams.pop_front();
            replaced += 1;
        }
        Ok(Opened {
            place: StreamPlace { id, _slot: slot },
            feed: on_ticket.feed.clone(),
            ended,
            replaced,
        })
    }

    /// Forgets a stream that ended (`feed`: its ticket's).
    pub fn close(&self, feed: &TicketFeed, id: u64) {
        let mut open = self.open.lock();
        let Some(on_event) = open.get_mut(feed.event()) else {
            return;
        };
        if let Some(on_ticket) = on_event.get_mut(feed.ticket()) {
            on_ticket.streams.retain(|(i, _)| *i != id);
            if on_ticket.streams.is_empty() {
                on_event.remove(feed.ticket());
            }
        }
        if on_event.is_empty() {
            open.remove(feed.event());
        }
    }

    /// Tickets with open streams.
    pub fn tickets(&self) -> usize {
        self.open.lock().values().map(HashMap::len).sum()
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
        s.close(&a.feed, a.place.id);
        drop(a);
        let f = s.open(&e, "t3").expect("a slot is free again");
        for p in [b, c, d, f] {
            s.close(&p.feed, p.place.id);
        }
        assert_eq!(s.tickets(), 0, "nothing kept for tickets without streams");
    }

    #[test]
    fn a_tickets_streams_share_one_feed_that_renders_once_per_counts() {
        let s = Streams::new(8, 3);
        let e = EventId::new("e1").expect("valid");
        let a = s.open(&e, "t1").expect("room");
        let b = s.open(&e, "t1").expect("room");
        let c = s.open(&e, "t2").expect("room");
        assert!(Arc::ptr_eq(&a.feed, &b.feed), "one feed per ticket");
        assert!(!Arc::ptr_eq(&a.feed, &c.feed));
        assert_eq!((a.feed.event(), a.feed.ticket()), (&e, "t1"));

        let renders = std::cell::Cell::new(0);
        let render = |text: &'static str| {
            renders.set(renders.get() + 1);
            Some(Frame {
                bytes: Bytes::from(text.as_bytes().to_vec()),
                last: false,
            })
        };
        let v1 = Versions { line: 1, beat: 0 };
        let f1 = a.feed.frame(DocKind::Status, v1, || render("one"));
        let f2 = b.feed.frame(DocKind::Status, v1, || render("two"));
        let (f1, f2) = (f1.expect("rendered"), f2.expect("shared"));
        assert_eq!(renders.get(), 1, "the second stream renders nothing");
        assert_eq!(f1.bytes.as_ptr(), f2.bytes.as_ptr(), "the same bytes");
        // Another kind, other counts, another ticket: rendered anew.
        let g = a.feed.frame(DocKind::Gate, v1, || render("gate"));
        assert_eq!(g.map(|f| f.bytes), Some(Bytes::from_static(b"gate")));
        let v2 = Versions { line: 1, beat: 1 };
        let f3 = b.feed.frame(DocKind::Status, v2, || render("three"));
        assert_eq!(f3.map(|f| f.bytes), Some(Bytes::from_static(b"three")));
        c.feed.frame(DocKind::Status, v2, || render("t2"));
        assert_eq!(renders.get(), 4);
        // Nothing to say is not kept; a first frame is.
        let v3 = Versions { line: 2, beat: 1 };
        assert!(a.feed.frame(DocKind::Status, v3, || None).is_none());
        let kept = Frame {
            bytes: Bytes::from_static(b"first"),
            last: true,
        };
        a.feed.keep(DocKind::Status, v3, &kept);
        let again = b.feed.frame(DocKind::Status, v3, || render("unused"));
        assert!(again.is_some_and(|f| f.last && f.bytes == "first"));
        assert_eq!(renders.get(), 4);

        for p in [a, b, c] {
            s.close(&p.feed, p.place.id);
        }
        assert_eq!(s.tickets(), 0);
        assert!(s.open.lock().is_empty(), "no empty event kept either");
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
