//! boxoffice's flash-sale simulator (docs/loadtest.md).
//!
//! A scenario (TOML, `loadtest/scenarios/`) says who arrives when and what
//! they do; the driver plays it open-loop over HTTP against a boxoffice
//! server on loopback, recording a [`model::RunData`]; [`truth::check`]
//! turns that into pass/fail verdicts on every promise (no seat sold twice,
//! coupons conserved, capacity and rate, FIFO, ETA honesty, poll load), and
//! [`report`] writes them as JSON and as one self-contained HTML file.

pub mod model;
pub mod report;
pub mod truth;
