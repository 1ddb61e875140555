//! The truth checks: every promise of the contract, judged from a run's
//! recorded facts (filled in by the truth/report work).

use crate::model::RunData;
use serde::{Deserialize, Serialize};

/// One promise, judged.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Truth {
    /// Short stable name (`seats_sold_once`, `coupon_conservation`, …).
    pub name: String,
    pub passed: bool,
    /// One sentence with the numbers behind the verdict.
    pub detail: String,
}

/// All truths of a run and the measurements that are reported, not judged.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Verdict {
    pub truths: Vec<Truth>,
    /// Named measurements (Kendall τ, overtakes, ETA error per decile, poll
    /// load per waiting user …) for the report.
    pub measures: serde_json::Map<String, serde_json::Value>,
}

impl Verdict {
    /// True when every truth held.
    pub fn passed(&self) -> bool {
        self.truths.iter().all(|t| t.passed)
    }
}

/// Judges a run.
pub fn check(_run: &RunData) -> Verdict {
    Verdict::default()
}
