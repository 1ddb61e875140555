//! Live status as Server-Sent Events: `event: status` with the status
//! document, sent at once, whenever it changes, and at every shared
//! heartbeat (at most 15 s apart); the stream ends after `admitted`,
//! `expired` or `left`, and when the server shuts down.
//!
//! A stream owns no timer: it sleeps on its event's line counter (bumped by
//! the driver at most once per live interval when the line moved), the one shared
//! heartbeat, and the shutdown flag, and when woken takes its ticket's frame
//! at the current counts from the ticket's feed ([`TicketFeed`]): the first
//! of the ticket's streams to get there reads the status and serialises it,
//! once, straight into the frame's bytes ([`frame`]); the others clone them.
//! A stream sends a frame whose bytes differ from the last it sent, or any
//! frame at a new heartbeat.

use super::errors::ApiError;
use super::{Body, Cx, Reply};
use crate::live::{DocKind, Frame, TicketFeed, Versions};
use crate::state::AppState;
use crate::wire::queue::{StatusDoc, StreamStatusDoc};
use boxoffice_engine::queue::TicketState;
use boxoffice_engine::{EventId, TicketView};
use bytes::Bytes;
use http::{header, HeaderValue, Response};
use http_body::Frame as BodyFrame;
use http_body_util::{BodyExt, StreamBody};
use serde::Serialize;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::watch;

/// Counts the stream in the open-streams gauge, and holds its entry on the
/// ticket, for as long as it lives.
struct Open {
    state: Arc<AppState>,
    feed: Arc<TicketFeed>,
    id: u64,
}

impl Open {
    fn new(state: Arc<AppState>, feed: Arc<TicketFeed>, id: u64) -> Self {
        state.metrics.stream_opened();
        Open { state, feed, id }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.state.streams.close(&self.feed, self.id);
        self.state.metrics.stream_closed();
    }
}

/// How a stream renders a ticket's status: its kind (frames of one kind
/// are shared by the ticket's streams) and the function that gives the
/// frame's bytes ([`frame`] of the document). `None` ends the stream.
#[derive(Clone, Copy)]
pub(crate) struct Render {
    pub kind: DocKind,
    pub frame: fn(&AppState, &EventId, &TicketView) -> Option<Bytes>,
}

/// `event: status\ndata: <doc as JSON>\n\n`, serialised once and copied out
/// at its exact size (a frame may be kept for as long as its streams are
/// open). `None` when the document does not serialise (a timestamp past year
/// 9999: a bug), which ends a stream rather than sending `data: null`.
pub(crate) fn frame<T: Serialize>(doc: &T) -> Option<Bytes> {
    super::json_bytes(b"event: status\ndata: ", doc, b"\n\n")
}

/// The v1 status document's frame (`GET …/queue/{ticket}/stream`).
fn status_frame(_: &AppState, _: &EventId, v: &TicketView) -> Option<Bytes> {
    status_bytes(v)
}

fn status_bytes(v: &TicketView) -> Option<Bytes> {
    frame(&StreamStatusDoc::from(&StatusDoc::new(v)))
}

/// Whether the stream ends after this view's frame.
fn terminal(v: &TicketView) -> bool {
    matches!(
        v.status.state,
        TicketState::Admitted | TicketState::Expired | TicketState::Left
    )
}

/// Where a stream is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The first frame (`last`) is still to be sent; `true`: it is also
    /// the last.
    First(bool),
    Live,
    Done,
}

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
    /// The frame last sent (its bytes are shared with the ticket's feed).
    last: Bytes,
    /// The heartbeat count at the last frame sent.
    beat: u64,
    step: Step,
}

impl Live {
    /// The next frame, or `None` when the stream is over.
    async fn next(&mut self) -> Option<Bytes> {
        match self.step {
            Step::First(only) => {
                self.step = if only { Step::Done } else { Step::Live };
                return Some(self.last.clone());
            }
            Step::Done => return None,
            Step::Live => {}
        }
        loop {
            tokio::select! {
                r = self.line.changed() => r.ok()?,
                r = self.heartbeat.changed() => r.ok()?,
                _ = self.closing.wait_for(|c| *c) => return None,
                _ = &mut self.ended => return None,
            }
            // Both counts as they are now (whichever woke us), so a stream
            // woken by both at once renders once.
            let at = Versions {
                line: *self.line.borrow_and_update(),
                beat: *self.heartbeat.borrow_and_update(),
            };
            let Live { open, render, .. } = &*self;
            let (st, feed) = (&open.state, &open.feed);
            let f = feed.frame(render.kind, at, || {
                // The ticket or event is gone (deleted): nothing more to say.
                let view = st
                    .engine
                    .status(feed.event(), feed.ticket(), st.now())
                    .ok()?;
                Some(Frame {
                    bytes: (render.frame)(st, feed.event(), &view)?,
                    last: terminal(&view),
                })
            })?;
            if at.beat != self.beat || f.bytes != self.last {
                self.beat = at.beat;
                if f.last {
                    self.step = Step::Done;
                }
                self.last = f.bytes.clone();
                return Some(f.bytes);
            }
        }
    }
}

pub async fn stream(cx: Cx) -> Reply {
    let id = cx.event_id()?;
    let render = Render {
        kind: DocKind::Status,
        frame: status_frame,
    };
    open(cx.state.clone(), id, cx.param(1), cx.conn.as_ref(), render)
}

/// Opens a live stream of `ticket`'s status, rendered by `render`; gives
/// `conn` (the request's connection slot) back once the stream is open.
pub(crate) fn open(
    st: Arc<AppState>,
    id: EventId,
    ticket: &str,
    conn: Option<&super::ConnSlot>,
    render: Render,
) -> Reply {
    // Subscribe before reading the status, so no movement falls in between
    // (and the first frame is at least as new as the counts it is kept at).
    let line = st.lines.subscribe(&id);
    let heartbeat = st.heartbeat.subscribe();
    let at = Versions {
        line: *line.borrow(),
        beat: *heartbeat.borrow(),
    };
    let view = st.engine.status(&id, ticket, st.now())?;
    let first = Frame {
        bytes: (render.frame)(&st, &id, &view).ok_or_else(ApiError::internal)?,
        last: terminal(&view),
    };
    let opened = match st.streams.open(&id, ticket) {
        Ok(p) => p,
        Err(full) => {
            st.metrics.stream_cut(crate::metrics::CutReason::MaxStreams);
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
        st.metrics.stream_cut(crate::metrics::CutReason::Replaced);
    }
    // From here the stream counts under --max-streams only: its connection
    // slot goes back, so streams can never lock out requests, health checks
    // or the admin API.
    if let Some(conn) = conn {
        conn.release();
    }
    // The ticket's other streams may use this read of the status too.
    opened.feed.keep(render.kind, at, &first);
    let live = Live {
        open: Open::new(st.clone(), opened.feed, opened.place.id),
        render,
        ended: opened.ended,
        _place: opened.place,
        line,
        heartbeat,
        closing: st.closing.subscribe(),
        last: first.bytes,
        beat: at.beat,
        step: Step::First(first.last),
    };
    let frames = futures_util::stream::unfold(live, |mut live| async move {
        let f = live.next().await?;
        Some((Ok::<_, Infallible>(BodyFrame::data(f)), live))
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

#[cfg(test)]
mod tests {
    use super::*;
    use boxoffice_engine::queue::QueueStatus;
    use boxoffice_engine::{Timestamp, UserId};

    fn view(state: TicketState, position: Option<u64>, pass: Option<(&str, u64)>) -> TicketView {
        TicketView {
            event: EventId::new("e-1.x").expect("valid"),
            status: QueueStatus {
                ticket: "AQAAAAAAAAB0aWNrZXQ".into(),
                user: UserId::new("u \"1\" 서울 \\ </script> é").expect("valid"),
                state,
                position,
                waiting: 50_000,
                eta_s: position.map(|p| p.saturating_mul(3)),
                poll_after_ms: 2000,
                admission: None,
            },
            pass: pass.map(|(p, _)| p.to_string()),
            pass_expires_at: pass.map(|(_, ms)| Timestamp::from_millis(ms)),
        }
    }

    #[test]
    fn the_status_frame_is_byte_for_byte_what_the_value_gave() {
        let views = [
            view(TicketState::Waiting, Some(12), None),
            view(TicketState::Prequeue, None, None),
            view(
                TicketState::Admitted,
                None,
                Some(("v1.k.p.s", 1_800_000_000_123)),
            ),
            view(TicketState::Expired, None, None),
            view(TicketState::Waiting, Some(u64::MAX), None),
        ];
        for v in &views {
            // What the stream sent before frames were serialised straight to
            // bytes: the document through `serde_json::Value`.
            let value = serde_json::to_value(StatusDoc::new(v)).expect("serialises");
            let before = format!("event: status\ndata: {value}\n\n");
            let f = status_bytes(v).expect("serialises");
            assert_eq!(std::str::from_utf8(&f), Ok(before.as_str()));
        }
        // Past year 9999: no frame (the stream ends), as before.
        let late = view(TicketState::Admitted, None, Some(("p", u64::MAX)));
        assert!(status_bytes(&late).is_none());
    }

    #[test]
    fn frames_are_whole_and_apart_from_the_scratch() {
        let v = view(TicketState::Waiting, Some(1), None);
        let a = status_bytes(&v).expect("serialises");
        let b = status_bytes(&v).expect("serialises");
        assert_eq!(a, b);
        assert!(a.starts_with(b"event: status\ndata: {") && a.ends_with(b"}\n\n"));
        assert_ne!(a.as_ptr(), b.as_ptr(), "each its own copy of the scratch");
    }
}
