//! The background driver: ticks the engine on the real clock (the engine is
//! clock-free), paces the live-stream heartbeat, and does housekeeping.
//!
//! One task for the whole server: a single heartbeat interval serves every
//! live stream (no timer per stream), and lines that moved wake their streams
//! at most once per live interval (default 500 ms), however busy the line.

use crate::state::AppState;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::MissedTickBehavior;

const HOUSEKEEPING: Duration = Duration::from_secs(5);

/// Runs until the server starts closing.
pub async fn run(state: Arc<AppState>) {
    let mut closing = state.closing.subscribe();
    let mut tick = tokio::time::interval(state.settings.tick_interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut heartbeat = tokio::time::interval(state.settings.heartbeat_interval);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut live = tokio::time::interval(state.settings.live_interval);
    live.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
    housekeeping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                // A panic in the engine is a bug; keep ticking the other events
                // rather than stop time for the whole server.
                if std::panic::catch_unwind(AssertUnwindSafe(|| state.tick())).is_err() {
                    state.metrics.panicked();
                }
            }
            _ = live.tick() => state.lines.flush(),
            _ = heartbeat.tick() => {
                state.heartbeat.send_modify(|n| *n = n.wrapping_add(1));
            }
            _ = housekeeping.tick() => {
                state.joins.retain_recent();
                state.polls.retain_recent();
                state.metrics.upkeep();
            }
            r = closing.wait_for(|c| *c) => {
                let _ = r;
                break;
            }
        }
    }
}
