//! Who a gate request is for (I8 at the gate): an admitted visitor, proven
//! by a pass cookie the engine still honours (signature, expiry, event, and
//! a session still admitted), or a visitor who waits, known by a ticket
//! cookie or joined now.
//!
//! Gate visitors are anonymous: the gate mints an unguessable user id for
//! each newcomer and joins it in-process (as the service realm would), so
//! the ticket cookie is the only handle on the place. Nothing a client
//! sends names a user: a pass or ticket it did not get from us verifies
//! nothing, and a ticket for another event is not found.

use crate::commit::Write;
use crate::http::errors::ApiError;
use crate::state::AppState;
use boxoffice_engine::queue::TicketState;
use boxoffice_engine::{EventId, JoinAs, Rejection, TicketView, Timestamp};
use http::HeaderMap;
use std::net::IpAddr;

use super::cookies;

/// A visitor the backend may see, with what the gate tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admitted {
    pub user: String,
    pub ticket: String,
    pub pass: String,
}

/// Who the request is for.
#[derive(Debug)]
pub enum Who {
    Admitted(Admitted),
    Waiting(TicketView),
}

/// The visitor, and the cookies the answer must set.
#[derive(Debug)]
pub struct Visitor {
    pub who: Who,
    /// A ticket issued by this request (set `bo_ticket`).
    pub new_ticket: Option<String>,
    /// A pass the browser does not have yet (set `bo_pass`), with the
    /// seconds it has left.
    pub new_pass: Option<(String, u64)>,
}

/// The pass cookie, when the engine honours it for `event` right now.
pub fn from_pass(
    state: &AppState,
    event: &EventId,
    headers: &HeaderMap,
    now: Timestamp,
) -> Option<Admitted> {
    let pass = cookies::get(headers, cookies::PASS)?;
    // The same check a hold makes, in one verification: signature, expiry,
    // this event, and the session behind the pass still admitted (a
    // completed or revoked session's pass opens nothing).
    let claims = state.engine.honoured_pass(event, pass, now).ok()?;
    Some(Admitted {
        user: claims.user,
        ticket: claims.ticket,
        pass: pass.to_string(),
    })
}

/// An admitted ticket's view as the visitor the backend sees.
fn admitted(view: &TicketView, now: Timestamp) -> Option<(Admitted, u64)> {
    let pass = view.pass.clone()?;
    let left_ms = view
        .pass_expires_at
        .map_or(0, |exp| exp.as_millis().saturating_sub(now.as_millis()));
    Some((
        Admitted {
            user: view.status.user.to_string(),
            ticket: view.status.ticket.clone(),
            pass,
        },
        left_ms.div_ceil(1000),
    ))
}

/// Resolves the visitor: pass cookie, else ticket cookie, else (when
/// `may_join`) a new place at the back of the line. A ticket that expired
/// or left is replaced by a new place, as a visitor coming back expects.
pub async fn resolve(
    state: &AppState,
    event: &EventId,
    headers: &HeaderMap,
    client: IpAddr,
    may_join: bool,
) -> Result<Visitor, ApiError> {
    let now = state.now();
    if let Some(a) = from_pass(state, event, headers, now) {
        return Ok(Visitor {
            who: Who::Admitted(a),
            new_ticket: None,
            new_pass: None,
        });
    }
    if let Some(ticket) = cookies::get(headers, cookies::TICKET) {
        if let Some(v) = known(state, event, ticket, now)? {
            return Ok(v);
        }
    }
    if !may_join {
        return Err(Rejection::TicketNotFound.into());
    }
    join(state, event, client).await
}

/// The visitor behind a ticket cookie; `None` when it names no live place.
pub fn known(
    state: &AppState,
    event: &EventId,
    ticket: &str,
    now: Timestamp,
) -> Result<Option<Visitor>, ApiError> {
    // Tickets are short tokens; anything long names no ticket.
    if ticket.len() > 256 {
        return Ok(None);
    }
    let view = match state.engine.status(event, ticket, now) {
        Ok(v) => v,
        Err(Rejection::TicketNotFound) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(match view.status.state {
        TicketState::Admitted => admitted(&view, now).map(|(a, left_s)| Visitor {
            new_pass: Some((a.pass.clone(), left_s)),
            who: Who::Admitted(a),
            new_ticket: None,
        }),
        TicketState::Prequeue | TicketState::Waiting => Some(Visitor {
            who: Who::Waiting(view),
            new_ticket: None,
            new_pass: None,
        }),
        TicketState::Expired | TicketState::Left => None,
    })
}

/// A newcomer joins (a write: refused while it could not be made durable;
/// limited per client address like any public join).
async fn join(state: &AppState, event: &EventId, client: IpAddr) -> Result<Visitor, ApiError> {
    state.admit()?;
    if let Err(e) = state.joins.check(client) {
        state.metrics.rate_limited(crate::metrics::GATE_ROUTE);
        return Err(e.into());
    }
    let user = crate::http::queue::anonymous_user()?;
    let now = state.now();
    let joined = state.engine.join_as(event, JoinAs::Trusted(&user), now)?;
    let joined = state.commit(joined, Write::Join(event)).await?;
    let view = joined.view;
    let ticket = view.status.ticket.clone();
    if let Some((a, left_s)) = admitted(&view, now) {
        return Ok(Visitor {
            new_pass: Some((a.pass.clone(), left_s)),
            who: Who::Admitted(a),
            new_ticket: Some(ticket),
        });
    }
    Ok(Visitor {
        who: Who::Waiting(view),
        new_ticket: Some(ticket),
        new_pass: None,
    })
}
