//! Operations: the liveness and readiness documents.

use serde::Serialize;

/// `GET /healthz` and `GET /readyz` when the answer is yes.
#[derive(Debug, Serialize)]
pub struct ProbeDoc {
    status: &'static str,
}

/// The process is up.
pub const HEALTHY: ProbeDoc = ProbeDoc { status: "ok" };
/// The process serves requests.
pub const READY: ProbeDoc = ProbeDoc { status: "ready" };
/// State-changing requests are admitted now.
pub const WRITABLE: ProbeDoc = ProbeDoc { status: "writable" };
