//! The run's report: JSON for machines, one self-contained HTML file with
//! inline SVG charts for people, and a short text summary for the terminal.
//!
//! Everything shown is read from the [`RunData`] and the [`Verdict`] (its
//! measures through [`Measures`]); nothing here judges.

mod charts;
mod html;

use crate::model::RunData;
use crate::truth::{Measures, Verdict};
use anyhow::Result;
use std::fmt::Write as _;
use std::path::Path;

/// Writes `report.json` (the run and the verdict, pretty).
///
/// Per-VU records are kept up to [`JSON_VU_LIMIT`] VUs (about 1.3 KB each
/// pretty-printed); a bigger run keeps everything else and says how many
/// records it left out (`vus_omitted`), so a million-VU report stays a file
/// one can open.
pub fn write_json(run: &RunData, verdict: &Verdict, path: &Path) -> Result<()> {
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    if run.vus.len() <= JSON_VU_LIMIT {
        serde_json::to_writer_pretty(file, &serde_json::json!({"run": run, "verdict": verdict}))?;
        return Ok(());
    }
    let mut slim = serde_json::to_value(run.clone_without_vus())?;
    if let Some(o) = slim.as_object_mut() {
        o.insert("vus_omitted".into(), run.vus.len().into());
    }
    serde_json::to_writer_pretty(file, &serde_json::json!({"run": slim, "verdict": verdict}))?;
    Ok(())
}

/// Most per-VU records written into `report.json`.
pub const JSON_VU_LIMIT: usize = 100_000;

/// Writes `report.html`: one file, no external resource.
pub fn write_html(run: &RunData, verdict: &Verdict, path: &Path) -> Result<()> {
    std::fs::write(path, html::page(run, verdict))?;
    Ok(())
}

fn opt(v: Option<f64>, decimals: usize, unit: &str) -> String {
    v.filter(|x| x.is_finite())
        .map_or("—".to_owned(), |x| format!("{x:.decimals$}{unit}"))
}

/// A few lines for the terminal: the truths and the headline numbers.
pub fn summary(run: &RunData, verdict: &Verdict) -> String {
    let m = Measures::from_map(&verdict.measures);
    let mut s = String::new();
    for t in &verdict.truths {
        let _ = writeln!(
            s,
            "{} {}: {}",
            if t.passed { "ok  " } else { "FAIL" },
            t.name,
            t.detail
        );
    }
    let dur = run.meta.ended_ms.saturating_sub(run.meta.started_ms) as f64 / 1000.0;
    let _ = writeln!(
        s,
        "{} VUs in {dur:.1} s, {} requests; admitted {}, peak {} active of {}, at most {} admissions in 1 s of {}",
        run.vus.len(),
        run.client.requests,
        m.admitted,
        m.peak_active,
        run.setup.capacity,
        m.max_admissions_per_window,
        run.setup.admit_per_s
    );
    let _ = writeln!(
        s,
        "order: Kendall τ-b {}, {} overtakes; seats sold out after {}, coupon gone after {}",
        opt(m.kendall_tau, 6, ""),
        m.overtakes,
        opt(m.seats_sell_out_s, 1, " s"),
        opt(m.coupon_sell_out_s, 1, " s")
    );
    let _ = writeln!(
        s,
        "polls: {} ({}/s peak), {} per waiting user per s, budget {}/s used {}; ETA rose for {}; {} errors",
        m.polls,
        m.polls_per_s_peak,
        opt(m.polls_per_waiting_user_s, 3, ""),
        run.setup.poll_budget_per_s,
        opt(m.poll_budget_use.map(|u| u * 100.0), 0, "%"),
        opt(m.eta_rose_share.map(|u| u * 100.0), 2, "% of VUs"),
        m.errors
    );
    let _ = writeln!(
        s,
        "{}",
        if verdict.passed() {
            "RESULT: all truths held"
        } else {
            "RESULT: FAILED"
        }
    );
    s
}

#[cfg(test)]
mod sample;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::truth::check;
    use std::path::PathBuf;

    fn sample_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/loadtest-sample")
    }

    /// Writes target/loadtest-sample/report.{html,json}: the report to look
    /// at when changing it.
    #[test]
    fn renders_the_sample_report() {
        let run = sample::run();
        let verdict = check(&run);
        assert!(verdict.passed(), "{}", summary(&run, &verdict));
        let dir = sample_dir();
        std::fs::create_dir_all(&dir).expect("target dir");
        write_html(&run, &verdict, &dir.join("report.html")).expect("html");
        write_json(&run, &verdict, &dir.join("report.json")).expect("json");
        let html = std::fs::read_to_string(dir.join("report.html")).expect("read back");
        assert!(html.starts_with("<!doctype html>"));
        assert_eq!(
            html.matches("<svg").count(),
            8 + 5,
            "8 charts and 5 latency charts"
        );
        assert!(!html.contains("no data"));
        // Self-contained: nothing fetched.
        for needle in [
            "<script",
            "<link",
            "src=\"http",
            "href=\"http",
            "@import",
            "url(",
        ] {
            assert!(!html.contains(needle), "{needle}");
        }
        // The run's text is escaped, the TOML comment included.
        assert!(html.contains("sample &lt;flash sale&gt; &amp; co"));
        assert!(html.contains("# &lt;not a tag&gt;"));
        assert!(!html.contains("<flash sale>"));
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("report.json")).expect("json"))
                .expect("valid json");
        assert_eq!(json["verdict"]["truths"].as_array().map(Vec::len), Some(9));
        assert_eq!(json["verdict"]["measures"]["overtakes"], 0);
    }

    #[test]
    fn an_empty_run_is_a_valid_report() {
        let run = RunData::default();
        let verdict = check(&run);
        let html = html::page(&run, &verdict);
        assert!(html.ends_with("</html>\n"));
        assert!(html.contains("no data"));
        assert!(html.contains("no request was measured"));
        let s = summary(&run, &verdict);
        assert!(s.contains("RESULT: all truths held"), "{s}");
        assert_eq!(s.lines().filter(|l| l.starts_with("ok  ")).count(), 9);
    }

    #[test]
    fn the_summary_says_what_failed() {
        let mut run = sample::run();
        run.readback.coupon_issued += 1;
        let verdict = check(&run);
        let s = summary(&run, &verdict);
        assert!(s.contains("FAIL coupon_conservation: "), "{s}");
        assert!(s.trim_end().ends_with("RESULT: FAILED"), "{s}");
        assert!(html::page(&run, &verdict).contains("✗ FAILED"));
    }

    /// Whatever the data, the checks and every report format come out.
    #[test]
    fn no_run_data_makes_it_panic() {
        for seed in 0..400 {
            let run = crate::truth::fixture::hostile(seed);
            let verdict = check(&run);
            assert_eq!(verdict.truths.len(), 9);
            let page = html::page(&run, &verdict);
            assert!(page.ends_with("</html>\n"));
            assert!(!summary(&run, &verdict).is_empty());
            serde_json::to_vec_pretty(&serde_json::json!({"run": run, "verdict": verdict}))
                .expect("json");
        }
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            html::esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
