//! boxoffice server: the v1 HTTP API (hyper 1 on tokio) over the sans-I/O engine.
//!
//! The binary is a thin shell around [`Server`]: tests start the same server
//! in-process on `127.0.0.1:0` with a [`ManualClock`](clock::ManualClock), so
//! no test sleeps to wait for a TTL. The engine never reads a clock; the
//! [`driver`] ticks it with this crate's [`clock::Clock`].
#![forbid(unsafe_code)]

pub mod clock;
pub mod commit;
pub mod config;
pub mod demo;
pub mod driver;
pub mod durability;
pub mod gate;
pub mod http;
pub mod live;
pub mod metrics;
pub mod replicate;
mod server;
pub mod state;
pub mod wire;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{Limits, Settings, SetupError};
pub use http::router::{routes, RouteInfo};
pub use state::Handle;

use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// A configured server, ready to serve on a listener.
#[derive(Debug)]
pub struct Server {
    state: Arc<state::AppState>,
}

impl Server {
    /// Builds the engine (and the demo event with `settings.demo`).
    pub fn new(settings: Settings, clock: Arc<dyn Clock>) -> Result<Self, SetupError> {
        let state = state::AppState::new(settings, clock)?;
        with_demo(&state)?;
        Ok(Server {
            state: Arc::new(state),
        })
    }

    /// A handle on the running state (engine, manual ticks), for tests and tools.
    pub fn handle(&self) -> Handle {
        Handle::new(self.state.clone())
    }

    /// Serves until `shutdown` resolves, then stops accepting, closes live
    /// streams and waits (bounded) for in-flight requests.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> std::io::Result<()> {
        server::serve(self.state, listener, None, shutdown).await
    }

    /// [`Server::serve`], plus the gate (`settings.gate`) on `gate`: the
    /// waiting room in front of the booking backend (docs/gate.md).
    pub async fn serve_gated(
        self,
        listener: TcpListener,
        gate: Option<TcpListener>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> std::io::Result<()> {
        server::serve(self.state, listener, gate, shutdown).await
    }
}

/// Runs a server on the system clock until `shutdown` resolves; with
/// `settings.redis`, replicated (see [`replicate`]); with `settings.gate`,
/// the gate on `gate` (bound by the caller, so a taken port fails at start).
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    gate: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RunError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match settings.redis.clone() {
        None => {
            let server = Server::new(settings, clock)?;
            server.serve_gated(listener, gate, shutdown).await?;
            Ok(())
        }
        Some(url) => run_replicated(&url, settings, clock, listener, gate, shutdown).await,
    }
}

/// With Redis: recover (or wait as a standby), answering 503 on the listener
/// meanwhile; serve as the writer; on shutdown ship what is pending and hand
/// the lease over.
async fn run_replicated(
    url: &str,
    settings: Settings,
    clock: Arc<dyn Clock>,
    listener: TcpListener,
    gate: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RunError> {
    let cfg = state::AppState::engine_config(&settings)?;
    let mode = match settings.durability {
        config::DurabilityMode::Sync => replicate::Mode::Sync,
        config::DurabilityMode::Async => replicate::Mode::Async,
        config::DurabilityMode::SyncReplica => replicate::Mode::SyncReplica,
    };
    let opts = replicate::Options {
        mode,
        max_lag: settings.async_max_lag,
        replicas: settings.redis_replicas,
        events_out_maxlen: settings.events_out_maxlen,
        ..replicate::Options::default()
    };
    let rep = replicate::Replicator::new(url, opts)?;
    let metrics_token = settings.metrics_token.clone();
    tokio::pin!(shutdown);
    let recovering = async {
        let c = clock.clone();
        tokio::select! {
            r = rep.recover_engine(cfg, move || c.now()) => Some(r),
            () = &mut shutdown => None,
        }
    };
    let Some(engine) =
        replicate::warmup::answer_until(&listener, &rep, metrics_token.as_deref(), recovering)
            .await
    else {
        rep.abort();
        return Ok(());
    };
    let engine = engine?;
    // Ids issued from now on carry our fencing epoch, newer than any earlier
    // writer's: an id of a change that writer lost names nothing here (I8).
    engine.set_writer_epoch(rep.epoch());
    let durability = durability::Durability::Redis(rep.clone());
    let state = state::AppState::with_engine(settings, clock, engine, durability)?;
    with_demo(&state)?;
    let state = Arc::new(state);
    rep.spawn(state.clone())?;
    // A standby's gate accepts nothing until it takes over (its visitors
    // wait in the listen backlog; the load balancer reads /readyz).
    let served = server::serve(state, listener, gate, shutdown).await;
    rep.shutdown().await;
    served?;
    Ok(())
}

/// With `settings.demo`, creates the demo event and coupon in a built state
/// (the state itself knows nothing of the demo).
fn with_demo(state: &state::AppState) -> Result<(), SetupError> {
    if !state.settings.demo {
        return Ok(());
    }
    demo::ensure(&state.engine, state.now()).map_err(|e| SetupError::Demo(e.to_string()))
}

/// Why [`run`] stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error("serving failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("replication: {0}")]
    Replicate(#[from] replicate::ReplicateError),
}
