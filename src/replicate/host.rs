//! The server's state as the replicator's host: its engine, and its metrics
//! recorder (each server owns one, so numbers land in its `/metrics`). Owns no
//! invariant; it only connects the server to the I6 machinery.

use super::EngineHost;
use crate::state::AppState;
use boxoffice_engine::Engine;

impl EngineHost for AppState {
    fn engine(&self) -> &Engine {
        &self.engine
    }

    fn with_metrics(&self, f: &mut dyn FnMut()) {
        self.metrics.scoped(f);
    }
}
