//! The browser test kit itself (testkit::browser), against a tiny page on
//! loopback: Debian's headless Chromium starts, runs the page's script,
//! sends the Accept-Language asked for, keeps each session's cookies to
//! itself and across a reload, renders Korean, and leaves no process behind.
//! Skipped when the browser is not installed, unless
//! BOXOFFICE_REQUIRE_BROWSER=1 (make test).

use boxoffice_testkit::browser::{self, fantoccini::Client, SessionOptions};
use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

const PAGE: &str = r#"<!doctype html>
<html lang="ko">
<head>
<meta charset="utf-8">
<title>boxoffice browser smoke</title>
<link rel="stylesheet" href="/app.css">
<script src="/app.js" defer></script>
</head>
<body>
<h1>대기열에 입장했습니다</h1>
<p lang="ko">새로고침해도 순서는 유지됩니다. 앞에 있는 사람: 1,234명</p>
<p lang="en">You are in line. A refresh keeps your place.</p>
<p>Accept-Language: <span id="al">{AL}</span></p>
<p>Cookie sent: <span id="sent">{COOKIE}</span></p>
<p>Script: <span id="x">waiting</span></p>
<p>Visitor: <span id="visitor"></span></p>
</body>
</html>
"#;

const SCRIPT: &str = r#"
(function () {
  var m = document.cookie.match(/(?:^|; )visitor=([^;]*)/);
  var v = m ? m[1] : "v" + Math.random().toString(36).slice(2, 12);
  if (!m) {
    document.cookie = "visitor=" + v + "; path=/; SameSite=Lax";
  }
  document.getElementById("visitor").textContent = v;
  setTimeout(function () {
    document.getElementById("x").textContent = "done: 완료 (" + navigator.language + ")";
  }, 300);
})();
"#;

const STYLE: &str = "body { font-family: sans-serif; margin: 2em; } h1 { color: #123; }";

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn page(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let header_text = |name: header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(escape)
            .unwrap_or_default()
    };
    let (ctype, body) = match req.uri().path() {
        "/" => (
            "text/html; charset=utf-8",
            PAGE.replace("{AL}", &header_text(header::ACCEPT_LANGUAGE))
                .replace("{COOKIE}", &header_text(header::COOKIE)),
        ),
        "/app.js" => ("text/javascript", SCRIPT.to_string()),
        "/app.css" => ("text/css", STYLE.to_string()),
        _ => {
            let mut r = Response::new(Full::new(Bytes::from_static(b"not found")));
            *r.status_mut() = StatusCode::NOT_FOUND;
            return Ok(r);
        }
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    if let Ok(v) = header::HeaderValue::from_str(ctype) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(r)
}

async fn serve() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), hyper::service::service_fn(page))
                    .await;
            });
        }
    });
    addr
}

const WAIT: Duration = Duration::from_secs(10);

/// Opens the page, waits for its script and returns (Accept-Language the
/// server saw, the visitor cookie the script set).
async fn visit(c: &Client, url: &str) -> (String, String) {
    c.goto(url).await.expect("goto");
    let x = browser::wait_for_text(c, "#x", |t| t.starts_with("done"), WAIT)
        .await
        .expect("the page's script ran");
    assert!(x.contains("완료"), "{x}");
    let al = browser::wait_for_text(c, "#al", |_| true, WAIT)
        .await
        .expect("#al");
    let cookie = c
        .get_named_cookie("visitor")
        .await
        .expect("the script's cookie");
    (al, cookie.value().to_string())
}

/// Processes whose command line names `dir` (this browser's temp dir).
fn processes_naming(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
                .filter(|pid| {
                    std::fs::read(format!("/proc/{pid}/cmdline"))
                        .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sessions_languages_cookies_script_and_screenshots() {
    let t0 = Instant::now();
    let Some(b) = browser::require_or_skip() else {
        return;
    };
    let started = t0.elapsed();
    let dir = b.dir().to_path_buf();
    let driver_pid = b.pid().expect("chromedriver runs");
    let addr = serve().await;
    let url = format!("http://{addr}/");

    let (ko, en) = tokio::join!(
        b.session(SessionOptions::korean().size(800, 600)),
        b.session(SessionOptions::english().size(800, 600))
    );
    let (ko, en) = (ko.expect("ko session"), en.expect("en session"));
    let sessions = t0.elapsed();

    let (ko_al, ko_visitor) = visit(&ko, &url).await;
    let (en_al, en_visitor) = visit(&en, &url).await;
    assert!(ko_al.starts_with("ko-KR"), "ko Accept-Language: {ko_al}");
    assert!(en_al.starts_with("en-US"), "en Accept-Language: {en_al}");
    let nav = browser::wait_for_text(&ko, "#x", |t| t.contains("(ko"), WAIT)
        .await
        .expect("navigator.language is Korean");
    assert!(nav.contains("(ko"), "{nav}");

    // Two sessions, two visitors: neither sees the other's cookie.
    assert_ne!(ko_visitor, en_visitor);
    let en_cookies: Vec<String> = en
        .get_all_cookies()
        .await
        .expect("en cookies")
        .iter()
        .map(|c| c.value().to_string())
        .collect();
    assert!(
        !en_cookies.contains(&ko_visitor),
        "en sees ko's cookie: {en_cookies:?}"
    );

    // A reload keeps the cookie, and now the server gets it too.
    ko.refresh().await.expect("reload");
    let x = browser::wait_for_text(&ko, "#x", |t| t.starts_with("done"), WAIT)
        .await
        .expect("script after reload");
    assert!(x.starts_with("done"));
    let sent = browser::wait_for_text(&ko, "#sent", |_| true, WAIT)
        .await
        .expect("#sent");
    assert!(
        sent.contains(&format!("visitor={ko_visitor}")),
        "cookie sent on reload: {sent:?}"
    );
    let shown = browser::wait_for_text(&ko, "#visitor", |t| !t.is_empty(), WAIT)
        .await
        .expect("#visitor");
    assert_eq!(shown, ko_visitor, "the reload kept the visitor");

    // A timeout names what it waited for and shows the page.
    let err = browser::wait_for_text(&en, "#x", |t| t == "never", Duration::from_millis(300))
        .await
        .expect_err("times out");
    let msg = err.to_string();
    assert!(
        msg.contains("#x") && msg.contains("You are in line"),
        "{msg}"
    );

    let ko_png = browser::screenshot(&ko, "smoke-ko").await.expect("ko png");
    let en_png = browser::screenshot(&en, "smoke-en").await.expect("en png");
    for p in [&ko_png, &en_png] {
        let bytes = std::fs::read(p).expect("read png");
        assert!(bytes.starts_with(b"\x89PNG"), "{} is a PNG", p.display());
        // IHDR: width and height, big-endian, at bytes 16..24; the
        // viewport is the size asked for, not the window's.
        let dim = |at: usize| {
            bytes
                .get(at..at + 4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_be_bytes)
        };
        assert_eq!(
            (dim(16), dim(20)),
            (Some(800), Some(600)),
            "{}",
            p.display()
        );
    }
    eprintln!("screenshots: {} {}", ko_png.display(), en_png.display());

    let pages = t0.elapsed();
    ko.close().await.expect("close ko");
    en.close().await.expect("close en");
    drop(b);

    // Nothing of this browser is left running: chromedriver reaped, every
    // Chromium (browser, renderers, zygotes, crashpad) gone.
    assert!(
        !Path::new(&format!("/proc/{driver_pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{driver_pid}/cmdline"))
                .map_or(true, |c| !c.contains("chromedriver")),
        "chromedriver {driver_pid} still runs"
    );
    let left = processes_naming(&dir);
    assert!(left.is_empty(), "left running: {left:?}");
    eprintln!(
        "browser_smoke: chromedriver up {started:?}, two sessions at {sessions:?}, \
         pages done at {pages:?}, closed and stopped at {:?}",
        t0.elapsed()
    );
}
