//! The waiting page (HTML, rendered on the server) and its static assets.
//!
//! The server-rendered page is complete on its own: it shows the real status
//! and a "check now" link, so it works without JavaScript. The script
//! (assets/wait.js) only keeps it live (SSE, polling fallback). The gate's
//! CSP forbids inline code and styles, so the page carries its data in
//! `<script type="application/json">` blocks and toggles sections with the
//! `hidden` attribute; everything else comes from `/_boxoffice/assets/`.

use super::doc::GateDoc;
pub use super::i18n::Lang;
use super::i18n::{self, fill, Strings};
use boxoffice_engine::Timestamp;
use std::fmt::Write as _;

/// Where the gate's assets live.
pub const ASSETS_PREFIX: &str = "/_boxoffice/assets/";
/// The waiting page's own path.
pub const WAIT_PATH: &str = "/_boxoffice/wait";
const STATUS_PATH: &str = "/_boxoffice/status";
const STREAM_PATH: &str = "/_boxoffice/stream";
/// The longest return path kept.
const MAX_RETURN: usize = 2048;

/// What the waiting page is rendered from.
#[derive(Debug)]
pub struct PageModel<'a> {
    pub doc: &'a GateDoc,
    pub lang: Lang,
    pub now: Timestamp,
    /// Already validated ([`safe_return`]); validated again anyway.
    pub return_to: &'a str,
}

/// What the page shows, derived from the doc's state and the room's phase.
/// The script (wait.js, `viewOf`) derives it the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum View {
    Admitted,
    SoldOut,
    Expired,
    Left,
    Prequeue,
    Paused,
    Waiting,
}

impl View {
    fn of(doc: &GateDoc) -> View {
        match doc.state {
            "admitted" => View::Admitted,
            _ if doc.sold_out || doc.phase == "closed" => View::SoldOut,
            "expired" => View::Expired,
            "left" => View::Left,
            "prequeue" => View::Prequeue,
            _ if doc.phase == "prequeue" => View::Prequeue,
            _ if doc.phase == "paused" => View::Paused,
            _ => View::Waiting,
        }
    }

    fn code(self) -> &'static str {
        match self {
            View::Admitted => "admitted",
            View::SoldOut => "soldout",
            View::Expired => "expired",
            View::Left => "left",
            View::Prequeue => "prequeue",
            View::Paused => "paused",
            View::Waiting => "waiting",
        }
    }

    /// Which sections are shown (wait.js `SHOW` mirrors this).
    fn shows(self, section: &str) -> bool {
        use View::*;
        match section {
            "bo-line" => matches!(self, Waiting | Paused),
            "bo-pre" => self == Prequeue,
            "bo-enter" => self == Admitted,
            "bo-again" => matches!(self, Expired | Left),
            "bo-truth" => matches!(self, Waiting | Paused | Prequeue),
            "bo-live" => matches!(self, Waiting | Paused | Prequeue | SoldOut),
            "bo-state" => self != Admitted,
            _ => true,
        }
    }
}

/// Progress clamped to 0..=1 (NaN is 0), as the script does.
fn progress(doc: &GateDoc) -> f64 {
    if doc.progress >= 0.0 {
        doc.progress.min(1.0)
    } else {
        0.0
    }
}

/// The text of the one live region: it only depends on what the visitor
/// needs to hear (the view, the ETA's words, progress in tens of percent),
/// so a position tick never changes it.
fn status_text(s: &Strings, view: View, doc: &GateDoc) -> String {
    match view {
        View::Waiting if doc.position == Some(1) => s.status_next.to_owned(),
        View::Waiting => {
            let pct = ((progress(doc) * 10.0).floor() as u32 * 10).to_string();
            fill(
                s.status_waiting,
                &[("eta", s.eta_words(doc.eta_s)), ("pct", &pct)],
            )
        }
        View::Paused => s.status_paused.to_owned(),
        View::Prequeue => s.status_prequeue.to_owned(),
        View::SoldOut => s.status_soldout.to_owned(),
        View::Expired => s.status_expired.to_owned(),
        View::Left => s.status_left.to_owned(),
        View::Admitted => s.alert_admitted_page.to_owned(),
    }
}

/// The full waiting page.
pub fn render_wait(m: &PageModel) -> String {
    let s = m.lang.strings();
    let doc = m.doc;
    let view = View::of(doc);
    let ret = safe_return(Some(m.return_to));
    let again = wait_url(&ret, None);
    let title = fill(s.title_wait, &[("event", &doc.event_name)]);
    let hidden = |id: &str| if view.shows(id) { "" } else { " hidden" };
    let digits = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
    let p = progress(doc);

    let mut h = String::with_capacity(8 * 1024);
    head(&mut h, m.lang, &title);
    let _ = write!(
        h,
        "<body class=\"bo-page\">\n<header class=\"bo-top\">\n\
         <p class=\"bo-brand\"><img src=\"{icon}\" alt=\"\" width=\"24\" height=\"24\"> {brand}</p>\n\
         <nav class=\"bo-lang\" aria-label=\"{nav}\">\
         <a href=\"{ko}\" hreflang=\"ko\" lang=\"ko\"{ko_cur}>한국어</a> \
         <a href=\"{en}\" hreflang=\"en\" lang=\"en\"{en_cur}>English</a></nav>\n</header>\n",
        icon = ICON_SVG.path,
        brand = esc(s.brand),
        nav = esc(s.lang_nav),
        ko = esc(&wait_url(&ret, Some(Lang::Ko))),
        en = esc(&wait_url(&ret, Some(Lang::En))),
        ko_cur = if m.lang == Lang::Ko { " aria-current=\"true\"" } else { "" },
        en_cur = if m.lang == Lang::En { " aria-current=\"true\"" } else { "" },
    );
    let _ = write!(
        h,
        "<main id=\"bo-wait\" class=\"bo-main\" data-state=\"{state}\" data-phase=\"{phase}\" \
         data-view=\"{view}\" data-status=\"{STATUS_PATH}\" data-stream=\"{STREAM_PATH}\" \
         data-enter=\"{enter}\" data-now=\"{now}\">\n\
         <h1 id=\"bo-event\">{name}</h1>\n\
         <p id=\"bo-state\" class=\"bo-state\" role=\"status\"{state_hidden}>{status}</p>\n\
         <div id=\"bo-alert\" class=\"bo-alert\" role=\"alert\">{alert}</div>\n\
         <p id=\"bo-enter\" class=\"bo-actions\"{enter_hidden}><a class=\"bo-button\" href=\"{enter}\">{enter_link}</a></p>\n",
        state = esc(doc.state),
        phase = esc(doc.phase),
        view = view.code(),
        enter = esc(&again),
        now = m.now.as_millis(),
        name = esc(&doc.event_name),
        state_hidden = hidden("bo-state"),
        status = esc(&status_text(s, view, doc)),
        alert = if view == View::Admitted { esc(s.alert_admitted_page) } else { String::new() },
        enter_hidden = hidden("bo-enter"),
        enter_link = esc(s.enter_link),
    );
    let _ = write!(
        h,
        "<section id=\"bo-line\" class=\"bo-card\"{line_hidden}>\n<dl class=\"bo-numbers\">\n\
         <div class=\"bo-num\"><dt>{pos_label}</dt><dd><span id=\"bo-position\">{pos}</span>\
         <span class=\"bo-unit\">{pos_unit}</span></dd></div>\n\
         <div class=\"bo-num\"><dt>{ahead_label}</dt><dd><span id=\"bo-ahead\">{ahead}</span>\
         <span class=\"bo-unit\">{ahead_unit}</span></dd></div>\n\
         <div class=\"bo-num bo-num-eta\"><dt>{eta_label}</dt><dd id=\"bo-eta\">{eta}</dd></div>\n\
         </dl>\n<p class=\"bo-bar\"><label for=\"bo-progress\">{progress_label}</label>\
         <progress id=\"bo-progress\" max=\"1\" value=\"{pv:.2}\">{pct}%</progress></p>\n</section>\n",
        line_hidden = hidden("bo-line"),
        pos_label = esc(s.position_label),
        pos = digits(doc.position),
        pos_unit = esc(s.position_unit),
        ahead_label = esc(s.ahead_label),
        ahead = digits(doc.position.map(|p| p.saturating_sub(1))),
        ahead_unit = esc(s.ahead_unit),
        eta_label = esc(s.eta_label),
        eta = esc(s.eta_words(doc.eta_s)),
        progress_label = esc(s.progress_label),
        pv = p,
        pct = (p * 100.0).round() as u32,
    );
    let (opens_attr, opens_text) = match doc.opens_at {
        Some(t) => (
            format!(" datetime=\"{}\"", esc(&rfc3339(t))),
            i18n::date_time(m.lang, t),
        ),
        None => (String::new(), s.count_now.to_owned()),
    };
    let _ = write!(
        h,
        "<section id=\"bo-pre\" class=\"bo-card bo-pre\"{pre_hidden}>\n\
         <p id=\"bo-count-label\" class=\"bo-count-label\">{label}</p>\n\
         <p class=\"bo-countdown\"><time id=\"bo-countdown\"{opens_attr}>{opens}</time></p>\n\
         <p id=\"bo-opens\" class=\"bo-opens\" hidden></p>\n</section>\n\
         <section id=\"bo-again\" class=\"bo-card\"{again_hidden}>\n<p>{again_text}</p>\n\
         <p class=\"bo-actions\"><a class=\"bo-button\" href=\"{again}\">{again_link}</a></p>\n</section>\n",
        pre_hidden = hidden("bo-pre"),
        label = esc(s.count_label_at),
        opens = esc(&opens_text),
        again_hidden = hidden("bo-again"),
        again_text = esc(s.again_text),
        again = esc(&again),
        again_link = esc(s.again_link),
    );
    let _ = write!(
        h,
        "<section id=\"bo-truth\" class=\"bo-note\"{truth_hidden}>\n<h2>{truth_title}</h2>\n\
         <p>{truth_body}</p>\n<p>{truth_idle}</p>\n</section>\n\
         <p class=\"bo-meta\">{updated_label}: <time id=\"bo-updated\" datetime=\"{now_iso}\">{now_text}</time></p>\n\
         <p id=\"bo-live\" class=\"bo-meta bo-live\"{live_hidden}><span class=\"bo-dot\" aria-hidden=\"true\"></span>{live_note} \
         <a id=\"bo-check\" href=\"{check}\">{check_link}</a></p>\n</main>\n",
        truth_hidden = hidden("bo-truth"),
        truth_title = esc(s.truth_title),
        truth_body = esc(s.truth_body),
        truth_idle = esc(s.truth_idle),
        updated_label = esc(s.updated_label),
        now_iso = esc(&rfc3339(m.now)),
        now_text = esc(&i18n::clock_time(m.lang, m.now)),
        live_hidden = hidden("bo-live"),
        live_note = esc(s.live_note),
        check = esc(&again),
        check_link = esc(s.check_link),
    );
    let _ = write!(
        h,
        "<script type=\"application/json\" id=\"bo-doc\">{doc}</script>\n\
         <script type=\"application/json\" id=\"bo-i18n\">{strings}</script>\n</body>\n</html>\n",
        doc = json_block(doc),
        strings = json_block(s),
    );
    h
}

/// A small page for a backend error (502 `backend_unavailable`, 504
/// `backend_timeout`, 503 `unavailable`): plainly not the waiting page
/// (another layout and colour, no script), with a retry link.
pub fn render_problem(lang: Lang, status: u16, code: &str, return_to: &str) -> String {
    let s = lang.strings();
    let (title, what) = match (status, code) {
        (503, _) | (_, "unavailable") => (s.problem_title_busy, s.problem_busy),
        (504, _) | (_, "backend_timeout") => (s.problem_title, s.problem_timeout),
        _ => (s.problem_title, s.problem_unavailable),
    };
    let retry = safe_return(Some(return_to));
    let mut h = String::with_capacity(2048);
    head(&mut h, lang, title);
    let _ = write!(
        h,
        "<body class=\"bo-page bo-problem-page\">\n\
         <main id=\"bo-problem\" class=\"bo-problem\" data-status=\"{status}\" data-code=\"{code}\">\n\
         <p class=\"bo-problem-code\">{label} {status} · <code>{code}</code></p>\n\
         <h1>{title}</h1>\n<p>{what}</p>\n<p>{safe}</p>\n\
         <p class=\"bo-actions\"><a id=\"bo-retry\" class=\"bo-button\" href=\"{retry}\">{retry_text}</a></p>\n\
         </main>\n</body>\n</html>\n",
        code = esc(code),
        label = esc(s.problem_code),
        title = esc(title),
        what = esc(what),
        safe = esc(s.problem_safe),
        retry = esc(&retry),
        retry_text = esc(s.problem_retry),
    );
    h
}

fn head(h: &mut String, lang: Lang, title: &str) {
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"color-scheme\" content=\"light dark\">\n\
         <meta name=\"robots\" content=\"noindex\">\n\
         <title>{title}</title>\n\
         <link rel=\"icon\" type=\"image/svg+xml\" href=\"{icon}\">\n\
         <link rel=\"stylesheet\" href=\"{css}\">\n\
         <script src=\"{js}\" defer></script>\n</head>\n",
        lang = lang.code(),
        title = esc(title),
        icon = ICON_SVG.path,
        css = WAIT_CSS.path,
        js = WAIT_JS.path,
    );
}

fn rfc3339(t: Timestamp) -> String {
    crate::wire::time::format(t).unwrap_or_default()
}

/// HTML-escapes text for element content and quoted attribute values.
pub fn esc(s: &str) -> String {
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

/// JSON for a `<script type="application/json">` block: `<`, `>` and `&`
/// become `\u003c`… (they only occur inside strings, where the escape means
/// the same), so no data can close the block (`</script>`) or open a
/// comment (`<!--`). A value that cannot be written is `null` (the script
/// then leaves the server-rendered page as it is).
fn json_block<T: serde::Serialize + ?Sized>(v: &T) -> String {
    let json = serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned());
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The waiting page's URL for a return path:
/// `/_boxoffice/wait?return=%2Fseats%3Fs%3DA&lang=ko`.
pub fn wait_url(return_to: &str, lang: Option<Lang>) -> String {
    let mut url = String::with_capacity(WAIT_PATH.len() + 8 + return_to.len() * 3 + 8);
    url.push_str(WAIT_PATH);
    url.push_str("?return=");
    for &b in return_to.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            url.push(char::from(b));
        } else {
            let _ = write!(url, "%{b:02X}");
        }
    }
    if let Some(l) = lang {
        url.push_str("&lang=");
        url.push_str(l.code());
    }
    url
}

/// A return path that can only lead back into this site, else `"/"`.
///
/// Kept: an absolute path (one leading `/`) of at most 2048 bytes, without
/// control characters or backslashes, not starting `//` or `/\` (browsers
/// read both as another host, and drop tabs and newlines first), without
/// dot segments, and not under `/_boxoffice/` (a return into the gate
/// itself would loop). The same checks apply to the percent-decoded form,
/// so an encoded `%2F%2F` cannot turn into `//` further down the line.
/// Bytes a URL may not carry as they are (spaces, quotes, non-ASCII) are
/// percent-encoded, so the result is a valid `Location` and `href`.
pub fn safe_return(raw: Option<&str>) -> String {
    let ok = |p: &str| -> Option<String> {
        if p.len() > MAX_RETURN || !p.starts_with('/') {
            return None;
        }
        let decoded = percent_decode(p.as_bytes());
        for form in [p.as_bytes(), decoded.as_slice()] {
            if !acceptable(form) {
                return None;
            }
        }
        let out = percent_encode_path(p);
        (out.len() <= MAX_RETURN * 3).then_some(out)
    };
    raw.and_then(ok).unwrap_or_else(|| "/".to_owned())
}

fn acceptable(p: &[u8]) -> bool {
    if p.first() != Some(&b'/') || matches!(p.get(1), Some(b'/' | b'\\')) {
        return false;
    }
    if p.iter().any(|&b| b < 0x20 || b == 0x7f || b == b'\\') {
        return false;
    }
    let path_end = p
        .iter()
        .position(|&b| b == b'?' || b == b'#')
        .unwrap_or(p.len());
    let path = &p[..path_end];
    let dot_segment = path
        .split(|&b| b == b'/')
        .any(|seg| seg == b"." || seg == b"..");
    let gate_own = path.len() >= 11
        && path[..11].eq_ignore_ascii_case(b"/_boxoffice")
        && matches!(path.get(11), None | Some(b'/'));
    !dot_segment && !gate_own
}

fn percent_decode(s: &[u8]) -> Vec<u8> {
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            if let (Some(h), Some(l)) = (
                s.get(i + 1).copied().and_then(hex),
                s.get(i + 2).copied().and_then(hex),
            ) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// Encodes what a URL may not carry as it is; a `%` that starts a valid
/// escape is kept (so this is idempotent), any other `%` becomes `%25`.
fn percent_encode_path(p: &str) -> String {
    let b = p.as_bytes();
    let mut out = String::with_capacity(p.len());
    for (i, &c) in b.iter().enumerate() {
        let keep = match c {
            b'%' => {
                b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
            }
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => true,
            _ => b"-._~!$&'()*+,;=:@/?#[]".contains(&c),
        };
        if keep {
            out.push(char::from(c));
        } else {
            let _ = write!(out, "%{c:02X}");
        }
    }
    out
}

/// A static file the gate serves under `/_boxoffice/assets/`.
#[derive(Debug)]
pub struct Asset {
    /// The full path, with a hash of the content in the name
    /// (`/_boxoffice/assets/wait.1a2b3c4d.js`): a changed file gets a new
    /// name, so assets can be cached as immutable.
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

/// FNV-1a, folded to 32 bits: enough to tell versions of a file apart.
const fn content_hash(bytes: &[u8]) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    (h ^ (h >> 32)) as u32
}

const fn versioned_len(stem: &str, ext: &str) -> usize {
    ASSETS_PREFIX.len() + stem.len() + 1 + 8 + 1 + ext.len()
}

/// `/_boxoffice/assets/<stem>.<8 hex>.<ext>`, at compile time.
const fn versioned<const N: usize>(stem: &str, body: &[u8], ext: &str) -> [u8; N] {
    let mut out = [0u8; N];
    let mut n = 0;
    let parts: [&[u8]; 3] = [ASSETS_PREFIX.as_bytes(), stem.as_bytes(), b"."];
    let mut k = 0;
    while k < parts.len() {
        let mut i = 0;
        while i < parts[k].len() {
            out[n] = parts[k][i];
            n += 1;
            i += 1;
        }
        k += 1;
    }
    let h = content_hash(body);
    let mut d = 0;
    while d < 8 {
        out[n] = b"0123456789abcdef"[((h >> (28 - 4 * d)) & 0xf) as usize];
        n += 1;
        d += 1;
    }
    out[n] = b'.';
    n += 1;
    let mut i = 0;
    while i < ext.len() {
        out[n] = ext.as_bytes()[i];
        n += 1;
        i += 1;
    }
    out
}

macro_rules! embedded {
    ($stem:literal, $ext:literal, $content_type:literal) => {{
        const BODY: &[u8] = include_bytes!(concat!("assets/", $stem, ".", $ext));
        const LEN: usize = versioned_len($stem, $ext);
        const BYTES: [u8; LEN] = versioned::<LEN>($stem, BODY, $ext);
        const PATH: &str = match std::str::from_utf8(&BYTES) {
            Ok(p) => p,
            Err(_) => panic!("asset names are ASCII"),
        };
        Asset {
            path: PATH,
            content_type: $content_type,
            body: BODY,
        }
    }};
}

pub static WAIT_JS: Asset = embedded!("wait", "js", "text/javascript; charset=utf-8");
pub static WAIT_CSS: Asset = embedded!("wait", "css", "text/css; charset=utf-8");
pub static ICON_SVG: Asset = embedded!("icon", "svg", "image/svg+xml");

/// Every asset, for listing.
pub static ASSETS: [&Asset; 3] = [&WAIT_JS, &WAIT_CSS, &ICON_SVG];

/// The asset at a requested path (`/_boxoffice/assets/wait.1a2b3c4d.js`; a
/// query string is ignored). Only the current, hashed names exist.
pub fn asset(path: &str) -> Option<&'static Asset> {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    ASSETS.iter().copied().find(|a| a.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::i18n::{EN, KO};

    /// 2026-12-02T11:01:23Z.
    const NOW: Timestamp = Timestamp::from_millis(1_796_209_283_000);

    fn doc(state: &'static str, phase: &'static str) -> GateDoc {
        let waiting = state == "waiting";
        GateDoc {
            ticket: "t-1".into(),
            event: "e1".into(),
            user: "anon-1".into(),
            event_name: "IU 2026 Seoul, night 1".into(),
            state,
            position: waiting.then_some(1234),
            waiting: 5000,
            eta_s: waiting.then_some(300),
            poll_after_ms: 2000,
            phase,
            opens_at: (phase == "prequeue").then_some(NOW.plus_secs(754)),
            sold_out: phase == "closed",
            seats_free: 10,
            served: 800,
            progress: match state {
                "waiting" => 0.42,
                "admitted" => 1.0,
                _ => 0.0,
            },
        }
    }

    fn page(d: &GateDoc, lang: Lang) -> String {
        render_wait(&PageModel {
            doc: d,
            lang,
            now: NOW,
            return_to: "/seats?section=A",
        })
    }

    /// The text of the element with `id` (up to the next tag).
    fn text_of<'a>(html: &'a str, id: &str) -> &'a str {
        let at = html
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("no #{id}"));
        let open = at + html[at..].find('>').expect("tag end") + 1;
        let close = open + html[open..].find('<').expect("next tag");
        &html[open..close]
    }

    /// The opening tag of the element with `id`.
    fn tag_of<'a>(html: &'a str, id: &str) -> &'a str {
        let at = html
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("no #{id}"));
        let start = html[..at].rfind('<').expect("tag start");
        let end = at + html[at..].find('>').expect("tag end");
        &html[start..=end]
    }

    /// An ` onclick=`-like attribute anywhere.
    fn has_handler(html: &str) -> bool {
        html.match_indices(" on").any(|(i, _)| {
            let rest = &html[i + 3..];
            let name = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            name > 0 && rest.as_bytes().get(name) == Some(&b'=')
        })
    }

    const IDS: [&str; 13] = [
        "bo-wait",
        "bo-position",
        "bo-ahead",
        "bo-eta",
        "bo-progress",
        "bo-updated",
        "bo-state",
        "bo-alert",
        "bo-check",
        "bo-countdown",
        "bo-doc",
        "bo-i18n",
        "bo-event",
    ];

    const STATES: [(&str, &str); 7] = [
        ("waiting", "open"),
        ("waiting", "paused"),
        ("prequeue", "prequeue"),
        ("waiting", "closed"),
        ("admitted", "open"),
        ("expired", "open"),
        ("left", "open"),
    ];

    #[test]
    fn every_state_has_the_fixed_dom() {
        for (state, phase) in STATES {
            for lang in [Lang::Ko, Lang::En] {
                let d = doc(state, phase);
                let h = page(&d, lang);
                for id in IDS {
                    assert_eq!(
                        h.matches(&format!("id=\"{id}\"")).count(),
                        1,
                        "{state}/{phase}/{lang:?}: #{id}"
                    );
                }
                assert!(h.starts_with("<!doctype html>\n<html lang=\""));
                assert!(h.contains(&format!("<html lang=\"{}\">", lang.code())));
                assert_eq!(h.matches("role=\"status\"").count(), 1, "one live region");
                assert_eq!(h.matches("role=\"alert\"").count(), 1);
                assert!(tag_of(&h, "bo-state").contains("role=\"status\""));
                assert!(tag_of(&h, "bo-alert").contains("role=\"alert\""));
                assert!(tag_of(&h, "bo-check").starts_with("<a "));
                assert!(tag_of(&h, "bo-progress").starts_with("<progress "));
                assert!(tag_of(&h, "bo-progress").contains("max=\"1\""));
                assert!(tag_of(&h, "bo-updated").starts_with("<time "));
                let main = tag_of(&h, "bo-wait");
                assert!(main.starts_with("<main "));
                assert!(main.contains(&format!("data-state=\"{state}\"")));
                assert!(main.contains(&format!("data-phase=\"{phase}\"")));
                assert!(main.contains("data-status=\"/_boxoffice/status\""));
                assert!(main.contains("data-stream=\"/_boxoffice/stream\""));
                assert!(
                    main.contains("data-enter=\"/_boxoffice/wait?return=%2Fseats%3Fsection%3DA\"")
                );
                assert!(h.contains("hreflang=\"ko\""));
                assert!(h.contains("hreflang=\"en\""));
                assert!(h.contains(
                    "href=\"/_boxoffice/wait?return=%2Fseats%3Fsection%3DA&amp;lang=ko\""
                ));
                // CSP: no inline code or style, no refresh.
                assert!(!h.contains("style="), "{state}");
                assert!(!h.contains("<style"));
                assert!(!h.contains("http-equiv"));
                assert!(!has_handler(&h), "no inline handlers");
                assert_eq!(h.matches("<script").count(), 3);
                assert_eq!(h.matches("<script type=\"application/json\"").count(), 2);
                assert!(h.contains(&format!("<script src=\"{}\" defer></script>", WAIT_JS.path)));
                assert!(h.contains(&format!("href=\"{}\"", WAIT_CSS.path)));
                assert!(h.contains("IU 2026 Seoul, night 1"));
            }
        }
    }

    #[test]
    fn waiting_shows_the_numbers() {
        let d = doc("waiting", "open");
        let ko = page(&d, Lang::Ko);
        assert_eq!(text_of(&ko, "bo-position"), "1234");
        assert_eq!(text_of(&ko, "bo-ahead"), "1233");
        assert_eq!(text_of(&ko, "bo-eta"), "약 5분");
        assert!(ko.contains("대기 순번"));
        assert!(ko.contains("내 앞에"));
        assert!(ko.contains(">명<"));
        assert!(ko.contains("예상 대기 시간"));
        assert_eq!(
            text_of(&ko, "bo-state"),
            "순서를 기다리고 있습니다. 예상 대기 시간은 약 5분입니다. 진행률 40%."
        );
        assert!(tag_of(&ko, "bo-progress").contains("value=\"0.42\""));
        assert_eq!(text_of(&ko, "bo-progress"), "42%");
        assert_eq!(text_of(&ko, "bo-alert"), "");
        assert_eq!(text_of(&ko, "bo-updated"), "오후 8:01:23 (한국 시간)");
        assert!(tag_of(&ko, "bo-updated").contains("datetime=\"2026-12-02T11:01:23.000Z\""));
        assert!(ko.contains(KO.truth_body) && ko.contains(KO.truth_idle));
        assert!(ko.contains("쿠키"));
        assert!(ko.contains(KO.live_note));
        assert!(!tag_of(&ko, "bo-line").contains("hidden"));
        assert!(tag_of(&ko, "bo-pre").contains("hidden"));
        assert!(tag_of(&ko, "bo-enter").contains("hidden"));
        assert!(tag_of(&ko, "bo-again").contains("hidden"));
        assert!(tag_of(&ko, "bo-state").ends_with("role=\"status\">"));
        assert!(ko.contains("aria-current=\"true\">한국어"));

        let en = page(&d, Lang::En);
        assert_eq!(text_of(&en, "bo-eta"), "about 5 minutes");
        assert_eq!(
            text_of(&en, "bo-state"),
            "You are in line. Estimated wait: about 5 minutes. 40% of the way there."
        );
        assert_eq!(text_of(&en, "bo-check"), "Check now");
        assert_eq!(text_of(&en, "bo-updated"), "11:01:23 UTC");
        assert!(en.contains("Refreshing this page"));
        assert!(en.contains("keeps your place"));
        assert!(en.contains("aria-current=\"true\">English"));

        let mut next = d.clone();
        next.position = Some(1);
        next.eta_s = None;
        assert_eq!(text_of(&page(&next, Lang::Ko), "bo-state"), KO.status_next);
        assert_eq!(text_of(&page(&next, Lang::En), "bo-ahead"), "0");
        let mut unknown = d.clone();
        unknown.eta_s = None;
        assert_eq!(text_of(&page(&unknown, Lang::Ko), "bo-eta"), "계산 중");
    }

    #[test]
    fn the_live_text_ignores_position_ticks() {
        let mut a = doc("waiting", "open");
        let mut b = a.clone();
        b.position = Some(1100);
        b.eta_s = Some(280); // same bucket as 300
        b.progress = 0.45; // same tens of percent
        a.position = Some(1234);
        for lang in [Lang::Ko, Lang::En] {
            assert_eq!(
                text_of(&page(&a, lang), "bo-state"),
                text_of(&page(&b, lang), "bo-state")
            );
        }
        b.progress = 0.5;
        assert_ne!(
            text_of(&page(&a, Lang::En), "bo-state"),
            text_of(&page(&b, Lang::En), "bo-state")
        );
    }

    #[test]
    fn paused_prequeue_soldout() {
        let paused = doc("waiting", "paused");
        assert_eq!(
            text_of(&page(&paused, Lang::Ko), "bo-state"),
            KO.status_paused
        );
        assert!(KO.status_paused.contains("순번은 그대로"));
        assert!(page(&paused, Lang::En).contains("Admissions are paused"));
        assert!(page(&paused, Lang::En).contains("You keep your place"));
        assert!(!tag_of(&page(&paused, Lang::En), "bo-line").contains("hidden"));

        let pre = doc("prequeue", "prequeue");
        let ko = page(&pre, Lang::Ko);
        assert_eq!(text_of(&ko, "bo-state"), KO.status_prequeue);
        assert_eq!(text_of(&ko, "bo-count-label"), "입장 시작 시각");
        assert_eq!(
            text_of(&ko, "bo-countdown"),
            "12월 2일 (수) 오후 8:13 (한국 시간)"
        );
        assert!(tag_of(&ko, "bo-countdown").contains("datetime=\"2026-12-02T11:13:57.000Z\""));
        assert!(!tag_of(&ko, "bo-pre").contains("hidden"));
        assert!(tag_of(&ko, "bo-line").contains("hidden"));
        assert_eq!(text_of(&ko, "bo-position"), "");
        let en = page(&pre, Lang::En);
        assert_eq!(text_of(&en, "bo-countdown"), "Wed 2 Dec, 11:13 UTC");
        assert_eq!(text_of(&en, "bo-count-label"), "The line opens at");

        let sold = doc("waiting", "closed");
        assert_eq!(
            text_of(&page(&sold, Lang::Ko), "bo-state"),
            KO.status_soldout
        );
        assert!(KO.status_soldout.contains("매진"));
        assert!(text_of(&page(&sold, Lang::En), "bo-state").contains("all seats are sold"));
        assert!(tag_of(&page(&sold, Lang::En), "bo-line").contains("hidden"));
    }

    #[test]
    fn admitted_expired_left() {
        let adm = doc("admitted", "open");
        for (lang, s) in [(Lang::Ko, &KO), (Lang::En, &EN)] {
            let h = page(&adm, lang);
            assert_eq!(text_of(&h, "bo-alert"), s.alert_admitted_page);
            assert!(s.alert_admitted.starts_with(s.alert_admitted_page));
            assert!(tag_of(&h, "bo-state").contains("hidden"));
            assert!(!tag_of(&h, "bo-enter").contains("hidden"));
            assert!(h.contains(&format!(
                "<a class=\"bo-button\" href=\"/_boxoffice/wait?return=%2Fseats%3Fsection%3DA\">{}</a>",
                s.enter_link
            )));
            assert!(tag_of(&h, "bo-progress").contains("value=\"1.00\""));
        }
        assert!(KO.alert_admitted_page.contains("지금 입장하실 차례입니다"));
        assert!(EN.alert_admitted.contains("your turn"));

        for (state, ko_text, en_text) in [
            ("expired", KO.status_expired, EN.status_expired),
            ("left", KO.status_left, EN.status_left),
        ] {
            let d = doc(state, "open");
            let ko = page(&d, Lang::Ko);
            let en = page(&d, Lang::En);
            assert_eq!(text_of(&ko, "bo-state"), ko_text);
            assert_eq!(text_of(&en, "bo-state"), en_text);
            assert!(!tag_of(&ko, "bo-again").contains("hidden"));
            assert!(ko.contains("다시 줄 서기"));
            assert!(en.contains("Join the line again"));
            assert!(en.contains(
                "href=\"/_boxoffice/wait?return=%2Fseats%3Fsection%3DA\">Join the line again</a>"
            ));
            assert!(tag_of(&ko, "bo-truth").contains("hidden"));
        }
        assert!(KO.status_expired.contains("만료"));
        assert!(EN.status_expired.contains("lapsed"));
    }

    #[test]
    fn data_is_escaped() {
        let mut d = doc("waiting", "open");
        d.event_name = "<b>\"Rock\" & 'Roll'</b></script><!--".into();
        let h = render_wait(&PageModel {
            doc: &d,
            lang: Lang::En,
            now: NOW,
            return_to: "/a\"b<c>",
        });
        assert!(!h.contains("<b>"));
        assert!(h.contains("&lt;b&gt;&quot;Rock&quot; &amp; &#39;Roll&#39;&lt;/b&gt;"));
        assert_eq!(
            h.matches("</script>").count(),
            3,
            "nothing closes a block early"
        );
        assert!(!h.contains("<!--"));
        // In the JSON block, `<` is \u003c and the value reads back the same.
        let block = text_of(&h, "bo-doc");
        assert!(block.contains("\\u003c/script\\u003e\\u003c!--"));
        assert!(block.contains("\\u0026"));
        let back: serde_json::Value = serde_json::from_str(block).expect("json");
        assert_eq!(back["event_name"], d.event_name.as_str());
        assert_eq!(back["position"], 1234);
        // The return path is encoded for the URL, then escaped for HTML.
        assert!(h.contains("return=%2Fa%2522b%253Cc%253E"));
        assert!(!h.contains("/a\"b"));
        let strings: serde_json::Value =
            serde_json::from_str(text_of(&h, "bo-i18n")).expect("i18n json");
        assert_eq!(strings["check_link"], "Check now");
        assert_eq!(strings["eta_buckets"][3][1], "about 5 minutes");
        assert_eq!(esc("<&>\"'"), "&lt;&amp;&gt;&quot;&#39;");
        assert_eq!(
            json_block("a</script>\u{2028}"),
            "\"a\\u003c/script\\u003e\\u2028\""
        );
    }

    #[test]
    fn safe_return_allows_paths_of_this_site() {
        for p in [
            "/",
            "/seats",
            "/seats?section=A&row=1",
            "/a/b/c#top",
            "/events/iu-2026/seats?x=%2F%2F",
            "/%EC%A2%8C%EC%84%9D",
            "/_boxofficex",
            "/boxoffice/_boxoffice/x",
        ] {
            assert_eq!(safe_return(Some(p)), p, "{p}");
        }
        // Bytes a URL may not carry are encoded, once.
        assert_eq!(safe_return(Some("/좌석 A")), "/%EC%A2%8C%EC%84%9D%20A");
        assert_eq!(safe_return(Some("/a\"b<c>")), "/a%22b%3Cc%3E");
        assert_eq!(safe_return(Some("/100%")), "/100%25");
        let once = safe_return(Some("/좌석 A%zz"));
        assert_eq!(safe_return(Some(&once)), once, "idempotent");
    }

    #[test]
    fn safe_return_refuses_other_places() {
        for p in [
            "",
            "//evil.example",
            "//evil.example/path",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example",
            "http:/evil.example",
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "evil.example",
            "/%2F%2Fevil.example",
            "/%2f/evil.example",
            "/%5Cevil.example",
            "/%5cevil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/a\r\nSet-Cookie: x=1",
            "/a%0d%0aSet-Cookie:%20x=1",
            "/a\u{0}",
            "/a\\b",
            "/./",
            "/.//evil.example",
            "/a/../..//evil.example",
            "/%2E%2E/x",
            "/_boxoffice/wait",
            "/_boxoffice",
            "/_BoxOffice/status?x",
            "/%5Fboxoffice/wait",
            " /seats",
        ] {
            assert_eq!(safe_return(Some(p)), "/", "{p:?}");
        }
        assert_eq!(safe_return(None), "/");
        let long = format!("/{}", "a".repeat(2047));
        assert_eq!(safe_return(Some(&long)), long);
        assert_eq!(safe_return(Some(&format!("{long}a"))), "/");
    }

    #[test]
    fn wait_urls() {
        assert_eq!(wait_url("/", None), "/_boxoffice/wait?return=%2F");
        assert_eq!(
            wait_url("/seats?s=A&r=1", Some(Lang::Ko)),
            "/_boxoffice/wait?return=%2Fseats%3Fs%3DA%26r%3D1&lang=ko"
        );
        assert_eq!(
            wait_url("/좌석", Some(Lang::En)),
            "/_boxoffice/wait?return=%2F%EC%A2%8C%EC%84%9D&lang=en"
        );
    }

    #[test]
    fn problem_pages() {
        for (status, code) in [
            (502, "backend_unavailable"),
            (504, "backend_timeout"),
            (503, "unavailable"),
        ] {
            for (lang, s) in [(Lang::Ko, &KO), (Lang::En, &EN)] {
                let h = render_problem(lang, status, code, "/seats?x=1");
                assert!(h.contains(&format!("<html lang=\"{}\">", lang.code())));
                assert!(h.contains(s.problem_safe), "{status} {lang:?}");
                assert!(h.contains(&format!("{status} · <code>{code}</code>")));
                assert!(h.contains(&format!(
                    "<a id=\"bo-retry\" class=\"bo-button\" href=\"/seats?x=1\">{}</a>",
                    s.problem_retry
                )));
                assert!(h.contains("bo-problem-page"));
                assert!(!h.contains("bo-wait"), "not the waiting page");
                assert!(!h.contains("role=\"status\""));
                assert!(!h.contains("style="));
            }
        }
        assert!(render_problem(Lang::En, 502, "backend_unavailable", "/")
            .contains("The booking site is not answering right now"));
        assert!(render_problem(Lang::Ko, 504, "backend_timeout", "/").contains(KO.problem_timeout));
        assert!(render_problem(Lang::En, 503, "unavailable", "/").contains(EN.problem_busy));
        let evil = render_problem(Lang::En, 502, "<x>", "//evil.example");
        assert!(evil.contains("href=\"/\""));
        assert!(evil.contains("&lt;x&gt;"));
    }

    #[test]
    fn assets_are_found_by_their_hashed_names() {
        for a in ASSETS {
            assert!(a.path.starts_with(ASSETS_PREFIX));
            assert!(std::ptr::eq(asset(a.path).expect("listed"), a));
            assert!(!a.body.is_empty());
            let file = &a.path[ASSETS_PREFIX.len()..];
            let parts: Vec<&str> = file.split('.').collect();
            assert_eq!(parts.len(), 3, "{file}");
            assert_eq!(parts[1].len(), 8);
            assert!(parts[1].bytes().all(|b| b.is_ascii_hexdigit()));
            assert_eq!(
                parts[1],
                format!("{:08x}", content_hash(a.body)),
                "the name follows the content"
            );
        }
        assert_eq!(WAIT_JS.content_type, "text/javascript; charset=utf-8");
        assert_eq!(WAIT_CSS.content_type, "text/css; charset=utf-8");
        assert_eq!(ICON_SVG.content_type, "image/svg+xml");
        assert!(asset(&format!("{}?v=1", WAIT_CSS.path)).is_some());
        for p in [
            "/_boxoffice/assets/wait.js",
            "/_boxoffice/assets/",
            "/_boxoffice/assets/../page.rs",
            "wait.js",
            "",
        ] {
            assert!(asset(p).is_none(), "{p}");
        }
        assert_ne!(content_hash(b"a"), content_hash(b"b"));
    }

    #[test]
    fn the_script_reads_what_the_page_writes() {
        // The script's names for the page's parts and words: renaming one
        // side without the other breaks the live page silently.
        let js = std::str::from_utf8(WAIT_JS.body).expect("utf-8");
        for id in [
            "bo-wait",
            "bo-doc",
            "bo-i18n",
            "bo-position",
            "bo-ahead",
            "bo-eta",
            "bo-progress",
            "bo-updated",
            "bo-state",
            "bo-alert",
            "bo-countdown",
            "bo-count-label",
            "bo-opens",
            "bo-line",
            "bo-pre",
            "bo-enter",
            "bo-again",
            "bo-truth",
            "bo-live",
        ] {
            assert!(js.contains(&format!("'{id}'")), "{id}");
        }
        let strings = serde_json::to_value(&EN).expect("json");
        for key in [
            "eta_buckets",
            "eta_unknown",
            "status_waiting",
            "status_next",
            "status_cookies",
            "alert_admitted",
            "count_label_in",
            "count_now",
            "count_opens",
            "dur_dh",
            "dur_hm",
            "dur_ms",
            "dur_s",
        ] {
            assert!(strings.get(key).is_some(), "{key}");
            assert!(js.contains(&format!("T.{key}")), "{key}");
        }
        for view in ["paused", "prequeue", "soldout", "expired", "left"] {
            assert!(strings.get(format!("status_{view}")).is_some(), "{view}");
        }
        assert!(!js.contains("innerHTML"), "text only, never markup");
    }
}
