//! Events (admin): create or replace, read, delete, pause and resume.

use super::errors::ApiError;
use super::json::{self, Obj};
use super::{json_response, no_content, Cx, Reply};
use crate::commit::Write;
use crate::config::hex;
use boxoffice_engine::config::limits;
use boxoffice_engine::seats::Counts;
use boxoffice_engine::{
    EventConfig, EventInfo, HoldPolicy, PrequeueOrder, PutOutcome, QueueConfig, RowRange,
};
use http::StatusCode;
use serde_json::{json, Map, Value};
use std::num::NonZeroU32;

fn nz(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN)
}

/// Reads an event configuration (ranges checked here, layout rules by the engine).
pub fn parse_config(v: &Value) -> Result<EventConfig, ApiError> {
    let o = json::object(v)?;
    let name = o.str("name")?.to_string();
    let opens_at = o.opt_timestamp("opens_at")?;
    let queue = o
        .opt_object("queue")?
        .map(|q| parse_queue(&q))
        .transpose()?;
    let seats = o.array("seats")?;
    if seats.len() > limits::MAX_ROW_RANGES {
        return Err(ApiError::bad_request(format!(
            "seats: at most {} row ranges",
            limits::MAX_ROW_RANGES
        )));
    }
    let seats = seats
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let r = o.element("seats", i, r)?;
            Ok(RowRange {
                section: r.str("section")?.to_string(),
                row: r.str("row")?.to_string(),
                first: r.u32("first", 1, limits::MAX_SEAT_NUMBER)?,
                last: r.u32("last", 1, limits::MAX_SEAT_NUMBER)?,
                category: r.str("category")?.to_string(),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let holds = match o.opt_object("holds")? {
        None => HoldPolicy::default(),
        Some(h) => parse_holds(&h)?,
    };
    Ok(EventConfig {
        name,
        opens_at,
        queue,
        seats,
        holds,
    })
}

fn parse_queue(q: &Obj<'_>) -> Result<QueueConfig, ApiError> {
    let prequeue = match q.opt_str("prequeue")? {
        None | Some("random") => PrequeueOrder::Random,
        Some("fifo") => PrequeueOrder::Fifo,
        Some(_) => {
            let f = q.name("prequeue");
            return Err(
                ApiError::bad_request(format!("{f}: expected \"random\" or \"fifo\""))
                    .with("field", f),
            );
        }
    };
    Ok(QueueConfig {
        capacity: nz(q.u32("capacity", 1, limits::MAX_CAPACITY)?),
        admit_per_s: nz(q.u32("admit_per_s", 1, limits::MAX_ADMIT_PER_S)?),
        session_ttl_s: nz(q
            .opt_u32("session_ttl_s", 1, limits::MAX_SESSION_TTL_S)?
            .unwrap_or(600)),
        idle_timeout_s: nz(q
            .opt_u32("idle_timeout_s", 1, limits::MAX_IDLE_TIMEOUT_S)?
            .unwrap_or(120)),
        max_waiting: nz(q
            .opt_u32("max_waiting", 1, limits::MAX_WAITING)?
            .unwrap_or(5_000_000)),
        prequeue,
    })
}

fn parse_holds(h: &Obj<'_>) -> Result<HoldPolicy, ApiError> {
    let d = HoldPolicy::default();
    let ttl_s = h
        .opt_u32("ttl_s", 1, limits::MAX_HOLD_TTL_S)?
        .unwrap_or(d.ttl_s.get());
    // Without an explicit maximum, a longer ttl raises the default maximum with it.
    let max_ttl_s = h
        .opt_u32("max_ttl_s", 1, limits::MAX_HOLD_TTL_S)?
        .unwrap_or(d.max_ttl_s.get().max(ttl_s));
    let per_user = h
        .opt_u32("max_seats_per_user", 1, limits::MAX_SEATS_PER_USER)?
        .unwrap_or(d.max_seats_per_user.get());
    Ok(HoldPolicy {
        ttl_s: nz(ttl_s),
        max_ttl_s: nz(max_ttl_s),
        max_seats_per_user: nz(per_user),
    })
}

pub fn counts_doc(c: &Counts) -> Value {
    json!({"free": c.free, "held": c.held, "sold": c.sold})
}

/// The event document.
pub fn event_doc(e: &EventInfo) -> Value {
    let c = &e.config;
    let queue = c.queue.as_ref().map(|q| {
        json!({
            "capacity": q.capacity.get(),
            "admit_per_s": q.admit_per_s.get(),
            "session_ttl_s": q.session_ttl_s.get(),
            "idle_timeout_s": q.idle_timeout_s.get(),
            "max_waiting": q.max_waiting.get(),
            "prequeue": match q.prequeue { PrequeueOrder::Random => "random", PrequeueOrder::Fifo => "fifo" },
        })
    });
    let seats: Vec<Value> = c
        .seats
        .iter()
        .map(|r| json!({"section": r.section, "row": r.row, "first": r.first, "last": r.last, "category": r.category}))
        .collect();
    let categories: Map<String, Value> = e
        .seats
        .categories
        .iter()
        .map(|(k, v)| (k.clone(), counts_doc(v)))
        .collect();
    json!({
        "event": e.id.as_str(),
        "name": c.name,
        "opens_at": c.opens_at.map(|t| t.to_rfc3339()),
        "created_at": e.created_at.to_rfc3339(),
        "queue": queue,
        "seats": seats,
        "holds": {
            "ttl_s": c.holds.ttl_s.get(),
            "max_ttl_s": c.holds.max_ttl_s.get(),
            "max_seats_per_user": c.holds.max_seats_per_user.get(),
        },
        "phase": e.phase.as_str(),
        "waiting": e.waiting,
        "admitted": e.admitted,
        "served": e.served,
        "free": e.seats.total.free,
        "held": e.seats.total.held,
        "sold": e.seats.total.sold,
        "categories": categories,
        "prequeue_seed_sha256": e.prequeue_seed_sha256.map(|s| hex(&s)),
        "prequeue_seed": e.prequeue_seed.map(|s| hex(&s)),
    })
}

pub async fn put(mut cx: Cx) -> Reply {
    let id = cx.event_id()?;
    let body = cx.json().await?;
    let config = parse_config(&body)?;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|_| ApiError::unavailable("no randomness from the OS for the event seed", 1))?;
    let st = &cx.state;
    let put = st.engine.put_event(&id, config, seed, st.now())?;
    let (outcome, info) = st.commit(put, Write::Event(&id)).await?;
    let status = match outcome {
        PutOutcome::Created => StatusCode::CREATED,
        PutOutcome::Replaced => StatusCode::OK,
    };
    Ok(json_response(status, &event_doc(&info)))
}

pub async fn get(cx: Cx) -> Reply {
    let id = cx.event_id()?;
    let info = cx.state.engine.event(&id, cx.state.now())?;
    Ok(json_response(StatusCode::OK, &event_doc(&info)))
}

pub async fn delete(cx: Cx) -> Reply {
    let id = cx.event_id()?;
    let st = &cx.state;
    let deleted = st.engine.delete_event(&id, st.now())?;
    st.commit(deleted, Write::Event(&id)).await?;
    Ok(no_content())
}

pub async fn pause(mut cx: Cx, pause: bool) -> Reply {
    let id = cx.event_id()?;
    // No body is needed; one that is sent must still be JSON within limits.
    cx.json_opt().await?;
    let st = &cx.state;
    let now = st.now();
    let info = if pause {
        st.engine.pause(&id, now)?
    } else {
        st.engine.resume(&id, now)?
    };
    let info = st.commit(info, Write::Event(&id)).await?;
    Ok(json_response(StatusCode::OK, &event_doc(&info)))
}
