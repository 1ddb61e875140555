//! Live status as Server-Sent Events: `event: status` with the status
//! document, sent at once, whenever it changes, and at every shared
//! heartbeat (at most 15 s apart); the stream ends after `admitted`,
//! `expired` or `left`, and when the server shuts down.
//!
//! A stream owns no timer: it sleeps on its event's line counter (bumped by
//! the driver at most once per live interval when the line moved), the one shared
//! heartbeat, and the shutdown flag, and computes its own status when woken.

use super::errors::ApiError;
use super::queue::status_doc;
use super::{Body, Cx, Reply};
use crate::state::AppState;
use boxoffice_engine::queue::TicketState;
use boxoffice_engine::{EventId, TicketView};
use bytes::Bytes;
use http::{header, HeaderValue, Response};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use serde_json::Value;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::watch;

/// Counts the stream in the open-streams gauge, and holds its place under
/// `--max-streams`, for as long as it lives.
struct Open {
    state: Arc<AppState>,
    event: EventId,
    ticket: String,
    id: u64,
}

impl Open {
    fn new(state: Arc<AppState>, event: EventId, ticket: String, id: u64) -> Self {
        state.metrics.stream_opened();
        Open {
            state,
            event,
            ticket,
            id,
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.state.streams.close(&self.event, &self.ticket, self.id);
        self.state.metrics.stream_closed();
    }
}

/// How a stream renders a ticket's status: the v1 status document, or the
/// gate's document (src/gate). `None` ends the stream.
pub(crate) type Render = fn(&AppState, &EventId, &TicketView) -> Option<Value>;

struct Live {
    open: Open,
    render: Render,
    /// Resolves when a newer stream on the ticket replaced this one.
    ended: tokio::sync::oneshot::Receiver<()>,
    /// The place under `--max-streams` (freed when the stream ends).
    _place: crate::live::StreamPlace,
    line: watch::Receiver<u64>,
    heartbeat: watch::Receiver<u64>,
    closing: watch::Receiver<bool>,
    last: Value,
    first: Option<Bytes>,
    done: bool,
}

fn frame(doc: &Value) -> Bytes {
    Bytes::from(format!("event: status\ndata: {doc}\n\n"))
}

fn terminal(doc: &Value) -> bool {
    let s = doc.get("state").and_then(Value::as_str);
    [
        TicketState::Admitted,
        TicketState::Expired,
        TicketState::Left,
    ]
    .iter()
    .any(|t| Some(t.as_str()) == s)
}

impl Live {
    /// The next frame, or `None` when the stream is over.
    async fn next(&mut self) -> Option<Bytes> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        if self.done {
            return None;
        }
        loop {
            let beat = tokio::select! {
                r = self.line.changed() => { r.ok()?; false }
                r = self.heartbeat.changed() => { r.ok()?; true }
                _ = self.closing.wait_for(|c| *c) => return None,
                _ = &mut self.ended => return None,
            };
            let open = &self.open;
            let st = &open.state;
            // The ticket or event is gone (deleted): nothing more to say.
            let view = st.engine.status(&open.event, &open.ticket, st.now()).ok()?;
            let doc = (self.render)(st, &open.event, &view)?;
            if beat || doc != self.last {
                self.done = terminal(&doc);
                let f = frame(&doc);
                self.last = doc;
                return Some(f);
            }
        }
    }
}

pub async fn stream(cx: Cx) -> Reply {
    let id = cx.event_id()?;
    let ticket = cx.param(1).to_string();
    open(cx.state.clone(), id, ticket, cx.conn.as_ref(), |_, _, v| {
        status_doc(v)
    })
}

/// Opens a live stream of `ticket`'s status, rendered by `render`; gives
/// `conn` (the request's connection slot) back once the stream is open.
pub(crate) fn open(
    st: Arc<AppState>,
    id: EventId,
    ticket: String,
    conn: Option<&super::ConnSlot>,
    render: Render,
) -> Reply {
    // Subscribe before reading the status, so no movement falls in between.
    let line = st.lines.subscribe(&id);
    let view = st.engine.status(&id, &ticket, st.now())?;
    let doc = render(&st, &id, &view).ok_or_else(ApiError::internal)?;
    let opened = match st.streams.open(&id, &ticket) {
        Ok(p) => p,
        Err(full) => {
            st.metrics.stream_cut("max_streams");
            // The connection is not held either: the client polls instead.
            let mut r = ApiError::unavailable(
                format!("{full}; poll the status (GET without /stream) instead"),
                5,
            )
            .into_response();
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return Ok(r);
        }
    };
    for _ in 0..opened.replaced {
        st.metrics.stream_cut("replaced");
    }
    // From here the stream counts under --max-streams only: its connection
    // slot goes back, so streams can never lock out requests, health checks
    // or the admin API.
    if let Some(conn) = conn {
        conn.release();
    }
    let live = Live {
        open: Open::new(st.clone(), id, ticket, opened.place.id),
        render,
        ended: opened.ended,
        _place: opened.place,
        line,
        heartbeat: st.heartbeat.subscribe(),
        closing: st.closing.subscribe(),
        first: Some(frame(&doc)),
        done: terminal(&doc),
        last: doc,
    };
    let frames = futures_util::stream::unfold(live, |mut live| async move {
        let f = live.next().await?;
        Some((Ok::<_, Infallible>(Frame::data(f)), live))
    });
    let body: Body = StreamBody::new(frames).boxed_unsync();
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    // The connection no longer has a slot: it ends with the stream.
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    Ok(r)
}
