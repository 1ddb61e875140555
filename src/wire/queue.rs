//! The waiting room: the join request and the status document.

use super::ids::User;
use super::time::rfc3339_opt;
use boxoffice_engine::{TicketView, Timestamp};
use serde::{Deserialize, Serialize};

/// `POST /v1/events/{event}/queue`: `{"user", "user_token"}` for a signed
/// event, `{"user"}` from the service realm, `{}` (or no body) for an
/// anonymous one; which applies is the handler's call.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "an object")]
pub struct JoinRequest {
    pub user: Option<User>,
    pub user_token: Option<String>,
}

/// The status document, serialised straight from the engine's view (the
/// poll path: no intermediate JSON map).
#[derive(Debug, Serialize)]
pub struct StatusDoc<'a> {
    ticket: &'a str,
    event: &'a str,
    user: &'a str,
    state: &'static str,
    position: Option<u64>,
    waiting: u64,
    eta_s: Option<u64>,
    poll_after_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pass: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none", with = "rfc3339_opt")]
    pass_expires_at: Option<Timestamp>,
}

impl<'a> StatusDoc<'a> {
    pub fn new(v: &'a TicketView) -> Self {
        let s = &v.status;
        let pass = v.pass.as_deref().zip(v.pass_expires_at);
        StatusDoc {
            ticket: &s.ticket,
            event: v.event.as_str(),
            user: s.user.as_str(),
            state: s.state.as_str(),
            position: s.position,
            waiting: s.waiting,
            eta_s: s.eta_s,
            poll_after_ms: s.poll_after_ms,
            pass: pass.map(|(p, _)| p),
            pass_expires_at: pass.map(|(_, exp)| exp),
        }
    }
}

/// The status document as the live streams send it: the same fields with
/// the keys in sorted order. Streams used to render through
/// `serde_json::Value`, whose map sorts its keys; a stream's bytes stay
/// what they were (the test in src/http/sse.rs compares the two).
#[derive(Debug, Serialize)]
pub struct StreamStatusDoc<'a> {
    eta_s: Option<u64>,
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pass: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none", with = "rfc3339_opt")]
    pass_expires_at: Option<Timestamp>,
    poll_after_ms: u64,
    position: Option<u64>,
    state: &'static str,
    ticket: &'a str,
    user: &'a str,
    waiting: u64,
}

impl<'a> From<&StatusDoc<'a>> for StreamStatusDoc<'a> {
    fn from(d: &StatusDoc<'a>) -> Self {
        StreamStatusDoc {
            eta_s: d.eta_s,
            event: d.event,
            pass: d.pass,
            pass_expires_at: d.pass_expires_at,
            poll_after_ms: d.poll_after_ms,
            position: d.position,
            state: d.state,
            ticket: d.ticket,
            user: d.user,
            waiting: d.waiting,
        }
    }
}
