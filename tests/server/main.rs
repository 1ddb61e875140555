//! Server integration tests: one binary (fast to build), a server per test on
//! 127.0.0.1:0 with a manual clock.
#![allow(clippy::unwrap_used)]

mod api;
mod bad_input;
mod common;
mod concurrency;
mod docs;
mod edge;
mod gaps;
mod gate;
mod holds;
mod identity;
mod limits;
mod logs;
mod metrics;
mod openapi_statuses;
mod queue;
mod sse;
