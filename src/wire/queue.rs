//! The waiting room: the join request and the status document.

use super::ids::User;
use super::time::rfc3339_opt;
use boxoffice_engine::{TicketReport, TicketView, Timestamp};
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
    /// The document of a copy-free read (`Engine::status_report`): the
    /// same document [`StatusDoc::new`] gives for that ticket.
    pub fn of_report(event: &'a str, ticket: &'a str, r: &'a TicketReport) -> Self {
        let s = &r.status;
        let pass = r.pass.as_deref().zip(r.pass_expires_at);
        StatusDoc {
            ticket,
            event,
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

#[cfg(test)]
mod tests {
    use super::*;
    use boxoffice_engine::queue::{Admission, QueueStatus, StatusReport, TicketState, UserText};
    use boxoffice_engine::{EventId, UserId};

    /// The poll's document from a copy-free read is byte for byte the one
    /// from a full view of the same ticket.
    #[test]
    fn a_report_gives_the_views_document() {
        let admitted = Admission {
            admitted_at: Timestamp::from_millis(1_796_122_800_250),
            expires_at: Timestamp::from_millis(1_796_123_400_250),
        };
        let cases = [
            (TicketState::Waiting, Some(12), Some(36), None),
            (TicketState::Prequeue, None, None, None),
            (TicketState::Admitted, None, None, Some(admitted)),
            (TicketState::Expired, None, None, None),
        ];
        for (state, position, eta_s, admission) in cases {
            let user = "u \"1\" 서울 \\ </script>";
            let ticket = "AQAAAAAAAAB0aWNrZXQ";
            let pass = admission.map(|_| "v1.k.p.s".to_string());
            let view = TicketView {
                event: EventId::new("e-1").expect("id"),
                status: QueueStatus {
                    ticket: ticket.into(),
                    user: UserId::new(user).expect("id"),
                    state,
                    position,
                    waiting: 50_000,
                    eta_s,
                    poll_after_ms: 2000,
                    admission,
                },
                pass: pass.clone(),
                pass_expires_at: admission.map(|a| a.expires_at),
            };
            let report = TicketReport {
                status: StatusReport {
                    user: UserText::new(user).expect("short"),
                    state,
                    position,
                    waiting: 50_000,
                    eta_s,
                    poll_after_ms: 2000,
                    admission,
                },
                pass,
                pass_expires_at: admission.map(|a| a.expires_at),
            };
            let a = serde_json::to_string(&StatusDoc::new(&view)).expect("json");
            let b =
                serde_json::to_string(&StatusDoc::of_report("e-1", ticket, &report)).expect("json");
            assert_eq!(a, b);
        }
    }
}
