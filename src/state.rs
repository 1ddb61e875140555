//! Shared server state: the engine, the clock, credentials, limits, metrics
//! and the live-status broadcast. One `Arc<AppState>` per server.

use crate::clock::Clock;
use crate::config::{Settings, SetupError};
use crate::durability::{Durability, NotDurable};
use crate::http::auth::Auth;
use crate::http::limits::JoinLimiter;
use crate::live::Lines;
use crate::metrics::Metrics;
use crate::replicate::EngineHost;
use boxoffice_engine::{keys, Engine, EngineConfig, TickReport, Timestamp};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

/// Everything a request handler needs.
#[derive(Debug)]
pub struct AppState {
    pub engine: Engine,
    pub clock: Arc<dyn Clock>,
    pub settings: Settings,
    pub auth: Auth,
    pub joins: JoinLimiter,
    pub polls: crate::http::limits::PollLimiter,
    pub lines: Lines,
    pub streams: crate::live::Streams,
    pub metrics: Metrics,
    pub durability: Durability,
    ready: AtomicBool,
    /// Bumped by the driver at every heartbeat interval; live streams resend.
    pub heartbeat: watch::Sender<u64>,
    /// Set once at shutdown; live streams end.
    pub closing: watch::Sender<bool>,
}

impl AppState {
    pub fn new(settings: Settings, clock: Arc<dyn Clock>) -> Result<Self, SetupError> {
        let mut cfg = Self::engine_config(&settings)?;
        // Memory mode keeps no journal (changes are numbered, not kept).
        cfg.journal = false;
        // Without a fencing epoch, ids carry the start time in ms (the system
        // clock's unix time), so a restarted server never issues an id an
        // earlier run issued for a different hold or claim (I8).
        cfg.writer_epoch = clock.now().as_millis();
        Self::with_engine(settings, clock, Engine::new(cfg), Durability::Memory)
    }

    /// The engine configuration the settings give (shards, keys derived from
    /// the secret); replication recovers its engine with it.
    pub fn engine_config(settings: &Settings) -> Result<EngineConfig, SetupError> {
        settings.validate()?;
        // Ticket MACs use a key derived from the same secret (docs/passes.md,
        // "Key schedule"); passes are signed with the secret itself.
        let root = keys::derive(&settings.secret, keys::label::TICKET_ROOT, b"");
        let mut cfg = EngineConfig::new(root, crate::config::pass_keys(settings)?);
        cfg.shards = NonZeroUsize::new(settings.shards).unwrap_or(NonZeroUsize::MIN);
        Ok(cfg)
    }

    /// State around an engine built (or recovered) elsewhere.
    pub fn with_engine(
        settings: Settings,
        clock: Arc<dyn Clock>,
        engine: Engine,
        durability: Durability,
    ) -> Result<Self, SetupError> {
        settings.validate()?;
        let joins = JoinLimiter::new(&settings.limits, clock.clone());
        let mut auth_key = [0u8; 16];
        getrandom::fill(&mut auth_key).map_err(|e| SetupError::Random(e.to_string()))?;
        Ok(AppState {
            engine,
            auth: Auth::new(&settings.admin_token, &settings.service_token, auth_key),
            joins,
            polls: crate::http::limits::PollLimiter::new(&settings.limits, clock.clone()),
            lines: Lines::default(),
            streams: crate::live::Streams::new(
                settings.limits.max_streams,
                settings.limits.streams_per_ticket,
            ),
            metrics: Metrics::new(),
            durability,
            ready: AtomicBool::new(false),
            heartbeat: watch::Sender::new(0),
            closing: watch::Sender::new(false),
            clock,
            settings,
        })
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Serving, and (with Redis) the recovered, active writer.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && self.durability.ready()
    }

    /// Whether a state-changing request may be applied now (with Redis:
    /// refused while not the writer, while Redis is down in sync mode, or
    /// while the async backlog is full).
    pub fn admit(&self) -> Result<(), NotDurable> {
        self.durability.admit()
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// One driver step: tick the engine at `now`, count what happened, and
    /// mark the lines that moved (their streams wake at the next flush).
    pub fn tick(&self) -> TickReport {
        let now = self.now();
        let report = self.engine.tick(now);
        self.metrics.record_tick(&report);
        // The report is summed over all events, so any movement wakes every
        // watched line (an engine report per event would narrow this).
        if report.admitted + report.idle_dropped + report.sessions_expired + report.rooms_opened > 0
        {
            self.lines.touch_all();
        }
        report
    }
}

/// The server's state as the replicator's host: its engine, and its metrics
/// recorder (each server owns one, so numbers land in its `/metrics`).
impl EngineHost for AppState {
    fn engine(&self) -> &Engine {
        &self.engine
    }

    fn with_metrics(&self, f: &mut dyn FnMut()) {
        self.metrics.scoped(f);
    }
}

/// A handle on a server's state, for tests and tools.
#[derive(Clone, Debug)]
pub struct Handle {
    state: Arc<AppState>,
}

impl Handle {
    pub(crate) fn new(state: Arc<AppState>) -> Self {
        Handle { state }
    }
    pub fn engine(&self) -> &Engine {
        &self.state.engine
    }
    pub fn now(&self) -> Timestamp {
        self.state.now()
    }
    /// Runs one driver step now and wakes the live streams whose line moved
    /// (what the background driver does every tick and live interval).
    pub fn tick(&self) -> TickReport {
        let report = self.state.tick();
        self.state.lines.flush();
        report
    }
    pub fn is_ready(&self) -> bool {
        self.state.is_ready()
    }
}
