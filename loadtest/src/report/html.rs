//! The HTML report: one self-contained file (inline CSS and SVG, no script,
//! no font or anything else fetched), readable without a network.
//!
//! Every text that comes from the run (scenario, command, machine, details,
//! error codes) goes through [`esc`]; the SVG comes from plotters, which
//! escapes its own text.

use super::charts::{self, Chart, Line, AMBER, BLUE, GREEN, PURPLE, SLATE};
use crate::model::{OpStats, RunData};
use crate::truth::{self, Measures, Verdict};
use std::fmt::Write as _;

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { color-scheme: light; }
body { margin: 0; background: #f8fafc; color: #0f172a;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 64px; }
h1 { font-size: 26px; margin: 8px 0 4px; font-weight: 650; }
h2 { font-size: 19px; margin: 36px 0 12px; padding-bottom: 6px; border-bottom: 1px solid #e2e8f0; font-weight: 600; }
h3 { font-size: 15px; margin: 0 0 6px; font-weight: 600; color: #334155; }
.sub { color: #475569; margin: 0 0 16px; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 999px; font-size: 14px; font-weight: 600; vertical-align: middle; margin-left: 10px; }
.pass { background: #dcfce7; color: #166534; }
.fail { background: #fee2e2; color: #991b1b; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid #e2e8f0; border-radius: 8px; overflow: hidden; }
th, td { text-align: left; padding: 7px 12px; border-bottom: 1px solid #f1f5f9; vertical-align: top; }
th { background: #f1f5f9; font-weight: 600; font-size: 13px; color: #334155; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.bad td { background: #fef2f2; }
td.state { white-space: nowrap; font-weight: 600; }
tr.ok td.state { color: #15803d; } tr.bad td.state { color: #b91c1c; }
td code, dd code { font-size: 13px; word-break: break-all; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 4px 18px; margin: 0;
  background: #fff; border: 1px solid #e2e8f0; border-radius: 8px; padding: 14px 18px; }
dl.meta dt { color: #475569; } dl.meta dd { margin: 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 10px; margin-bottom: 16px; }
.card { background: #fff; border: 1px solid #e2e8f0; border-radius: 8px; padding: 10px 14px; }
.card .k { font-size: 12px; color: #475569; } .card .v { font-size: 20px; font-weight: 600; font-variant-numeric: tabular-nums; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(540px, 1fr)); gap: 14px; }
.grid.small { grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); }
figure { margin: 0; background: #fff; border: 1px solid #e2e8f0; border-radius: 8px; padding: 12px 12px 6px; }
figure svg { display: block; width: 100%; height: auto; }
figcaption { font-size: 13px; color: #475569; margin: 2px 0 4px; }
.legend { font-size: 12px; color: #334155; display: flex; flex-wrap: wrap; gap: 4px 14px; margin: 0 0 2px 4px; }
.legend i { display: inline-block; width: 16px; height: 3px; margin-right: 6px; vertical-align: middle; border-radius: 2px; }
.legend i.dash { height: 0; border-top: 2px dashed; background: none; }
td.name { white-space: nowrap; }
.nodata { color: #94a3b8; font-style: italic; margin: 24px 0; text-align: center; }
pre { background: #0f172a; color: #e2e8f0; padding: 14px 16px; border-radius: 8px; overflow-x: auto; font-size: 13px; line-height: 1.45; }
.note { color: #475569; font-size: 13px; margin: 8px 0 0; }
"#;

fn opt_f(v: Option<f64>, decimals: usize) -> String {
    v.filter(|x| x.is_finite())
        .map_or("—".to_owned(), |x| format!("{x:.decimals$}"))
}

fn or_unknown(s: &str) -> String {
    if s.is_empty() {
        "(not recorded)".to_owned()
    } else {
        esc(s)
    }
}

/// Seconds with one decimal, or what to say when there are none.
fn secs(v: Option<f64>, none: &str) -> String {
    v.filter(|x| x.is_finite())
        .map_or(none.to_owned(), |x| format!("{x:.1} s"))
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

fn bytes(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

/// Seconds since the run's start of a Unix-ms instant.
fn t_of(run: &RunData, at_ms: u64) -> f64 {
    at_ms.saturating_sub(run.meta.started_ms) as f64 / 1000.0
}

/// The whole page.
pub(crate) fn page(run: &RunData, verdict: &Verdict) -> String {
    let m = Measures::from_map(&verdict.measures);
    let mut h = String::with_capacity(256 * 1024);
    let title = if run.meta.scenario.is_empty() {
        "unnamed scenario"
    } else {
        run.meta.scenario.as_str()
    };
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>boxoffice loadtest: {}</title><style>{STYLE}</style></head><body><main>",
        esc(title)
    );
    header(&mut h, run, verdict, title);
    truths(&mut h, verdict);
    measures(&mut h, &m);
    charts_section(&mut h, run, &m);
    latency(&mut h, run);
    errors(&mut h, run, &m);
    let _ = write!(
        h,
        "<h2>Scenario</h2><pre>{}</pre>",
        if run.meta.scenario_toml.is_empty() {
            "(not recorded)".to_owned()
        } else {
            esc(&run.meta.scenario_toml)
        }
    );
    h.push_str("</main></body></html>\n");
    h
}

fn header(h: &mut String, run: &RunData, verdict: &Verdict, title: &str) {
    let passed = verdict.passed();
    let _ = write!(
        h,
        "<h1>boxoffice loadtest: {}<span class=\"badge {}\">{}</span></h1>",
        esc(title),
        if passed { "pass" } else { "fail" },
        if passed { "all truths held" } else { "FAILED" }
    );
    let dur = duration_s(run);
    let _ = write!(
        h,
        "<p class=\"sub\">{} virtual users · {:.1} s · {} requests · started {}</p>",
        run.vus.len(),
        dur,
        run.client.requests,
        esc(if run.meta.started_at.is_empty() {
            "(unknown)"
        } else {
            &run.meta.started_at
        })
    );
    let limits = if run.meta.limits.is_empty() {
        "(not measured)".to_owned()
    } else {
        run.meta
            .limits
            .iter()
            .map(|l| esc(l))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let s = &run.setup;
    let rows: Vec<(&str, String)> = vec![
        ("Machine", or_unknown(&run.meta.machine)),
        ("Command", format!("<code>{}</code>", or_unknown(&run.meta.command))),
        (
            "Load average",
            format!("{:.2} at start, {:.2} at end", run.meta.load_start, run.meta.load_end),
        ),
        ("What limited the run", limits),
        (
            "Server",
            format!(
                "CPU {}, peak RSS {}",
                run.meta
                    .server_cpu_s
                    .map_or("—".to_owned(), |c| format!("{c:.1} s")),
                run.meta.server_peak_rss.map_or("—".to_owned(), bytes)
            ),
        ),
        (
            "Client",
            format!(
                "CPU {:.1} s, peak RSS {}, {} connections over {} source addresses, max send lag {} ms",
                run.meta.client_cpu_s,
                bytes(run.meta.client_peak_rss),
                run.client.connections,
                run.client.source_addrs.len(),
                run.client.max_send_lag_ms
            ),
        ),
        (
            "Event",
            format!(
                "<code>{}</code>: capacity {}, admit_per_s {}, session {} s, idle timeout {} s, \
                 poll budget {}/s, prequeue {}, identity {:?}, {} seats (≤ {} per user, hold {} s)",
                esc(&s.event),
                s.capacity,
                s.admit_per_s,
                s.session_ttl_s,
                s.idle_timeout_s,
                s.poll_budget_per_s,
                esc(&s.prequeue),
                s.identity,
                s.seats,
                s.max_seats_per_user,
                s.hold_ttl_s
            ),
        ),
        (
            "Coupon",
            format!(
                "<code>{}</code>: stock {}, {} per user",
                esc(&s.coupon),
                s.coupon_stock,
                s.coupon_per_user
            ),
        ),
        (
            "Outcomes record",
            if run.meta.redis {
                format!(
                    "boxoffice:out read back ({} entries)",
                    run.out.as_ref().map_or(0, Vec::len)
                )
            } else {
                "none (no --redis): client records and the readback".to_owned()
            },
        ),
    ];
    h.push_str("<dl class=\"meta\">");
    for (k, v) in rows {
        let _ = write!(h, "<dt>{k}</dt><dd>{v}</dd>");
    }
    h.push_str("</dl>");
}

fn truths(h: &mut String, verdict: &Verdict) {
    h.push_str("<h2>Truths</h2>");
    if verdict.truths.is_empty() {
        h.push_str("<p class=\"nodata\">no truths were checked</p>");
        return;
    }
    h.push_str("<table><tr><th>truth</th><th></th><th>detail</th></tr>");
    for t in &verdict.truths {
        let _ = write!(
            h,
            "<tr class=\"{}\"><td class=\"name\"><code>{}</code></td><td class=\"state\">{}</td><td>{}</td></tr>",
            if t.passed { "ok" } else { "bad" },
            esc(&t.name),
            if t.passed { "✓ held" } else { "✗ FAILED" },
            esc(&t.detail)
        );
    }
    h.push_str("</table>");
}

fn card(h: &mut String, k: &str, v: &str) {
    let _ = write!(
        h,
        "<div class=\"card\"><div class=\"k\">{}</div><div class=\"v\">{}</div></div>",
        esc(k),
        esc(v)
    );
}

fn measures(h: &mut String, m: &Measures) {
    h.push_str("<h2>Measures</h2><div class=\"cards\">");
    card(h, "admitted", &m.admitted.to_string());
    card(
        h,
        "Kendall τ-b (join vs admission)",
        &opt_f(m.kendall_tau, 6),
    );
    card(h, "overtakes", &m.overtakes.to_string());
    card(
        h,
        "seats sold out after",
        &secs(m.seats_sell_out_s, "not sold out"),
    );
    card(
        h,
        "coupon gone after",
        &secs(m.coupon_sell_out_s, "not gone"),
    );
    card(h, "peak active sessions", &m.peak_active.to_string());
    card(
        h,
        "most admissions in 1 s",
        &m.max_admissions_per_window.to_string(),
    );
    card(
        h,
        "polls/s per waiting user",
        &opt_f(m.polls_per_waiting_user_s, 3),
    );
    card(h, "polls/s peak", &m.polls_per_s_peak.to_string());
    card(
        h,
        "poll budget used (busy s)",
        &m.poll_budget_use
            .map_or("—".to_owned(), |u| format!("{:.0}%", u * 100.0)),
    );
    card(
        h,
        "VUs whose ETA rose",
        &m.eta_rose_share
            .map_or("—".to_owned(), |u| format!("{:.2}%", u * 100.0)),
    );
    card(
        h,
        "… while admitting at full rate",
        &m.eta_rose_steady_share
            .map_or("—".to_owned(), |u| format!("{:.2}%", u * 100.0)),
    );
    h.push_str("</div>");
    let _ = write!(
        h,
        "<h3>ETA honesty per position decile</h3>\
         <p class=\"note\">{} VUs told an ETA at their first waiting status and later admitted; \
         actual wait = pass <code>iat</code> − time of that status. Ratio = actual / predicted.</p>",
        m.eta_vus
    );
    if m.eta_deciles.is_empty() {
        h.push_str("<p class=\"nodata\">no VU was told an ETA and admitted</p>");
        return;
    }
    h.push_str(
        "<table><tr><th class=\"num\">decile</th><th class=\"num\">positions</th>\
         <th class=\"num\">VUs</th><th class=\"num\">predicted mean (s)</th>\
         <th class=\"num\">actual mean (s)</th><th class=\"num\">median ratio</th></tr>",
    );
    for d in &m.eta_deciles {
        let _ = write!(
            h,
            "<tr><td class=\"num\">{}</td><td class=\"num\">{}–{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{:.1}</td><td class=\"num\">{:.1}</td><td class=\"num\">{}</td></tr>",
            d.decile,
            d.position_min,
            d.position_max,
            d.count,
            d.predicted_mean_s,
            d.actual_mean_s,
            opt_f(d.ratio_median, 2)
        );
    }
    h.push_str("</table>");
}

fn figure(out: &mut String, title: &str, caption: &str, chart: &Chart, (w, h): (u32, u32)) {
    let svg = charts::render(chart, w, h);
    // No legend for a "no data" note.
    let legend = if svg.starts_with("<svg") {
        charts::legend(chart)
    } else {
        String::new()
    };
    let _ = write!(
        out,
        "<figure><h3>{}</h3><figcaption>{}</figcaption>{legend}{svg}</figure>",
        esc(title),
        esc(caption),
    );
}

fn charts_section(h: &mut String, run: &RunData, m: &Measures) {
    let sec = |f: fn(&crate::model::SecondStats) -> f64| -> Vec<(f64, f64)> {
        run.seconds
            .iter()
            .map(|s| (f64::from(s.t_s), f(s)))
            .collect()
    };
    let smp = |f: fn(&crate::model::Sample) -> u64| -> Vec<(f64, f64)> {
        run.samples
            .iter()
            .map(|s| (t_of(run, s.at_ms), f(s) as f64))
            .collect()
    };
    let s = &run.setup;
    let x_end = duration_s(run);
    h.push_str("<h2>Over time</h2><div class=\"grid\">");
    figure(
        h,
        "Arrivals and joins",
        "per second: arrivals the schedule intended, joins answered",
        &Chart {
            y_desc: "per s".into(),
            lines: vec![
                Line::new("arrivals", SLATE, sec(|x| x.arrivals as f64)),
                Line::new("joins", BLUE, sec(|x| x.joins as f64)),
            ],
            limit: None,
            x_end,
        },
        (charts::WIDTH, charts::HEIGHT),
    );
    let adm: Vec<(f64, f64)> = truth::admissions_per_second(run)
        .into_iter()
        .map(|(t, n)| (f64::from(t), n as f64))
        .collect();
    figure(
        h,
        "Admissions",
        "per second (server instants), against admit_per_s",
        &Chart {
            y_desc: "per s".into(),
            lines: vec![Line::new("admitted", GREEN, adm)],
            limit: Some((
                format!("admit_per_s {}", s.admit_per_s),
                f64::from(s.admit_per_s),
            )),
            x_end,
        },
        (charts::WIDTH, charts::HEIGHT),
    );
    figure(
        h,
        "Queue length",
        "people waiting: the server's count (sampled) and the client's",
        &Chart {
            y_desc: "waiting".into(),
            lines: vec![
                Line::new("server", BLUE, smp(|x| x.waiting)),
                Line::new("client", SLATE, sec(|x| x.in_line as f64)),
            ],
            limit: None,
            x_end,
        },
        (charts::WIDTH, charts::HEIGHT),
    );
    figure(
        h,
        "Active sessions",
        "sessions admitted and not ended (sampled), against capacity",
        &Chart {
            y_desc: "sessions".into(),
            lines: vec![Line::new("active", PURPLE, smp(|x| x.active))],
            limit: Some((format!("capacity {}", s.capacity), f64::from(s.capacity))),
            x_end,
        },
        (charts::WIDTH, charts::HEIGHT),
    );
    figure(
        h,
        "Seats",
        "free, held and sold (sampled)",
        &Chart {
            y_desc: "seats".into(),
            lines: vec![
                Line::new("free", GREEN, smp(|x| x.free)),
                Line::new("held", AMBER, smp(|x| x.held)),
                Line::new("sold", BLUE, smp(|x| x.sold)),
            ],
            limit: None,
            x_end,
        },
        (charts::WIDTH, charts::HEIGHT),
    );
    figure(
        h,
        "Coupons",
        "remaining and issued (sampled)",
        &Chart {
            y_desc: "coupons".into(),
            lines: vec![
                Line::new("remaining", GREEN, smp(|x| x.coupon_remaining)),
                Line::new("issued", BLUE, smp(|x| x.coupon_issued)),
            ],
            limit: None,
            x_end,
        },
        (charts::WIDTH, charts::HEIGHT),
    );
    let budget = (s.poll_budget_per_s > 0).then(|| {
        (
            format!("budget {}/s", s.poll_budget_per_s),
            f64::from(s.poll_budget_per_s),
        )
    });
    figure(
        h,
        "Poll load",
        "status requests per second (all VUs, all tabs) and stream events",
        &Chart {
            y_desc: "per s".into(),
            lines: vec![
                Line::new("polls", BLUE, sec(|x| x.polls as f64)),
                Line::new("stream events", AMBER, sec(|x| x.stream_events as f64)),
            ],
            limit: budget,
            x_end,
        },
        (charts::WIDTH, charts::HEIGHT),
    );
    let per_user: Vec<(f64, f64)> = m
        .polls_per_waiting_user_by_s
        .iter()
        .map(|&(t, r)| (f64::from(t), r))
        .collect();
    figure(
        h,
        "Polls per waiting user",
        "status requests per second divided by the users in line",
        &Chart {
            y_desc: "polls/s/user".into(),
            lines: vec![Line::new("per waiting user", PURPLE, per_user)],
            limit: None,
            x_end,
        },
        (charts::WIDTH, charts::HEIGHT),
    );
    h.push_str("</div>");
}

fn duration_s(run: &RunData) -> f64 {
    run.meta.ended_ms.saturating_sub(run.meta.started_ms) as f64 / 1000.0
}

fn measured(run: &RunData) -> impl Iterator<Item = &OpStats> {
    run.ops.iter().filter(|o| o.total.count > 0)
}

fn latency(h: &mut String, run: &RunData) {
    let x_end = duration_s(run);
    h.push_str(
        "<h2>Latency</h2><p class=\"note\">From each request's intended start (open loop: a late \
         send counts against the server), in milliseconds.</p>",
    );
    if measured(run).next().is_none() {
        h.push_str("<p class=\"nodata\">no request was measured</p>");
        return;
    }
    h.push_str(
        "<table><tr><th>operation</th><th class=\"num\">count</th><th class=\"num\">p50</th>\
         <th class=\"num\">p90</th><th class=\"num\">p99</th><th class=\"num\">p99.9</th>\
         <th class=\"num\">max</th></tr>",
    );
    for o in measured(run) {
        let p = &o.total;
        let _ = write!(
            h,
            "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td></tr>",
            o.op.name(),
            p.count,
            ms(p.p50_us),
            ms(p.p90_us),
            ms(p.p99_us),
            ms(p.p999_us),
            ms(p.max_us)
        );
    }
    h.push_str("</table><h3 style=\"margin-top:18px\">Percentiles per second</h3><div class=\"grid small\">");
    for o in measured(run) {
        let pts = |f: fn(&crate::model::Percentiles) -> u64| -> Vec<(f64, f64)> {
            o.per_second
                .iter()
                .map(|(t, p)| (f64::from(*t), f(p) as f64 / 1000.0))
                .collect()
        };
        figure(
            h,
            o.op.name(),
            "ms, requests finished in each second",
            &Chart {
                y_desc: "ms".into(),
                lines: vec![
                    Line::new("p50", BLUE, pts(|p| p.p50_us)),
                    Line::new("p99", AMBER, pts(|p| p.p99_us)),
                    Line::new("p99.9", PURPLE, pts(|p| p.p999_us)),
                ],
                limit: None,
                x_end,
            },
            (400, 230),
        );
    }
    h.push_str("</div>");
}

fn errors(h: &mut String, run: &RunData, m: &Measures) {
    let _ = write!(
        h,
        "<h2>Errors by code</h2><p class=\"note\">{} in all.</p>",
        m.errors
    );
    if run.errors.is_empty() {
        h.push_str("<p class=\"nodata\">no request failed</p>");
        return;
    }
    let mut rows = run.errors.clone();
    rows.sort_by(|a, b| b.count.cmp(&a.count).then(a.op.cmp(&b.op)));
    h.push_str(
        "<table><tr><th>operation</th><th class=\"num\">status</th><th>code</th>\
         <th class=\"num\">count</th></tr>",
    );
    for e in rows {
        let _ = write!(
            h,
            "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td><code>{}</code></td>\
             <td class=\"num\">{}</td></tr>",
            e.op.name(),
            if e.status == 0 {
                "—".to_owned()
            } else {
                e.status.to_string()
            },
            esc(&e.code),
            e.count
        );
    }
    h.push_str("</table>");
}
