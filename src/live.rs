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
use std::collections::HashMap;
use tokio::sync::watch;

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

#[cfg(test)]
mod tests {
    use super::*;

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
