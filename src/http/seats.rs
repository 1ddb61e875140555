//! Seats: availability (public) and holds (service): create, read, confirm,
//! extend, release. Holds on an event with a waiting room need the user's
//! valid pass.

use super::errors::ApiError;
use super::events::counts_doc;
use super::json;
use super::{json_response, no_content, Cx, Reply};
use crate::commit::Write;
use boxoffice_engine::config::limits;
use boxoffice_engine::passes::MAX_PASS_LEN;
use boxoffice_engine::seats::{HoldInfo, HoldState, SeatChoice};
use boxoffice_engine::{EventId, HoldId, Rejection, SeatId, Timestamp};
use http::StatusCode;
use serde_json::{json, Map, Value};
use std::num::NonZeroU32;

/// Most seats named in one hold request (the per-user limit caps real ones).
const MAX_SEATS_IN_REQUEST: usize = 1_000;

pub fn hold_doc(event: &EventId, h: &HoldInfo, now: Timestamp) -> Value {
    let live = h.state == HoldState::Held;
    let left_ms = if live { h.expires_at.ms_since(now) } else { 0 };
    json!({
        "hold": h.id.to_string(),
        "event": event.as_str(),
        "user": h.user.as_str(),
        "seats": h.seats.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "state": h.state.as_str(),
        "created_at": h.created_at.to_rfc3339(),
        "expires_at": h.expires_at.to_rfc3339(),
        "expires_in_s": left_ms.div_ceil(1000),
        "order": h.order,
    })
}

fn hold_id(cx: &Cx) -> Result<HoldId, ApiError> {
    cx.param(1)
        .parse()
        .map_err(|_| ApiError::bad_request("hold: hold ids look like h12g3"))
}

pub async fn availability(cx: Cx) -> Reply {
    let id = cx.event_id()?;
    let now = cx.state.now();
    let engine = &cx.state.engine;
    match cx.query("section") {
        None => {
            let c = engine.seat_counts(&id, now)?;
            let mut doc = counts_doc(&c.total);
            let cats: Map<String, Value> = c
                .categories
                .iter()
                .map(|(k, v)| (k.clone(), counts_doc(v)))
                .collect();
            if let Some(o) = doc.as_object_mut() {
                o.insert("event".into(), Value::from(id.as_str()));
                o.insert("categories".into(), Value::Object(cats));
            }
            Ok(json_response(StatusCode::OK, &doc))
        }
        Some(section) => {
            if !boxoffice_engine::ids::valid_seat_part(&section) {
                return Err(ApiError::bad_request(
                    "section: 1-16 ASCII letters or digits",
                ));
            }
            let rows = engine.section_rows(&id, &section, now)?;
            let rows: Vec<Value> = rows
                .iter()
                .map(|r| json!({"row": r.row, "first": r.first, "status": r.status}))
                .collect();
            Ok(json_response(
                StatusCode::OK,
                &json!({"event": id.as_str(), "section": section, "rows": rows}),
            ))
        }
    }
}

fn outcome_label(r: &Rejection) -> &'static str {
    match r {
        Rejection::SeatsUnavailable { .. } | Rejection::NoAdjacent { .. } => "unavailable",
        Rejection::UnknownSeat { .. } | Rejection::UnknownCategory => "unknown_seat",
        Rejection::LimitExceeded { .. } => "limit_exceeded",
        Rejection::PassRequired | Rejection::PassInvalid(_) => "pass_refused",
        Rejection::IdempotencyKeyReused => "key_reused",
        _ => "other",
    }
}

pub async fn create(mut cx: Cx) -> Reply {
    let id = cx.event_id()?;
    let key = cx.idempotency_key()?;
    let body = cx.json().await?;
    let o = json::object(&body)?;
    let user = o.user("user")?;
    let pass = o.opt_str("pass")?;
    if pass.is_some_and(|p| p.len() > MAX_PASS_LEN) {
        return Err(ApiError::bad_request(format!(
            "pass: at most {MAX_PASS_LEN} bytes"
        )));
    }
    let choice = match (o.opt_array("seats")?, o.opt_object("best")?) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request("give either seats or best, not both"))
        }
        (None, None) => return Err(ApiError::bad_request("seats or best: one is required")),
        (Some(list), None) => {
            if list.is_empty() || list.len() > MAX_SEATS_IN_REQUEST {
                return Err(ApiError::bad_request(format!(
                    "seats: 1 to {MAX_SEATS_IN_REQUEST} seat ids"
                )));
            }
            let seats = list
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    s.as_str()
                        .and_then(|s| SeatId::parse(s).ok())
                        .ok_or_else(|| {
                            ApiError::bad_request(format!(
                                "seats[{i}]: seat ids look like <section>-<row>-<number>, e.g. A-1-12"
                            ))
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            SeatChoice::Exact(seats)
        }
        (None, Some(best)) => {
            let count = best.u32("count", 1, limits::MAX_SEATS_PER_USER)?;
            SeatChoice::Best {
                count: NonZeroU32::new(count).unwrap_or(NonZeroU32::MIN),
                category: best
                    .text("category", limits::CATEGORY_MAX_BYTES)?
                    .to_string(),
            }
        }
    };
    let st = &cx.state;
    let now = st.now();
    let result = st
        .engine
        .hold_with_pass(&id, &user, pass, &choice, key.as_ref(), now);
    let reply = match result {
        Ok(r) => r,
        Err(Rejection::EventNotFound) => return Err(Rejection::EventNotFound.into()),
        Err(r) => {
            st.metrics.hold(&id, outcome_label(&r));
            return Err(r.into());
        }
    };
    let reply = st.commit(reply, Write::Hold(&id)).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &hold_doc(&id, &reply.hold, now),
    ))
}

pub async fn get(cx: Cx) -> Reply {
    let id = cx.event_id()?;
    let hold = hold_id(&cx)?;
    let now = cx.state.now();
    let info = cx.state.engine.get_hold(&id, hold, now)?;
    Ok(json_response(StatusCode::OK, &hold_doc(&id, &info, now)))
}

pub async fn confirm(mut cx: Cx) -> Reply {
    let id = cx.event_id()?;
    let hold = hold_id(&cx)?;
    let body = cx.json().await?;
    let order = json::object(&body)?.text("order", 128)?.to_string();
    let st = &cx.state;
    let now = st.now();
    let info = st.engine.confirm(&id, hold, &order, now)?;
    let info = st.commit(info, Write::HoldStep(&id, "confirm")).await?;
    Ok(json_response(StatusCode::OK, &hold_doc(&id, &info, now)))
}

pub async fn extend(mut cx: Cx) -> Reply {
    let id = cx.event_id()?;
    let hold = hold_id(&cx)?;
    let body = cx.json().await?;
    let ttl_s = json::object(&body)?.u32("ttl_s", 1, limits::MAX_HOLD_TTL_S)?;
    let st = &cx.state;
    let now = st.now();
    let info = st.engine.extend(&id, hold, ttl_s, now)?;
    let info = st.commit(info, Write::HoldStep(&id, "extend")).await?;
    Ok(json_response(StatusCode::OK, &hold_doc(&id, &info, now)))
}

pub async fn release(cx: Cx) -> Reply {
    let id = cx.event_id()?;
    let hold = hold_id(&cx)?;
    let st = &cx.state;
    let released = st.engine.release(&id, hold, st.now())?;
    st.commit(released, Write::HoldStep(&id, "release")).await?;
    Ok(no_content())
}
