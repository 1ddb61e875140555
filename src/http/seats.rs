//! Seats: availability (public) and holds (service): create, read, confirm,
//! extend, release. Holds on an event with a waiting room need the user's
//! valid pass.

use super::errors::ApiError;
use super::{json_response, no_content, Cx, Reply};
use crate::commit::Write;
use crate::metrics::{HoldOutcome, HoldStep};
use crate::wire::seats::{
    ConfirmRequest, ExtendRequest, Hold, HoldDoc, HoldRequest, SeatsDoc, SectionDoc,
};
use boxoffice_engine::{EventId, HoldId, Rejection};
use http::StatusCode;

/// The hold in the path. Hold ids are opaque to clients: one the server
/// could never have issued names no hold (404), not a bad request; an
/// unknown event still comes first.
fn hold_id(cx: &Cx, event: &EventId) -> Result<HoldId, ApiError> {
    cx.param(1).parse().map_err(|_| {
        if cx.state.engine.has_event(event) {
            Rejection::HoldNotFound.into()
        } else {
            Rejection::EventNotFound.into()
        }
    })
}

pub async fn availability(cx: Cx) -> Reply {
    let id = cx.event_id()?;
    let now = cx.state.now();
    let engine = &cx.state.engine;
    match cx.query("section")? {
        None => {
            let c = engine.seat_counts(&id, now)?;
            Ok(json_response(StatusCode::OK, &SeatsDoc::new(&id, &c)))
        }
        Some(section) => {
            if !boxoffice_engine::ids::valid_seat_part(&section) {
                return Err(ApiError::bad_request(
                    "section: 1-16 ASCII letters or digits",
                ));
            }
            let rows = engine.section_rows(&id, &section, now)?;
            Ok(json_response(
                StatusCode::OK,
                &SectionDoc::new(&id, &section, &rows),
            ))
        }
    }
}

fn outcome(r: &Rejection) -> HoldOutcome {
    match r {
        Rejection::SeatsUnavailable { .. } | Rejection::NoAdjacent { .. } => {
            HoldOutcome::Unavailable
        }
        Rejection::UnknownSeat { .. } | Rejection::UnknownCategory => HoldOutcome::UnknownSeat,
        Rejection::LimitExceeded { .. } => HoldOutcome::LimitExceeded,
        Rejection::PassRequired | Rejection::PassInvalid(_) => HoldOutcome::PassRefused,
        Rejection::IdempotencyKeyReused => HoldOutcome::KeyReused,
        _ => HoldOutcome::Other,
    }
}

pub async fn create(mut cx: Cx) -> Reply {
    let id = cx.event_id()?;
    let key = cx.idempotency_key()?;
    let Hold { user, pass, choice } = cx.json::<HoldRequest>().await?.read()?;
    let pass = pass.as_deref();
    let st = &cx.state;
    let now = st.now();
    let result = st
        .engine
        .hold_with_pass(&id, &user, pass, &choice, key.as_ref(), now);
    let reply = match result {
        Ok(r) => r,
        Err(Rejection::EventNotFound) => return Err(Rejection::EventNotFound.into()),
        Err(r) => {
            st.metrics.hold(&id, outcome(&r));
            return Err(r.into());
        }
    };
    let reply = st.commit(reply, Write::Hold(&id)).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &HoldDoc::new(&id, &reply.hold, now),
    ))
}

pub async fn get(cx: Cx) -> Reply {
    let id = cx.event_id()?;
    let hold = hold_id(&cx, &id)?;
    let now = cx.state.now();
    let info = cx.state.engine.get_hold(&id, hold, now)?;
    Ok(json_response(
        StatusCode::OK,
        &HoldDoc::new(&id, &info, now),
    ))
}

pub async fn confirm(mut cx: Cx) -> Reply {
    let id = cx.event_id()?;
    let hold = hold_id(&cx, &id)?;
    let order = cx.json::<ConfirmRequest>().await?.order()?;
    let st = &cx.state;
    let now = st.now();
    let info = st.engine.confirm(&id, hold, &order, now)?;
    let info = st
        .commit(info, Write::HoldStep(&id, HoldStep::Confirm))
        .await?;
    Ok(json_response(
        StatusCode::OK,
        &HoldDoc::new(&id, &info, now),
    ))
}

pub async fn extend(mut cx: Cx) -> Reply {
    let id = cx.event_id()?;
    let hold = hold_id(&cx, &id)?;
    let ttl_s = cx.json::<ExtendRequest>().await?.ttl_s()?;
    let st = &cx.state;
    let now = st.now();
    let info = st.engine.extend(&id, hold, ttl_s, now)?;
    let info = st
        .commit(info, Write::HoldStep(&id, HoldStep::Extend))
        .await?;
    Ok(json_response(
        StatusCode::OK,
        &HoldDoc::new(&id, &info, now),
    ))
}

pub async fn release(cx: Cx) -> Reply {
    let id = cx.event_id()?;
    let hold = hold_id(&cx, &id)?;
    let st = &cx.state;
    let released = st.engine.release(&id, hold, st.now())?;
    st.commit(released, Write::HoldStep(&id, HoldStep::Release))
        .await?;
    Ok(no_content())
}
