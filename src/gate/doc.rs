//! The gate's status document: what the waiting page shows, as JSON for its
//! script (`/_boxoffice/status`, the `status` events of `/_boxoffice/stream`)
//! and as the model the page is rendered from.
//!
//! It is the v1 status document (API.md, "Waiting room") without the pass
//! (the pass only ever travels as an HttpOnly cookie, out of a script's
//! reach), plus what the page needs about the room: its phase, opening time,
//! whether the seats are gone, and progress.

use crate::wire::time::rfc3339_opt;
use boxoffice_engine::{EventSummary, TicketView, Timestamp};
use serde::Serialize;

/// One visitor's view of the line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GateDoc {
    pub ticket: String,
    pub event: String,
    /// The visitor's (anonymous) user id.
    pub user: String,
    /// The event's display name.
    pub event_name: String,
    /// `prequeue|waiting|admitted|expired|left`.
    pub state: &'static str,
    /// 1 = next in; only while waiting.
    pub position: Option<u64>,
    /// People in line.
    pub waiting: u64,
    /// Seconds to admission; only while waiting and the rate is known.
    pub eta_s: Option<u64>,
    pub poll_after_ms: u64,
    /// `prequeue|open|paused|closed` (closed: sold out).
    pub phase: &'static str,
    /// When the room opens (pre-queue countdown); absent: open already.
    #[serde(with = "rfc3339_opt")]
    pub opens_at: Option<Timestamp>,
    /// Every seat is sold (the room admits nobody more).
    pub sold_out: bool,
    /// Seats neither held nor sold.
    pub seats_free: u64,
    /// Admitted so far (the front of the line has moved this far).
    pub served: u64,
    /// 0.0..=1.0: `served / (served + position)` while waiting, so it only
    /// grows as the line moves; 1.0 once admitted, 0.0 before opening.
    pub progress: f64,
}

impl GateDoc {
    /// The page's model when the room admits nobody more and the visitor has
    /// no place (sold out before they arrived): no ticket, phase `closed`.
    pub fn sold_out(event: &EventSummary) -> Self {
        GateDoc {
            ticket: String::new(),
            event: event.stats.id.to_string(),
            user: String::new(),
            event_name: event.name.clone(),
            state: "left",
            position: None,
            waiting: event.stats.waiting,
            eta_s: None,
            poll_after_ms: 30_000,
            phase: "closed",
            opens_at: None,
            sold_out: true,
            seats_free: event.stats.seats.total.free,
            served: event.stats.served,
            progress: 0.0,
        }
    }

    pub fn new(view: &TicketView, event: &EventSummary) -> Self {
        let s = &view.status;
        let phase = event.stats.phase.as_str();
        let served = event.stats.served;
        let progress = match (s.state.as_str(), s.position) {
            ("admitted", _) => 1.0,
            ("waiting", Some(p)) if served + p > 0 => served as f64 / (served + p) as f64,
            _ => 0.0,
        };
        let opens_at = event
            .opens_at
            .filter(|_| phase == "prequeue" || s.state.as_str() == "prequeue");
        GateDoc {
            ticket: s.ticket.clone(),
            event: view.event.to_string(),
            user: s.user.to_string(),
            event_name: event.name.clone(),
            state: s.state.as_str(),
            position: s.position,
            waiting: s.waiting,
            eta_s: s.eta_s,
            poll_after_ms: s.poll_after_ms,
            phase,
            opens_at,
            sold_out: phase == "closed",
            seats_free: event.stats.seats.total.free,
            served,
            progress,
        }
    }
}

/// The gate's document as its live stream sends it: the same fields with
/// the keys in sorted order. The stream used to render through
/// `serde_json::Value`, whose map sorts its keys; its bytes stay what they
/// were (the test below compares the two).
#[derive(Debug, Serialize)]
pub struct StreamGateDoc<'a> {
    eta_s: Option<u64>,
    event: &'a str,
    event_name: &'a str,
    #[serde(with = "rfc3339_opt")]
    opens_at: Option<Timestamp>,
    phase: &'static str,
    poll_after_ms: u64,
    position: Option<u64>,
    progress: f64,
    seats_free: u64,
    served: u64,
    sold_out: bool,
    state: &'static str,
    ticket: &'a str,
    user: &'a str,
    waiting: u64,
}

impl<'a> From<&'a GateDoc> for StreamGateDoc<'a> {
    fn from(d: &'a GateDoc) -> Self {
        StreamGateDoc {
            eta_s: d.eta_s,
            event: &d.event,
            event_name: &d.event_name,
            opens_at: d.opens_at,
            phase: d.phase,
            poll_after_ms: d.poll_after_ms,
            position: d.position,
            progress: d.progress,
            seats_free: d.seats_free,
            served: d.served,
            sold_out: d.sold_out,
            state: d.state,
            ticket: &d.ticket,
            user: &d.user,
            waiting: d.waiting,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::sse::frame;

    /// What the stream sent before frames were serialised straight to bytes.
    fn through_value(d: &GateDoc) -> String {
        let v = serde_json::to_value(d).expect("serialises");
        format!("event: status\ndata: {v}\n\n")
    }

    fn doc() -> GateDoc {
        GateDoc {
            ticket: "AQAAAAAAAAB0aWNrZXQ".into(),
            event: "e-1.x".into(),
            user: "anon-00ff".into(),
            event_name: "IU \"2026\" 서울 \\ night\u{1}".into(),
            state: "waiting",
            position: Some(3),
            waiting: 50_000,
            eta_s: Some(37),
            poll_after_ms: 2000,
            phase: "open",
            opens_at: None,
            sold_out: false,
            seats_free: 120,
            served: 7,
            progress: 0.7,
        }
    }

    #[test]
    fn the_stream_frame_is_byte_for_byte_what_the_value_gave() {
        let mut docs = vec![doc()];
        let mut d = doc();
        (d.position, d.eta_s, d.progress) = (None, None, 1.0 / 3.0);
        (d.state, d.phase, d.sold_out) = ("admitted", "closed", true);
        docs.push(d);
        let mut d = doc();
        (d.state, d.phase) = ("prequeue", "prequeue");
        d.opens_at = Some(Timestamp::from_millis(1_800_000_000_123));
        (d.progress, d.served, d.waiting) = (0.0, 0, u64::MAX);
        docs.push(d);
        let mut d = doc();
        d.progress = f64::NAN; // never made, but null either way
        docs.push(d);
        for d in &docs {
            let f = frame(&StreamGateDoc::from(d)).expect("serialises");
            assert_eq!(std::str::from_utf8(&f), Ok(through_value(d).as_str()));
        }
        // Past year 9999: no frame (the stream ends), as before.
        let mut d = doc();
        d.opens_at = Some(Timestamp::from_millis(u64::MAX));
        assert!(frame(&StreamGateDoc::from(&d)).is_none());
        assert!(serde_json::to_value(&d).is_err());
    }
}
