//! Events (admin): create or replace, read, delete, pause and resume.

use super::errors::ApiError;
use super::{json_response, no_content, Cx, Reply};
use crate::commit::Write;
use crate::wire::events::{EventDoc, EventRequest};
use boxoffice_engine::{EventConfig, PutOutcome};
use http::StatusCode;

pub async fn put(mut cx: Cx) -> Reply {
    let id = cx.event_id()?;
    let config = EventConfig::from(cx.json::<EventRequest>().await?);
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
    Ok(json_response(status, &EventDoc::new(&info)))
}

pub async fn get(cx: Cx) -> Reply {
    let id = cx.event_id()?;
    let info = cx.state.engine.event(&id, cx.state.now())?;
    Ok(json_response(StatusCode::OK, &EventDoc::new(&info)))
}

pub async fn delete(cx: Cx) -> Reply {
    let id = cx.event_id()?;
    let st = &cx.state;
    let deleted = st.engine.delete_event(&id, st.now())?;
    st.commit(deleted, Write::Event(&id)).await?;
    // A re-created id starts its series over.
    st.metrics.forget_event(&id);
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
    Ok(json_response(StatusCode::OK, &EventDoc::new(&info)))
}
