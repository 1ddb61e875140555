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
