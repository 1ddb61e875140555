//! The waiting room: join, status, leave (public) and complete (service).

use super::errors::ApiError;
use super::router::Realm;
use super::{json_response, no_content, Cx, Reply};
use crate::commit::Write;
use crate::wire::queue::{JoinRequest, StatusDoc};
use boxoffice_engine::{JoinAs, JoinKey, Rejection, UserId};
use http::StatusCode;

pub async fn join(mut cx: Cx) -> Reply {
    let id = cx.event_id()?;
    // The router let the request in as public or service; which one decides
    // whose word the user id is.
    let service = cx.state.auth.public_or_service(&cx.parts.headers)? == Realm::Service;
    // Refuse floods before doing any work for them. The backend joins all
    // its users from its own address, so the per-address limit is for
    // public joins only.
    if !service {
        if let Err(e) = cx.state.joins.check(cx.client_ip()) {
            cx.state.metrics.rate_limited(cx.route);
            return Err(e.into());
        }
    }
    let key = cx.idempotency_key()?;
    let req = cx.json_if_any::<JoinRequest>().await?.unwrap_or_default();
    let user = req.user.map(|u| u.0);
    let st = &cx.state;
    let now = st.now();
    let minted;
    let who = if service {
        JoinAs::Trusted(
            user.as_ref()
                .ok_or_else(|| ApiError::bad_request("user: required").with("field", "user"))?,
        )
    } else {
        minted = anonymous_user()?;
        JoinAs::Public {
            user: user.as_ref(),
            user_token: req.user_token.as_deref(),
            minted: &minted,
        }
    };
    // Keys are scoped to the caller (see `JoinKey`); an anonymous join's
    // to the client's address, the only thing that names its caller.
    let address = key.as_ref().map(|_| cx.client_ip().to_string());
    let key = key.as_ref().zip(address.as_deref());
    let key = key.map(|(key, address)| JoinKey { key, address });
    // The engine decides who joins before it looks at the line or the key:
    // a refused join carries nothing of anyone's ticket, place or pass.
    let joined = st.engine.join_keyed(&id, who, key, now)?;
    let joined = st.commit(joined, Write::Join(&id)).await?;
    let status = if joined.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json_response(status, &StatusDoc::new(&joined.view)))
}

/// A fresh user id for an anonymous join: 128 random bits, so nobody can
/// guess another visitor's id (the ticket stays the only handle).
pub(crate) fn anonymous_user() -> Result<UserId, ApiError> {
    let mut bits = [0u8; 16];
    getrandom::fill(&mut bits)
        .map_err(|_| ApiError::unavailable("no randomness for a new user id", 1))?;
    let mut id = String::with_capacity(5 + 32);
    id.push_str("anon-");
    for b in bits {
        id.push_str(&format!("{b:02x}"));
    }
    UserId::new(&id).map_err(|_| ApiError::internal())
}

fn ticket(cx: &Cx) -> Result<&str, ApiError> {
    let t = cx.param(1);
    // Tickets are short tokens; anything long or odd names no ticket.
    if t.len() > 256 {
        return Err(Rejection::TicketNotFound.into());
    }
    Ok(t)
}

pub async fn status(cx: Cx) -> Reply {
    let event = cx.event_name()?;
    let t = ticket(&cx)?;
    let report = cx.state.engine.status_report(event, t, cx.state.now())?;
    // After the lookup, so only tickets that exist are tracked (a flood of
    // made-up tickets is 404 and costs no memory here).
    if let Err(e) = cx.state.polls.check(t) {
        cx.state.metrics.poll_limited();
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "this ticket is polled far faster than its poll_after_ms; retry later",
        )
        .retry_after(e.retry_after_s));
    }
    Ok(json_response(
        StatusCode::OK,
        &StatusDoc::of_report(event, t, &report),
    ))
}

pub async fn leave(cx: Cx) -> Reply {
    let id = cx.event_id()?;
    let st = &cx.state;
    let left = st.engine.leave(&id, ticket(&cx)?, st.now())?;
    st.commit(left, Write::Leave(&id)).await?;
    Ok(no_content())
}

pub async fn complete(mut cx: Cx) -> Reply {
    let id = cx.event_id()?;
    cx.json_opt().await?;
    let st = &cx.state;
    let done = st.engine.complete(&id, ticket(&cx)?, st.now())?;
    st.commit(done, Write::Complete(&id)).await?;
    Ok(no_content())
}
