//! The operator's kit in deploy/ (issue 13), checked with the real tools:
//!
//! - the dashboard JSON and the alert rules name only metrics the server
//!   defines, every panel uses the `datasource` variable, and every alert's
//!   `runbook` annotation is a heading of docs/operations.md (no tool needed);
//! - `promtool check rules` and `promtool test rules` (the rules' unit tests,
//!   deploy/prometheus/tests/);
//! - a real Prometheus scrapes a real `boxoffice serve` writer and a standby
//!   on a private redis-server while traffic runs (a waiting room, joins,
//!   polls, holds, a coupon), then every query of every dashboard panel is
//!   evaluated through Prometheus's HTTP API: it fails, naming the panel, if
//!   a query errors or returns no series, except for the few targets in
//!   [`MAY_BE_EMPTY`], whose series only exist after something this short
//!   run does not do. So a renamed metric or label can never silently blank
//!   a panel. The loaded alert rules must all evaluate too;
//! - `systemd-analyze verify` of the unit (skipped where systemd-analyze is
//!   missing or cannot run, e.g. some containers).
//!
//! prometheus and promtool come from Debian's `prometheus` package
//! (scripts/ensure-test-deps.sh). Without them those tests skip with a
//! message, unless BOXOFFICE_REQUIRE_PROMETHEUS=1 (`make test`), where they
//! fail: CI must never pass by skipping. Every process is started here, on
//! free loopback ports, and killed by its PID.

use boxoffice_testkit::{self as testkit, ChildGuard, RedisOptions, RedisServer, TempDir};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Set to `1` to make missing prometheus/promtool a failure, not a skip.
const REQUIRE_ENV: &str = "BOXOFFICE_REQUIRE_PROMETHEUS";

const ADMIN: &str = "admin-token-ops-prometheus";
const SERVICE: &str = "service-token-ops-prometheus";
const SECRET: &str = "an-ops-prometheus-test-secret-32b";
const EVENT: &str = "ops-e1";
const COUPON: &str = "ops-c1";

/// Dashboard targets (panel title, refId) allowed to return no series here,
/// and why. Each entry must name a real target (checked), so the list
/// cannot outlive the panel. docs/operations.md ("Dashboard") lists them.
const MAY_BE_EMPTY: &[(&str, &str, &str)] = &[
    (
        "Snapshot duration p99",
        "A",
        "the first snapshot is written 60 s after the first change; this run is shorter",
    ),
    (
        "Snapshot size",
        "A",
        "boxoffice_replication_snapshot_bytes is set by the first snapshot",
    ),
];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

/// `name` on PATH, if it is there.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The tool, or None after saying why the test is skipped; with
/// BOXOFFICE_REQUIRE_PROMETHEUS=1 a missing tool fails the test instead.
fn require(tool: &str) -> Option<PathBuf> {
    if let Some(p) = on_path(tool) {
        return Some(p);
    }
    if std::env::var(REQUIRE_ENV).as_deref() == Ok("1") {
        panic!(
            "{REQUIRE_ENV}=1 but `{tool}` is not on PATH; `make test` installs Debian's \
             prometheus package, which ships prometheus and promtool (scripts/ensure-test-deps.sh)"
        );
    }
    eprintln!("skipping: `{tool}` not found (Debian package prometheus; make test installs it)");
    None
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

// ------------------------------------------------------------------ dashboard

/// One query of the dashboard: its panel's title, refId and expression.
#[derive(Debug)]
struct Target {
    panel: String,
    ref_id: String,
    expr: String,
}

fn dashboard() -> Value {
    serde_json::from_str(&read("deploy/grafana/boxoffice.json"))
        .unwrap_or_else(|e| panic!("deploy/grafana/boxoffice.json is not JSON: {e}"))
}

/// Every panel, rows' nested panels included (a collapsed row keeps its
/// panels inside it), rows themselves left out.
fn panels(dash: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dash["panels"].as_array().into_iter().flatten() {
        if p["type"] == "row" {
            out.extend(p["panels"].as_array().into_iter().flatten());
        } else {
            out.push(p);
        }
    }
    out
}

fn targets(dash: &Value) -> Vec<Target> {
    let mut out = Vec::new();
    for p in panels(dash) {
        let panel = p["title"].as_str().unwrap_or("").to_string();
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push(Target {
                panel: panel.clone(),
                ref_id: t["refId"].as_str().unwrap_or("").to_string(),
                expr: t["expr"].as_str().unwrap_or("").to_string(),
            });
        }
    }
    out
}

/// The `boxoffice_*` metric names an expression or rule file uses, with a
/// histogram's `_bucket`/`_sum`/`_count` taken off.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("boxoffice_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let mut name = &tail[..end];
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix) {
                name = base;
            }
        }
        // Not metric names: the job label value and file names.
        if name.len() > "boxoffice_".len() {
            names.insert(name.to_string());
        }
        rest = &tail[end..];
    }
    names
}

/// docs/operations.md's headings as GitHub anchors.
fn anchors(markdown: &str) -> BTreeSet<String> {
    markdown
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|h| {
            h.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
                .map(|c| if c == ' ' { '-' } else { c })
                .collect()
        })
        .collect()
}

#[test]
fn dashboard_and_rules_name_real_metrics_and_runbook_sections() {
    let dash = dashboard();
    assert!(
        dash["schemaVersion"].as_u64().unwrap_or(0) >= 36,
        "schemaVersion"
    );
    let vars = dash["templating"]["list"].as_array().expect("templating");
    let var = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no ${name} variable"))
    };
    assert_eq!(var("datasource")["type"], "datasource");
    assert_eq!(var("datasource")["query"], "prometheus");
    assert_eq!(var("event")["type"], "query");
    assert!(var("event")["definition"]
        .as_str()
        .is_some_and(|d| d.starts_with("label_values(") && d.contains("event")));

    let mut titles = BTreeSet::new();
    for p in panels(&dash) {
        let title = p["title"].as_str().unwrap_or("");
        assert!(titles.insert(title), "two panels titled {title:?}");
        assert_eq!(
            p["datasource"]["uid"], "${datasource}",
            "panel {title:?}: datasource"
        );
        assert!(
            p["description"].as_str().is_some_and(|d| !d.is_empty()),
            "panel {title:?}: no description"
        );
        assert!(
            p["fieldConfig"]["defaults"]["unit"]
                .as_str()
                .is_some_and(|u| !u.is_empty()),
            "panel {title:?}: no unit"
        );
        let ts = p["targets"].as_array().map_or(&[][..], Vec::as_slice);
        assert!(!ts.is_empty(), "panel {title:?}: no query");
        for t in ts {
            assert_eq!(
                t["datasource"]["uid"], "${datasource}",
                "panel {title:?}: a target's datasource"
            );
        }
    }

    // Every metric used is one the server defines (a typo fails here even
    // without Prometheus installed).
    let source = read("src/metrics/mod.rs") + &read("src/replicate/metrics.rs");
    let rules = read("deploy/prometheus/boxoffice.rules.yml");
    let used = targets(&dash)
        .iter()
        .flat_map(|t| metric_names(&t.expr))
        .chain(metric_names(&rules))
        .collect::<BTreeSet<_>>();
    for name in &used {
        // The replication names are constants: match their string literal.
        assert!(
            source.contains(&format!("\"{name}\"")),
            "{name} is used by deploy/ but defined nowhere in src/metrics/mod.rs or src/replicate/metrics.rs"
        );
    }

    // Every alert links its own runbook section, and that section exists.
    let sections = anchors(&read("docs/operations.md"));
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    let runbooks: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("runbook: \"docs/operations.md#"))
        .filter_map(|l| l.strip_suffix('"'))
        .collect();
    assert!(alerts.len() >= 10, "alerts found: {alerts:?}");
    assert_eq!(alerts.len(), runbooks.len(), "one runbook per alert");
    for (alert, anchor) in alerts.iter().zip(&runbooks) {
        assert_eq!(
            *anchor,
            format!("alert-{}", alert.to_lowercase()),
            "{alert}'s runbook"
        );
        assert!(
            sections.contains(*anchor),
            "{alert}: docs/operations.md has no heading `Alert: {alert}` (#{anchor})"
        );
    }
}

// -------------------------------------------------------------------- promtool

#[test]
fn alert_rules_pass_promtool_check_and_unit_tests() {
    let Some(promtool) = require("promtool") else {
        return;
    };
    let dir = repo().join("deploy/prometheus");
    let (ok, out) = run(Command::new(&promtool).current_dir(&dir).args([
        "check",
        "rules",
        "boxoffice.rules.yml",
    ]));
    assert!(ok, "promtool check rules:\n{out}");
    eprintln!("{out}");
    let (ok, out) = run(Command::new(&promtool).current_dir(&dir).args([
        "test",
        "rules",
        "tests/boxoffice.rules.test.yml",
    ]));
    assert!(ok, "promtool test rules:\n{out}");
    eprintln!("{out}");
}

// --------------------------------------------------------------------- systemd

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    let unit = read("deploy/systemd/boxoffice.service");

    // The fd limit covers both caps at their defaults plus the gate and
    // the rest (the unit's comment has the arithmetic).
    let nofile: u64 = unit
        .lines()
        .find_map(|l| l.strip_prefix("LimitNOFILE="))
        .and_then(|v| v.trim().parse().ok())
        .expect("LimitNOFILE in the unit");
    assert!(
        nofile >= 10_000 + 10_000 + 1024 + 1024,
        "LimitNOFILE={nofile}"
    );
    for key in [
        "DynamicUser=yes",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=",
        "SystemCallFilter=@system-service",
        "RestrictAddressFamilies=",
        "EnvironmentFile=/etc/boxoffice/boxoffice.env",
    ] {
        assert!(
            unit.lines().any(|l| l.starts_with(key)),
            "the unit lacks {key}"
        );
    }
    // Every variable the example sets or shows is one a flag reads.
    let config = read("src/config.rs");
    for l in read("deploy/systemd/boxoffice.env.example").lines() {
        let l = l.trim_start_matches('#');
        if let Some((key, _)) = l.split_once('=') {
            if key.starts_with("BOXOFFICE_") && !key.contains(' ') {
                assert!(
                    config.contains(&format!("env = \"{key}\"")),
                    "{key} in boxoffice.env.example is read by no flag"
                );
            }
        }
    }

    let Some(analyze) = on_path("systemd-analyze") else {
        eprintln!("skipping systemd-analyze verify: systemd-analyze not installed");
        return;
    };
    let dir = TempDir::new("ops-systemd").expect("temp dir");
    // A unit known to be good first: if even that fails, systemd-analyze
    // cannot work here (no systemd in some containers), which says nothing
    // about our unit.
    let probe = dir.path().join("probe.service");
    std::fs::write(
        &probe,
        "[Unit]\nDescription=probe\n[Service]\nExecStart=/bin/true\n",
    )
    .expect("write probe");
    let (ok, out) = run(Command::new(&analyze).arg("verify").arg(&probe));
    if !ok {
        eprintln!("skipping systemd-analyze verify: it cannot run here (probe unit):\n{out}");
        return;
    }
    // verify checks that ExecStart's binary exists: point it at the one
    // cargo built. The file name must stay boxoffice.service.
    let path = dir.path().join("boxoffice.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/boxoffice", env!("CARGO_BIN_EXE_boxoffice")),
    )
    .expect("write unit");
    let (ok, out) = run(Command::new(&analyze).arg("verify").arg(&path));
    // Unknown or misplaced keys are only warnings (exit 0): fail on them too.
    assert!(
        ok && !out.contains("boxoffice.service"),
        "systemd-analyze verify deploy/systemd/boxoffice.service:\n{out}"
    );
    eprintln!("systemd-analyze verify: clean");
}

// ---------------------------------------------------------- the real Prometheus

/// One HTTP/1.1 request on a fresh connection (`Connection: close`):
/// status and body (a chunked body is decoded).
fn request(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(15)))?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(head.as_bytes())?;
    s.write_all(body.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let headers = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let status = headers
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let mut rest = &raw[split + 4..];
    if !headers.contains("transfer-encoding: chunked") {
        return Ok((status, rest.to_vec()));
    }
    let mut out = Vec::new();
    loop {
        let line = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| bad("chunk size"))?;
        let size_text = String::from_utf8_lossy(&rest[..line]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| bad("chunk size"))?;
        rest = &rest[line + 2..];
        if size == 0 {
            return Ok((status, out));
        }
        let chunk = rest.get(..size).ok_or_else(|| bad("short chunk"))?;
        out.extend_from_slice(chunk);
        rest = rest.get(size + 2..).ok_or_else(|| bad("short chunk"))?;
    }
}

/// A JSON call to boxoffice: status and body (Null when not JSON).
fn call(addr: &str, method: &str, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let body = (!body.is_null()).then_some(&body);
    let (status, bytes) = request(addr, method, path, token, body)
        .unwrap_or_else(|e| panic!("{method} {path} on {addr}: {e}"));
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn expect(what: &str, want: u16, got: (u16, Value)) -> Value {
    assert_eq!(got.0, want, "{what}: {}", got.1);
    got.1
}

fn wait_for(what: &str, within: Duration, mut ready: impl FnMut() -> bool) {
    assert!(
        testkit::wait_until(within, Duration::from_millis(100), &mut ready),
        "{what}: not within {within:?}"
    );
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(3000);
    text.get(start..).unwrap_or(&text).to_string()
}

fn boxoffice(addr: &str, redis: &RedisServer, log: &Path) -> ChildGuard {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_boxoffice"));
    cmd.args(["serve", "--listen", addr, "--redis", &redis.url()])
        .args(["--admin-token", ADMIN, "--service-token", SERVICE])
        .args(["--secret", SECRET])
        // Low limits, so the run produces 429s from both limiters.
        .args(["--join-rate", "1", "--join-burst", "1", "--poll-rate", "1"]);
    ChildGuard::spawn_logged(&mut cmd, log).expect("starting boxoffice")
}

/// A waiting room with a short line (`max_waiting` 3, so a fourth join is
/// `503 queue_full`), joins while paused, a 429 from each limiter, polls
/// until admitted, a hold confirmed and one released, a coupon claimed twice,
/// one session completed and one ticket left. `scraped` is called while
/// the room is paused and returns once Prometheus has seen the event, so its
/// counters have a sample before the admissions (rate() needs two).
fn drive_traffic(b: &str, scraped: impl FnOnce()) {
    expect(
        "create the event",
        201,
        call(
            b,
            "PUT",
            &format!("/v1/events/{EVENT}"),
            Some(ADMIN),
            json!({
                "name": "ops check",
                "queue": {"capacity": 100, "admit_per_s": 50, "max_waiting": 3,
                          "identity": "anonymous"},
                "seats": [{"section": "A", "row": "1", "first": 1, "last": 20, "category": "std"}]
            }),
        ),
    );
    let queue = format!("/v1/events/{EVENT}/queue");
    expect(
        "pause",
        200,
        call(
            b,
            "POST",
            &format!("/v1/events/{EVENT}/pause"),
            Some(ADMIN),
            Value::Null,
        ),
    );
    expect("public join", 201, call(b, "POST", &queue, None, json!({})));
    expect(
        "second public join (burst 1)",
        429,
        call(b, "POST", &queue, None, json!({})),
    );
    let mut tickets = Vec::new();
    for user in ["u-2", "u-3"] {
        let doc = expect(
            "service join",
            201,
            call(b, "POST", &queue, Some(SERVICE), json!({"user": user})),
        );
        tickets.push(doc["ticket"].as_str().expect("ticket").to_string());
    }
    expect(
        "a fourth join (max_waiting 3)",
        503,
        call(b, "POST", &queue, Some(SERVICE), json!({"user": "u-4"})),
    );
    scraped();
    expect(
        "resume",
        200,
        call(
            b,
            "POST",
            &format!("/v1/events/{EVENT}/resume"),
            Some(ADMIN),
            Value::Null,
        ),
    );
    let status = |t: &str| call(b, "GET", &format!("{queue}/{t}"), None, Value::Null);
    let mut pass = String::new();
    wait_for("u-2 admitted", Duration::from_secs(10), || {
        let (code, doc) = status(&tickets[0]);
        if let (200, Some(p)) = (code, doc["pass"].as_str()) {
            pass = p.to_string();
        }
        !pass.is_empty()
    });
    let limited = (0..15).filter(|_| status(&tickets[1]).0 == 429).count();
    assert!(limited > 0, "15 quick polls of one ticket: no 429");

    let holds = format!("/v1/events/{EVENT}/holds");
    let hold = expect(
        "hold",
        201,
        call(
            b,
            "POST",
            &holds,
            Some(SERVICE),
            json!({"user": "u-2", "pass": pass, "seats": ["A-1-1", "A-1-2"]}),
        ),
    );
    let id = hold["hold"].as_str().expect("hold id");
    expect(
        "confirm",
        200,
        call(
            b,
            "POST",
            &format!("{holds}/{id}/confirm"),
            Some(SERVICE),
            json!({"order": "o-1"}),
        ),
    );
    let hold = expect(
        "second hold",
        201,
        call(
            b,
            "POST",
            &holds,
            Some(SERVICE),
            json!({"user": "u-2", "pass": pass, "seats": ["A-1-3"]}),
        ),
    );
    let id = hold["hold"].as_str().expect("hold id");
    expect(
        "release",
        204,
        call(
            b,
            "DELETE",
            &format!("{holds}/{id}"),
            Some(SERVICE),
            Value::Null,
        ),
    );

    expect(
        "create the coupon",
        201,
        call(
            b,
            "PUT",
            &format!("/v1/coupons/{COUPON}"),
            Some(ADMIN),
            json!({"stock": 5}),
        ),
    );
    let claims = format!("/v1/coupons/{COUPON}/claims");
    expect(
        "claim",
        201,
        call(b, "POST", &claims, Some(SERVICE), json!({"user": "u-2"})),
    );
    expect(
        "claim again",
        409,
        call(b, "POST", &claims, Some(SERVICE), json!({"user": "u-2"})),
    );
    let (code, doc) = call(
        b,
        "POST",
        &format!("{queue}/{}/complete", tickets[0]),
        Some(SERVICE),
        Value::Null,
    );
    assert!((200..300).contains(&code), "complete: {code} {doc}");
    let (code, doc) = call(
        b,
        "DELETE",
        &format!("{queue}/{}", tickets[1]),
        None,
        Value::Null,
    );
    assert!((200..300).contains(&code), "leave: {code} {doc}");
}

/// `GET /api/v1/<path>` of the Prometheus at `addr`: the `data` of a
/// successful answer, or the error text.
fn prom_api(addr: &str, path: &str) -> Result<Value, String> {
    let (code, body) = request(addr, "GET", &format!("/api/v1/{path}"), None, None)
        .map_err(|e| format!("no answer: {e}"))?;
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| format!("{code}: not JSON ({e}): {}", String::from_utf8_lossy(&body)))?;
    if v["status"] == "success" {
        Ok(v["data"].clone())
    } else {
        Err(format!("{code}: {} {}", v["errorType"], v["error"]))
    }
}

fn query(addr: &str, promql: &str) -> Result<Vec<Value>, String> {
    let q: String = form_urlencoded::byte_serialize(promql.as_bytes()).collect();
    let data = prom_api(addr, &format!("query?query={q}"))?;
    Ok(data["result"].as_array().cloned().unwrap_or_default())
}

#[test]
fn every_dashboard_query_returns_data_from_a_real_prometheus() {
    let Some(prometheus) = require("prometheus") else {
        return;
    };
    let started = Instant::now();
    let dir = TempDir::new("ops-prometheus").expect("temp dir");
    let redis = RedisServer::start(RedisOptions::default())
        .unwrap_or_else(|e| panic!("redis-server (scripts/ensure-test-deps.sh): {e}"));

    // A writer, then a standby on the same keyspace (it waits for the lease
    // and exports only boxoffice_replication_store_lost).
    let writer = format!("127.0.0.1:{}", testkit::free_port().expect("port"));
    let writer_log = dir.path().join("writer.log");
    let mut writer_proc = boxoffice(&writer, &redis, &writer_log);
    wait_for("the writer ready", Duration::from_secs(20), || {
        matches!(request(&writer, "GET", "/readyz", None, None), Ok((200, _)))
    });
    let standby = format!("127.0.0.1:{}", testkit::free_port().expect("port"));
    let standby_log = dir.path().join("standby.log");
    let _standby_proc = boxoffice(&standby, &redis, &standby_log);
    wait_for("the standby's /metrics", Duration::from_secs(20), || {
        matches!(
            request(&standby, "GET", "/metrics", None, None),
            Ok((200, _))
        )
    });

    // Prometheus with the alert rules, scraping both every second.
    let prom = format!("127.0.0.1:{}", testkit::free_port().expect("port"));
    let rules = repo().join("deploy/prometheus/boxoffice.rules.yml");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: boxoffice\n    static_configs:\n      - targets: ['{writer}', '{standby}']\n",
            rules.display()
        ),
    )
    .expect("write prometheus.yml");
    let prom_log = dir.path().join("prometheus.log");
    let mut prom_proc = ChildGuard::spawn_logged(
        Command::new(&prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={prom}")),
        &prom_log,
    )
    .expect("starting prometheus");
    let ready = testkit::wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
        matches!(request(&prom, "GET", "/-/ready", None, None), Ok((200, _)))
    });
    assert!(
        ready,
        "prometheus not ready in 30 s:\n{}",
        log_tail(&prom_log)
    );

    drive_traffic(&writer, || {
        let seen = format!("boxoffice_queue_served_total{{event=\"{EVENT}\"}}");
        wait_for(
            "prometheus scraped the new event",
            Duration::from_secs(20),
            || query(&prom, &seen).is_ok_and(|r| !r.is_empty()),
        );
    });

    // Both targets up, then a few more scrapes so every rate() window has
    // samples from after the traffic.
    wait_for("both targets scraped", Duration::from_secs(20), || {
        query(&prom, "up{job=\"boxoffice\"} == 1").is_ok_and(|r| r.len() == 2)
    });
    std::thread::sleep(Duration::from_secs(4));

    let dash = dashboard();
    let all = targets(&dash);
    for (panel, ref_id, _) in MAY_BE_EMPTY {
        assert!(
            all.iter().any(|t| t.panel == *panel && t.ref_id == *ref_id),
            "MAY_BE_EMPTY names {panel:?} {ref_id}, which the dashboard does not have"
        );
    }
    let mut failures = Vec::new();
    for t in &all {
        // What Grafana substitutes: the selected event, a rate window of a
        // few scrapes, the dashboard's --max-connections and --max-streams.
        let q = t
            .expr
            .replace("$__rate_interval", "10s")
            .replace("$event", EVENT)
            .replace("$max_connections", "10000")
            .replace("$max_streams", "10000");
        assert!(
            !q.contains('$'),
            "panel {:?} {}: unknown variable in {q}",
            t.panel,
            t.ref_id
        );
        let may_be_empty = MAY_BE_EMPTY
            .iter()
            .any(|(p, r, _)| *p == t.panel && *r == t.ref_id);
        match query(&prom, &q) {
            Err(e) => failures.push(format!(
                "panel {:?} {}: query failed: {e}\n  {q}",
                t.panel, t.ref_id
            )),
            Ok(r) if r.is_empty() && !may_be_empty => failures.push(format!(
                "panel {:?} {}: no series\n  {q}",
                t.panel, t.ref_id
            )),
            Ok(r) => eprintln!("ok  {:<45} {} {} series", t.panel, t.ref_id, r.len()),
        }
    }

    // The series the lease, room and connection panels stand on hold the
    // values this run gave them, as Prometheus scraped them.
    let one = |promql: &str| -> Option<f64> {
        let r = query(&prom, promql).ok()?;
        match r.as_slice() {
            [v] => v["value"][1].as_str()?.parse().ok(),
            _ => None,
        }
    };
    let expect_value = |failures: &mut Vec<String>, promql: &str, want: &dyn Fn(f64) -> bool| {
        let got = one(promql);
        if !got.is_some_and(want) {
            failures.push(format!("{promql}: {got:?}"));
        }
    };
    let (w, s) = (
        format!("instance=\"{writer}\""),
        format!("instance=\"{standby}\""),
    );
    expect_value(
        &mut failures,
        &format!("boxoffice_replication_lease_held{{{w}}}"),
        &|v| v == 1.0,
    );
    expect_value(
        &mut failures,
        &format!("boxoffice_replication_epoch{{{w}}}"),
        &|v| v >= 1.0,
    );
    expect_value(
        &mut failures,
        &format!("boxoffice_replication_lease_held{{{s}}}"),
        &|v| v == 0.0,
    );
    expect_value(
        &mut failures,
        &format!("boxoffice_replication_epoch{{{s}}}"),
        &|v| v == 0.0,
    );
    let ev = format!("event=\"{EVENT}\"");
    expect_value(
        &mut failures,
        &format!("boxoffice_queue_capacity{{{ev}}}"),
        &|v| v == 100.0,
    );
    expect_value(
        &mut failures,
        &format!("boxoffice_queue_admit_per_s{{{ev}}}"),
        &|v| v == 50.0,
    );
    expect_value(
        &mut failures,
        &format!("boxoffice_queue_phase{{{ev},phase=\"open\"}}"),
        &|v| v == 1.0,
    );
    expect_value(
        &mut failures,
        &format!("boxoffice_queue_phase{{{ev},phase=\"paused\"}}"),
        &|v| v == 0.0,
    );
    // Each scrape is a connection of its own (Prometheus keeps it alive).
    expect_value(
        &mut failures,
        &format!("boxoffice_http_open_connections{{{w},listener=\"api\"}}"),
        &|v| v >= 1.0,
    );

    // The alert rules loaded into the real Prometheus all evaluate (health
    // "ok"; "unknown" only until their first evaluation).
    let mut rule_health = Vec::new();
    let evaluated =
        testkit::wait_until(Duration::from_secs(10), Duration::from_millis(200), || {
            rule_health = prom_api(&prom, "rules")
                .ok()
                .and_then(|d| d["groups"].as_array().cloned())
                .unwrap_or_default()
                .iter()
                .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
                .map(|r| {
                    (
                        r["name"].as_str().unwrap_or("").to_string(),
                        r["health"].as_str().unwrap_or("").to_string(),
                        r["lastError"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect();
            !rule_health.is_empty() && rule_health.iter().all(|(_, h, _)| h != "unknown")
        });
    assert!(evaluated, "rules not all evaluated: {rule_health:?}");
    for (name, health, err) in &rule_health {
        if health != "ok" {
            failures.push(format!("rule {name}: {health} {err}"));
        }
    }
    // Nothing fires on a healthy writer and standby: the alerts with a
    // `for` could at most be pending in so short a run, and those without
    // one (5xx, panic, store lost, ...) must stay quiet.
    let firing: Vec<String> = prom_api(&prom, "alerts")
        .ok()
        .and_then(|d| d["alerts"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter(|a| a["state"] == "firing")
        .map(|a| a["labels"]["alertname"].to_string())
        .collect();
    if !firing.is_empty() {
        failures.push(format!("alerts firing on a healthy pair: {firing:?}"));
    }

    prom_proc.kill();
    writer_proc.kill();
    assert!(
        failures.is_empty(),
        "{} of {} dashboard queries or rules failed:\n{}\n--- prometheus log:\n{}\n--- writer log:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n"),
        log_tail(&prom_log),
        log_tail(&writer_log)
    );
    eprintln!(
        "{} dashboard queries and {} rules checked against prometheus in {:.1?}",
        all.len(),
        rule_health.len(),
        started.elapsed()
    );
}
