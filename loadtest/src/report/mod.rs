//! The run's report: JSON for machines, one self-contained HTML file with
//! inline SVG charts for people, and a short text summary for the terminal.

use crate::model::RunData;
use crate::truth::Verdict;
use anyhow::Result;
use std::path::Path;

/// Writes `report.json` (the run and the verdict).
pub fn write_json(run: &RunData, verdict: &Verdict, path: &Path) -> Result<()> {
    let doc = serde_json::json!({"run": run, "verdict": verdict});
    std::fs::write(path, serde_json::to_vec_pretty(&doc)?)?;
    Ok(())
}

/// Writes `report.html`.
pub fn write_html(_run: &RunData, _verdict: &Verdict, path: &Path) -> Result<()> {
    std::fs::write(path, "<!doctype html><title>boxoffice loadtest</title>")?;
    Ok(())
}

/// A few lines for the terminal: the truths and the headline numbers.
pub fn summary(_run: &RunData, verdict: &Verdict) -> String {
    let mut s = String::new();
    for t in &verdict.truths {
        s.push_str(&format!(
            "{} {}: {}\n",
            if t.passed { "ok  " } else { "FAIL" },
            t.name,
            t.detail
        ));
    }
    s
}
