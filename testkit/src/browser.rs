//! Headless Chromium for the real-browser tests, driven over WebDriver.
//!
//! Debian's `chromium` and `chromium-driver` packages (installed by
//! `scripts/ensure-test-deps.sh`, never a downloaded browser): one
//! [`Browser`] is one `chromedriver` on a free loopback port, started by this
//! process and killed by its PID on drop; each [`Browser::session`] is a
//! WebDriver session, that is its own Chromium with its own temp profile, so
//! two sessions are two visitors with separate cookies.
//!
//! chromedriver is spoken to over plain http on 127.0.0.1, so the WebDriver
//! client ([`fantoccini`], re-exported here so tests need no dependency of
//! their own) is built without any TLS stack.
//!
//! Without the browser installed, [`require_or_skip`] skips a test with a
//! message, unless `BOXOFFICE_REQUIRE_BROWSER=1` (set by `make test`), where
//! a missing browser fails the test: CI must never pass by skipping.
//!
//! ```ignore
//! use boxoffice_testkit::browser::{self, SessionOptions};
//! use std::time::Duration;
//!
//! #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//! async fn waiting_page() {
//!     let Some(b) = browser::require_or_skip() else { return };
//!     let ko = b.session(SessionOptions::korean()).await.expect("session");
//!     ko.goto("http://127.0.0.1:8081/").await.expect("goto");
//!     let pos = browser::wait_for_text(&ko, "#bo-position", |t| !t.is_empty(),
//!                                      Duration::from_secs(10)).await.expect("position");
//!     browser::screenshot(&ko, "wait-ko").await.expect("png"); // target/browser-artifacts/
//!     ko.close().await.expect("close");
//! } // drop(b): open sessions ended, chromedriver killed by PID
//! ```
//!
//! Environment overrides: `BOXOFFICE_CHROMEDRIVER` and `BOXOFFICE_CHROMIUM`
//! (paths to the binaries; a path that does not exist counts as missing),
//! `BOXOFFICE_CHROMIUM_NO_SANDBOX=1` (also pass `--no-sandbox` when not root).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use fantoccini;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::{free_port, ChildGuard, TempDir};

/// Set to `1` to make a missing browser a test failure instead of a skip.
pub const REQUIRE_ENV: &str = "BOXOFFICE_REQUIRE_BROWSER";

/// How long chromedriver may take to answer `/status` after it starts.
const DRIVER_READY_WITHIN: Duration = Duration::from_secs(20);

/// How often the `wait_for_*` helpers look again.
const POLL_EVERY: Duration = Duration::from_millis(100);

/// How much of the page source a timeout error shows.
const SOURCE_SNIPPET: usize = 2000;

/// What went wrong starting or driving the browser.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    /// chromedriver or Chromium is not installed (which one, and where it
    /// was looked for).
    #[error("missing: {0}")]
    Missing(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    /// chromedriver ended, or never answered `/status`; `log` is the tail
    /// of its log.
    #[error("{what}\n--- chromedriver log (tail) ---\n{log}")]
    Driver { what: String, log: String },
    /// chromedriver refused or failed to open a session (Chromium did not
    /// start); `log` is the tail of chromedriver's log.
    #[error("new WebDriver session: {source}\n--- chromedriver log (tail) ---\n{log}")]
    Session {
        #[source]
        source: fantoccini::error::NewSessionError,
        log: String,
    },
    /// A WebDriver command failed.
    #[error("{what}: {source}")]
    Cmd {
        what: String,
        #[source]
        source: fantoccini::error::CmdError,
    },
    /// A `wait_for_*` condition did not hold in time.
    #[error(
        "timed out after {after:?} waiting for {what}\n  last seen: {last}\n  url: {url}\n\
         --- page source (first {SOURCE_SNIPPET} chars) ---\n{source_snippet}"
    )]
    Timeout {
        what: String,
        after: Duration,
        last: String,
        url: String,
        source_snippet: String,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> BrowserError {
    let what = what.into();
    move |source| BrowserError::Io { what, source }
}

fn cmd_err(what: impl Into<String>) -> impl FnOnce(fantoccini::error::CmdError) -> BrowserError {
    let what = what.into();
    move |source| BrowserError::Cmd { what, source }
}

/// How one session's browser looks to the site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionOptions {
    /// The Accept-Language list, e.g. `"ko-KR,ko"` or `"en-US,en"`; its
    /// first entry is also the UI locale (`--lang`).
    pub lang: String,
    /// Viewport (and so screenshot) size in CSS pixels.
    pub width: u32,
    pub height: u32,
}

impl SessionOptions {
    /// A 1280×900 window with this Accept-Language list.
    pub fn lang(lang: &str) -> Self {
        SessionOptions {
            lang: lang.to_string(),
            ..Self::default()
        }
    }

    /// `ko-KR,ko`.
    pub fn korean() -> Self {
        Self::lang("ko-KR,ko")
    }

    /// `en-US,en`.
    pub fn english() -> Self {
        Self::lang("en-US,en")
    }

    /// The same, with another window size.
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.width = width;
        self.height = height;
        self
    }
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            lang: "en-US,en".into(),
            width: 1280,
            height: 900,
        }
    }
}

/// One chromedriver started by this process; see the module docs.
pub struct Browser {
    // Declared before `dir`: the processes go before their directory (the
    // profiles live in it).
    driver: ChildGuard,
    dir: TempDir,
    port: u16,
    chromium: PathBuf,
    no_sandbox: bool,
    /// Session ids opened here, deleted on drop (a no-op for those the test
    /// closed) so no Chromium outlives the test.
    sessions: Mutex<Vec<String>>,
    next_profile: AtomicU64,
}

impl fmt::Debug for Browser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Browser")
            .field("pid", &self.driver.id())
            .field("port", &self.port)
            .field("dir", &self.dir.path())
            .field("chromium", &self.chromium)
            .finish_non_exhaustive()
    }
}

impl Browser {
    /// Finds chromedriver and Chromium, starts chromedriver on a free
    /// loopback port and waits until it answers `/status`.
    /// [`BrowserError::Missing`] when either is not installed.
    ///
    /// Blocking (a few hundred ms): call it before the test's servers have
    /// work to do, or from `spawn_blocking`.
    pub fn start() -> Result<Browser, BrowserError> {
        let driver_bin = find_chromedriver()?;
        let chromium = find_chromium()?;
        let no_sandbox =
            is_root() || std::env::var("BOXOFFICE_CHROMIUM_NO_SANDBOX").as_deref() == Ok("1");
        let dir = TempDir::new("browser").map_err(io_err("creating the browser's temp dir"))?;
        // A port taken between probing and chromedriver binding it makes
        // chromedriver exit at once: try another (three tries, as redis).
        let mut last = None;
        for _ in 0..3 {
            let port = free_port().map_err(io_err("probing a free loopback port"))?;
            match launch_driver(&driver_bin, port, dir.path()) {
                Ok(driver) => {
                    return Ok(Browser {
                        driver,
                        dir,
                        port,
                        chromium,
                        no_sandbox,
                        sessions: Mutex::new(Vec::new()),
                        next_profile: AtomicU64::new(0),
                    })
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| BrowserError::Driver {
            what: "chromedriver did not start".into(),
            log: String::new(),
        }))
    }

    /// `http://127.0.0.1:{port}`, chromedriver's WebDriver endpoint.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// chromedriver's PID, or None once killed.
    pub fn pid(&self) -> Option<u32> {
        self.driver.id()
    }

    /// This browser's temp dir (chromedriver's log, the sessions' profiles),
    /// removed on drop; every Chromium of this browser names it in its
    /// command line.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The Chromium binary sessions run.
    pub fn chromium(&self) -> &Path {
        &self.chromium
    }

    /// chromedriver's log so far (its own, and Chromium's start failures).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("chromedriver.log")
    }

    fn log_tail(&self) -> String {
        tail(&self.log(), 40)
    }

    /// A new session: its own headless Chromium with a fresh profile (own
    /// cookies, cache and storage), the given Accept-Language and window
    /// size. Close it with `client.close().await` at the end; drop of the
    /// [`Browser`] ends any left open.
    pub async fn session(&self, opts: SessionOptions) -> Result<Client, BrowserError> {
        let n = self.next_profile.fetch_add(1, Ordering::Relaxed);
        let profile = self.dir.path().join(format!("profile-{n}"));
        std::fs::create_dir_all(&profile).map_err(io_err("creating a Chromium profile dir"))?;
        let caps = self.capabilities(&opts, &profile);
        let mut builder =
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        builder.capabilities(caps);
        let client =
            builder
                .connect(&self.url())
                .await
                .map_err(|source| BrowserError::Session {
                    source,
                    log: self.log_tail(),
                })?;
        if let Ok(Some(id)) = client.session_id().await {
            if let Ok(mut s) = self.sessions.lock() {
                s.push(id);
            }
        }
        fit_viewport(&client, opts.width, opts.height).await?;
        Ok(client)
    }

    fn capabilities(&self, opts: &SessionOptions, profile: &Path) -> fantoccini::wd::Capabilities {
        let ui_lang = opts.lang.split(',').next().unwrap_or("en-US").trim();
        let mut args = vec![
            "--headless=new".to_string(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            format!("--window-size={},{}", opts.width, opts.height),
            "--no-first-run".into(),
            "--no-default-browser-check".into(),
            "--disable-extensions".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-default-apps".into(),
            "--disable-sync".into(),
            "--disable-features=Translate,MediaRouter,OptimizationHints".into(),
            "--hide-scrollbars".into(),
            "--mute-audio".into(),
            "--password-store=basic".into(),
            format!("--lang={ui_lang}"),
            // Headless reads the Accept-Language from this switch; the pref
            // below covers the non-headless path and navigator.languages.
            format!("--accept-lang={}", opts.lang),
            format!("--user-data-dir={}", profile.display()),
        ];
        if self.no_sandbox {
            // Chromium refuses to start as root with its sandbox on.
            args.push("--no-sandbox".into());
        }
        let caps = json!({
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": { "pageLoad": 30_000, "script": 10_000, "implicit": 0 },
            "goog:chromeOptions": {
                // The real binary, not Debian's /usr/bin/chromium shell
                // wrapper (which adds flags from /etc/chromium.d).
                "binary": self.chromium.display().to_string(),
                "args": args,
                "prefs": { "intl": { "accept_languages": opts.lang } },
            },
        });
        match caps {
            Value::Object(map) => map,
            _ => fantoccini::wd::Capabilities::new(),
        }
    }

    /// Ends the sessions still open (a raw `DELETE /session/{id}`, as drop
    /// cannot await), so each Chromium quits and removes nothing of ours.
    fn end_sessions(&self) {
        let ids = match self.sessions.lock() {
            Ok(mut s) => std::mem::take(&mut *s),
            Err(_) => return,
        };
        for id in ids {
            let _ = http_request(
                self.port,
                "DELETE",
                &format!("/session/{id}"),
                Duration::from_secs(5),
            );
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The TempDir (and the log in it) is about to go: show it now.
            eprintln!(
                "--- chromedriver log (tail, {}) ---\n{}",
                self.log_path().display(),
                self.log_tail()
            );
        }
        self.end_sessions();
        // An ended session's Chromium takes a moment to quit; let it, so
        // chromedriver reaps it rather than leaving it to init. Chromium's
        // zygotes and crashpad handler are reparented to init whatever we
        // do (it double-forks them) and are reaped by it.
        // (chromedriver names the dir too, in --log-path: not counted.)
        let driver = self.driver.id().map(|p| p.to_string());
        crate::wait_until(Duration::from_secs(3), Duration::from_millis(50), || {
            pids_naming(self.dir.path())
                .iter()
                .all(|p| Some(p) == driver.as_ref())
        });
        self.driver.kill();
        // A Chromium whose session could not be ended (chromedriver hung)
        // would outlive its killed driver: end those still running with a
        // profile in our temp dir; that path is unique to this Browser, so
        // nothing else on the machine matches it.
        kill_leftovers(self.dir.path());
    }
}

/// Headless Chromium still draws a window frame: `--window-size` is the
/// outer size and the page gets less (about 140 px less height). Grow the
/// window by the difference so the viewport, and every screenshot, is the
/// size asked for.
async fn fit_viewport(client: &Client, width: u32, height: u32) -> Result<(), BrowserError> {
    let frame = client
        .execute(
            "return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight];",
            vec![],
        )
        .await
        .map_err(cmd_err("measuring the window frame"))?;
    let d = |i: usize| {
        frame
            .get(i)
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0)
    };
    let (dw, dh) = (d(0), d(1));
    if dw > 0 || dh > 0 {
        client
            .set_window_size(width.saturating_add(dw), height.saturating_add(dh))
            .await
            .map_err(cmd_err("sizing the window"))?;
    }
    Ok(())
}

/// [`Browser::start`] for a test: None (after printing why) when the browser
/// is not installed, unless `BOXOFFICE_REQUIRE_BROWSER=1`, where that
/// panics. A browser that is installed but fails to start always panics.
pub fn require_or_skip() -> Option<Browser> {
    match Browser::start() {
        Ok(b) => Some(b),
        Err(BrowserError::Missing(what)) => {
            if std::env::var(REQUIRE_ENV).as_deref() == Ok("1") {
                panic!(
                    "{REQUIRE_ENV}=1 but the browser is missing ({what}); \
                     `make test` installs chromium, chromium-driver and fonts-nanum \
                     (scripts/ensure-test-deps.sh)"
                );
            }
            eprintln!("skipping: no chromium/chromedriver (make test installs them)");
            eprintln!("  ({what})");
            None
        }
        Err(e) => panic!("starting headless Chromium: {e}"),
    }
}

/// `<target>/browser-artifacts/`, created if missing: where screenshots of
/// the browser tests go. `<target>` is `CARGO_TARGET_DIR` if set, else the
/// target dir the running test executable was built into, else the
/// workspace's `target/`.
pub fn artifacts_dir() -> io::Result<PathBuf> {
    let dir = target_dir().join("browser-artifacts");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn target_dir() -> PathBuf {
    // This crate sits one level below the workspace root.
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR").filter(|t| !t.is_empty()) {
        let t = PathBuf::from(t);
        return if t.is_absolute() {
            t
        } else {
            workspace.join(t)
        };
    }
    // Test executables live in <target>/[<triple>/]<profile>/deps/; cargo
    // marks <target> itself with CACHEDIR.TAG.
    if let Ok(exe) = std::env::current_exe() {
        if let Some(t) = exe.ancestors().find(|a| a.join("CACHEDIR.TAG").is_file()) {
            return t.to_path_buf();
        }
    }
    workspace.join("target")
}

/// Saves a PNG of the session's viewport as `<artifacts_dir>/<name>.png`
/// (`name` reduced to `[A-Za-z0-9._-]`) and returns its path.
pub async fn screenshot(client: &Client, name: &str) -> Result<PathBuf, BrowserError> {
    let png = client.screenshot().await.map_err(cmd_err("screenshot"))?;
    let mut file: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !file.ends_with(".png") {
        file.push_str(".png");
    }
    let path = artifacts_dir()
        .map_err(io_err("creating the artifacts dir"))?
        .join(file);
    std::fs::write(&path, png).map_err(io_err(format!("writing {}", path.display())))?;
    Ok(path)
}

/// Polls (every 100 ms) the text of the first element matching `css` until
/// `ready` accepts it, and returns that text. On timeout the error shows the
/// last text seen (or why there was none), the URL and the start of the page
/// source.
pub async fn wait_for_text(
    client: &Client,
    css: &str,
    ready: impl Fn(&str) -> bool,
    timeout: Duration,
) -> Result<String, BrowserError> {
    wait_for_value(
        client,
        &format!("text of `{css}`"),
        timeout,
        || async {
            let el = client.find(Locator::Css(css)).await?;
            el.text().await.map(Some)
        },
        |t: &Option<String>| t.as_deref().is_some_and(&ready),
    )
    .await
    .map(Option::unwrap_or_default)
}

/// As [`wait_for_text`], for an attribute of the first element matching
/// `css` (`None` when the element has no such attribute).
pub async fn wait_for_attr(
    client: &Client,
    css: &str,
    attr: &str,
    ready: impl Fn(Option<&str>) -> bool,
    timeout: Duration,
) -> Result<Option<String>, BrowserError> {
    wait_for_value(
        client,
        &format!("attribute `{attr}` of `{css}`"),
        timeout,
        || async {
            let el = client.find(Locator::Css(css)).await?;
            el.attr(attr).await
        },
        |a: &Option<String>| ready(a.as_deref()),
    )
    .await
}

/// Polls the session's current URL until `ready` accepts it (after a
/// redirect or a script's navigation), and returns it.
pub async fn wait_for_url(
    client: &Client,
    ready: impl Fn(&str) -> bool,
    timeout: Duration,
) -> Result<String, BrowserError> {
    wait_for_value(
        client,
        "the URL",
        timeout,
        || async { client.current_url().await.map(|u| u.to_string()) },
        |u: &String| ready(u),
    )
    .await
}

/// The loop behind the `wait_for_*` helpers: `probe` errors (element not
/// there yet, stale element) count as "not yet".
async fn wait_for_value<T, F, Fut>(
    client: &Client,
    what: &str,
    timeout: Duration,
    probe: F,
    ready: impl Fn(&T) -> bool,
) -> Result<T, BrowserError>
where
    T: fmt::Debug,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, fantoccini::error::CmdError>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let last = match probe().await {
            Ok(v) if ready(&v) => return Ok(v),
            Ok(v) => format!("{v:?}"),
            Err(e) => format!("error: {e}"),
        };
        if Instant::now() >= deadline {
            let url = client
                .current_url()
                .await
                .map_or_else(|e| format!("(unknown: {e})"), |u| u.to_string());
            let source_snippet = client.source().await.map_or_else(
                |e| format!("(unavailable: {e})"),
                |s| s.chars().take(SOURCE_SNIPPET).collect(),
            );
            return Err(BrowserError::Timeout {
                what: what.to_string(),
                after: timeout,
                last,
                url,
                source_snippet,
            });
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

fn launch_driver(bin: &Path, port: u16, dir: &Path) -> Result<ChildGuard, BrowserError> {
    let log = dir.join("chromedriver.log");
    let mut cmd = Command::new(bin);
    // No --allowed-ips: chromedriver then listens on loopback only and
    // refuses any other peer.
    cmd.arg(format!("--port={port}"))
        .arg(format!("--log-path={}", log.display()))
        .arg("--append-log")
        .current_dir(dir);
    let mut child = ChildGuard::spawn_logged(&mut cmd, &dir.join("chromedriver.out"))
        .map_err(io_err(format!("starting {}", bin.display())))?;
    let read_log = || {
        let mut s = std::fs::read_to_string(&log).unwrap_or_default();
        s.push_str(&std::fs::read_to_string(dir.join("chromedriver.out")).unwrap_or_default());
        tail(&s, 40)
    };
    let deadline = Instant::now() + DRIVER_READY_WITHIN;
    loop {
        if let Some(status) = child.exited().map_err(io_err("chromedriver"))? {
            return Err(BrowserError::Driver {
                what: format!("chromedriver on port {port} exited ({status})"),
                log: read_log(),
            });
        }
        if let Ok(body) = http_request(port, "GET", "/status", Duration::from_millis(500)) {
            if body.contains("\"ready\":true") {
                return Ok(child);
            }
        }
        if Instant::now() >= deadline {
            return Err(BrowserError::Driver {
                what: format!(
                    "chromedriver on port {port} not ready within {DRIVER_READY_WITHIN:?}"
                ),
                log: read_log(),
            });
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A minimal HTTP/1.1 request to chromedriver on loopback (sync, for start
/// and drop, where there is no async context); returns the response body
/// when the status is 2xx.
fn http_request(port: u16, method: &str, path: &str, timeout: Duration) -> io::Result<String> {
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    // chromedriver keeps the connection open whatever `Connection` says:
    // read the head, then exactly Content-Length bytes, not to EOF.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::other(format!("{method} {path}: no answer")));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let len = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let ok = head
        .split(' ')
        .nth(1)
        .is_some_and(|code| code.starts_with('2'));
    if !ok {
        return Err(io::Error::other(format!(
            "{method} {path}: {}",
            head.lines().next().unwrap_or("no status line")
        )));
    }
    let end = buf.len().min(head_end + len);
    Ok(String::from_utf8_lossy(&buf[head_end..end]).into_owned())
}

/// PIDs of the running processes whose command line names `dir` (our
/// profiles); reads /proc, so Linux only (elsewhere it finds nothing). A
/// zombie has an empty command line and is not listed.
fn pids_naming(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    let me = std::process::id().to_string();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| name.bytes().all(|b| b.is_ascii_digit()) && *name != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
        })
        .collect()
}

/// SIGKILL of every process still running with `dir` in its command line.
fn kill_leftovers(dir: &Path) {
    let pids = pids_naming(dir);
    if !pids.is_empty() {
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!("kill -9 {} 2>/dev/null", pids.join(" ")))
            .status();
    }
}

fn find_chromedriver() -> Result<PathBuf, BrowserError> {
    find_bin(
        "BOXOFFICE_CHROMEDRIVER",
        &["chromedriver"],
        &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"],
        "chromedriver (Debian package chromium-driver)",
    )
}

fn find_chromium() -> Result<PathBuf, BrowserError> {
    // The real binary first: Debian's /usr/bin/chromium is a shell script.
    find_bin(
        "BOXOFFICE_CHROMIUM",
        &[],
        &["/usr/lib/chromium/chromium", "/usr/bin/chromium"],
        "chromium (Debian package chromium)",
    )
    .or_else(|_| {
        find_bin(
            "BOXOFFICE_CHROMIUM",
            &["chromium", "chromium-browser"],
            &[],
            "chromium (Debian package chromium)",
        )
    })
}

/// The env override if set (it must exist), else the first of `names` on
/// PATH, else the first of `fixed` that exists.
fn find_bin(
    env: &str,
    names: &[&str],
    fixed: &[&str],
    what: &str,
) -> Result<PathBuf, BrowserError> {
    if let Some(p) = std::env::var_os(env).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if is_executable(&p) {
            Ok(p)
        } else {
            Err(BrowserError::Missing(format!(
                "{what}: {env}={} is not an executable",
                p.display()
            )))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in names {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if is_executable(&p) {
                return Ok(p);
            }
        }
    }
    for p in fixed {
        let p = Path::new(p);
        if is_executable(p) {
            return Ok(p.to_path_buf());
        }
    }
    let mut looked: Vec<String> = names.iter().map(|n| format!("{n} on PATH")).collect();
    looked.extend(fixed.iter().map(|s| s.to_string()));
    Err(BrowserError::Missing(format!(
        "{what}: looked for {}",
        looked.join(", ")
    )))
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether this process runs as root (real uid 0), from /proc: no libc
/// binding needed.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|rest| rest.split_whitespace().next())
            == Some("0")
    })
}

fn tail(s: &str, lines: usize) -> String {
    let all: Vec<&str> = s.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_override_is_missing() {
        let r = find_bin(
            "BOXOFFICE_TEST_NO_SUCH_VAR_FOR_FIND_BIN",
            &["no-such-binary-here"],
            &["/nonexistent/x"],
            "x",
        );
        assert!(matches!(r, Err(BrowserError::Missing(_))));
    }

    #[test]
    fn artifacts_dir_is_under_a_target_dir() -> io::Result<()> {
        let d = artifacts_dir()?;
        assert!(d.is_dir());
        assert!(d.ends_with("browser-artifacts"));
        Ok(())
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
