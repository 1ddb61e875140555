//! The waiting page's words, in Korean and English.
//!
//! Every string a visitor sees comes from these two tables: the server
//! renders the page from them and the page's script gets the same table as
//! JSON (`<script type="application/json" id="bo-i18n">`), so the live
//! updates say exactly what a fresh page load would say.

use boxoffice_engine::Timestamp;
use serde::Serialize;
use time::{OffsetDateTime, UtcOffset};

/// A language of the waiting page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lang {
    Ko,
    En,
}

/// Most `Accept-Language` entries looked at: the header is client data, and
/// no real browser sends more than a handful.
const MAX_RANGES: usize = 32;

impl Lang {
    /// `?lang=` wins, then the `bo_lang` cookie, then `Accept-Language`
    /// (q-values), default English.
    ///
    /// `query` is the value of the `lang` parameter; a whole query string
    /// (`return=%2F&lang=ko`) is read too. `cookie` is the `bo_lang` value;
    /// a whole `Cookie` header is read too. Values that name no language of
    /// the page are skipped, never an error.
    pub fn negotiate(
        query: Option<&str>,
        cookie: Option<&str>,
        accept_language: Option<&str>,
    ) -> Lang {
        query
            .and_then(|q| Lang::parse(pick(q, '&', "lang").unwrap_or(q)))
            .or_else(|| cookie.and_then(|c| Lang::parse(pick(c, ';', "bo_lang").unwrap_or(c))))
            .or_else(|| accept_language.and_then(from_accept_language))
            .unwrap_or(Lang::En)
    }

    /// `"ko"` or `"en"`: the `lang` attribute, the `?lang=` value and the cookie value.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ko => "ko",
            Lang::En => "en",
        }
    }

    /// `ko`, `en`, or a tag with one of them as its primary subtag
    /// (`ko-KR`, `en_US`), any case.
    pub fn parse(s: &str) -> Option<Lang> {
        let primary = s.trim().split(['-', '_']).next().unwrap_or("");
        if primary.eq_ignore_ascii_case("ko") {
            Some(Lang::Ko)
        } else if primary.eq_ignore_ascii_case("en") {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// The word table of this language.
    pub fn strings(self) -> &'static Strings {
        match self {
            Lang::Ko => &KO,
            Lang::En => &EN,
        }
    }
}

/// The value of `name` in a `sep`-separated `name=value` list, if `s` is one.
fn pick<'a>(s: &'a str, sep: char, name: &str) -> Option<&'a str> {
    if !s.contains('=') {
        return None;
    }
    s.split(sep).find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.trim() == name).then_some(v.trim())
    })
}

/// The best of Ko and En for an `Accept-Language` header (RFC 9110 §12.5.4):
/// each language scores the q of the range naming it (`ko`, `ko-KR`), else
/// of `*`; the higher score wins, then the one listed first. `None` when
/// neither is acceptable (all q=0, or nothing readable).
fn from_accept_language(header: &str) -> Option<Lang> {
    // (q in thousandths, index of the range that gave it)
    let mut best: [Option<(u16, usize)>; 2] = [None, None];
    let mut star: Option<(u16, usize)> = None;
    for (i, item) in header.split(',').take(MAX_RANGES).enumerate() {
        let mut parts = item.split(';');
        let range = parts.next().unwrap_or("").trim();
        let Some(q) = parts
            .map(str::trim)
            .find_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
            .map(parse_q)
            .unwrap_or(Some(1000))
        else {
            continue; // an unreadable q: the range is ignored
        };
        if range.is_empty() {
            continue;
        }
        if range == "*" {
            star.get_or_insert((q, i));
            continue;
        }
        if let Some(lang) = Lang::parse(range) {
            let slot = &mut best[lang as usize];
            // A more specific range (`ko-KR` after `ko`) does not lower an
            // earlier one: keep the highest q seen for the language.
            if slot.is_none_or(|(bq, _)| q > bq) {
                *slot = Some((q, i));
            }
        }
    }
    let score = |l: Lang| best[l as usize].or(star).filter(|&(q, _)| q > 0);
    match (score(Lang::Ko), score(Lang::En)) {
        (None, None) => None,
        (Some(_), None) => Some(Lang::Ko),
        (None, Some(_)) => Some(Lang::En),
        (Some((kq, ki)), Some((eq, ei))) => {
            // Both only through `*`: the page's default.
            if (kq, std::cmp::Reverse(ki)) > (eq, std::cmp::Reverse(ei)) {
                Some(Lang::Ko)
            } else {
                Some(Lang::En)
            }
        }
    }
}

/// RFC 9110 `qvalue`: `0`, `0.xxx`, `1`, `1.000`, in thousandths.
fn parse_q(s: &str) -> Option<u16> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: u16 = 0;
    for (i, b) in frac.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1][i];
    }
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// Everything the waiting page and the problem page say, in one language.
/// Templates name their blanks `{eta}`, `{pct}`, `{time}`, `{d}`, `{h}`,
/// `{m}`, `{s}`; the script fills them the same way.
#[derive(Debug, Serialize)]
pub struct Strings {
    pub brand: &'static str,
    pub lang_nav: &'static str,
    pub title_wait: &'static str,
    pub position_label: &'static str,
    pub position_unit: &'static str,
    pub ahead_label: &'static str,
    pub ahead_unit: &'static str,
    pub eta_label: &'static str,
    pub eta_unknown: &'static str,
    /// `(upper bound in seconds, exclusive; words)`, ascending; the last
    /// bound is `u64::MAX`. Coarse on purpose: the words stay put while the
    /// estimate wobbles.
    pub eta_buckets: &'static [(u64, &'static str)],
    pub progress_label: &'static str,
    pub updated_label: &'static str,
    /// The zone the server writes times in (the script writes local time).
    pub server_zone: &'static str,
    pub status_waiting: &'static str,
    pub status_next: &'static str,
    pub status_paused: &'static str,
    pub status_prequeue: &'static str,
    pub status_soldout: &'static str,
    pub status_expired: &'static str,
    pub status_left: &'static str,
    pub status_cookies: &'static str,
    /// What the script announces (it then takes the visitor in).
    pub alert_admitted: &'static str,
    /// What the page says when rendered admitted (without the script
    /// nothing moves by itself; the link below does it).
    pub alert_admitted_page: &'static str,
    pub enter_link: &'static str,
    pub again_text: &'static str,
    pub again_link: &'static str,
    pub truth_title: &'static str,
    pub truth_body: &'static str,
    pub truth_idle: &'static str,
    pub live_note: &'static str,
    pub check_link: &'static str,
    pub count_label_at: &'static str,
    pub count_label_in: &'static str,
    pub count_now: &'static str,
    pub count_opens: &'static str,
    pub dur_dh: &'static str,
    pub dur_hm: &'static str,
    pub dur_ms: &'static str,
    pub dur_s: &'static str,
    pub problem_title: &'static str,
    pub problem_title_busy: &'static str,
    pub problem_unavailable: &'static str,
    pub problem_timeout: &'static str,
    pub problem_busy: &'static str,
    pub problem_safe: &'static str,
    pub problem_retry: &'static str,
    pub problem_code: &'static str,
}

pub static KO: Strings = Strings {
    brand: "대기실",
    lang_nav: "언어 선택",
    title_wait: "{event} 대기 중",
    position_label: "대기 순번",
    position_unit: "번",
    ahead_label: "내 앞에",
    ahead_unit: "명",
    eta_label: "예상 대기 시간",
    eta_unknown: "계산 중",
    eta_buckets: &[
        (60, "1분 이내"),
        (150, "약 2분"),
        (240, "약 3분"),
        (420, "약 5분"),
        (750, "약 10분"),
        (1050, "약 15분"),
        (1500, "약 20분"),
        (2250, "약 30분"),
        (3150, "약 45분"),
        (4500, "약 1시간"),
        (6300, "약 1시간 30분"),
        (9000, "약 2시간"),
        (u64::MAX, "2시간 이상"),
    ],
    progress_label: "진행률",
    updated_label: "마지막 업데이트",
    server_zone: "한국 시간",
    status_waiting: "순서를 기다리고 있습니다. 예상 대기 시간은 {eta}입니다. 진행률 {pct}%.",
    status_next: "바로 다음 차례입니다. 곧 입장하실 수 있습니다.",
    status_paused: "입장이 잠시 멈췄습니다. 순번은 그대로 유지되니 이 페이지를 열어 두세요.",
    status_prequeue: "아직 대기열이 열리기 전입니다. 대기열이 열리면 순번이 정해지고 이 페이지에 바로 표시됩니다.",
    status_soldout: "죄송합니다. 모든 좌석이 매진되어 더 이상 입장하실 수 없습니다. 기다려 주셔서 감사합니다.",
    status_expired: "자리를 비우신 시간이 길어 순번이 만료되었습니다.",
    status_left: "대기열에서 나가셨습니다.",
    status_cookies: "이 브라우저에서 순번을 기억하지 못하고 있습니다. 쿠키를 허용한 뒤 ‘지금 확인’을 눌러 주세요.",
    alert_admitted: "지금 입장하실 차례입니다! 예매 페이지로 이동합니다.",
    alert_admitted_page: "지금 입장하실 차례입니다!",
    enter_link: "예매 페이지로 이동",
    again_text: "다시 줄을 서면 새 순번을 받게 됩니다.",
    again_link: "다시 줄 서기",
    truth_title: "새로고침해도 순번은 그대로입니다",
    truth_body: "이 페이지를 새로고침하거나 탭을 닫았다가 다시 열어도 순번은 유지됩니다. 순번은 이 브라우저의 쿠키에 저장되어 있습니다.",
    truth_idle: "다만 정해진 시간보다 오래 자리를 비우면 순번이 사라지니 이 페이지를 열어 두세요. 다른 브라우저나 기기에서 접속하면 새 순번을 받게 됩니다.",
    live_note: "이 페이지는 자동으로 업데이트됩니다. 바뀌지 않으면 ‘지금 확인’을 눌러 주세요.",
    check_link: "지금 확인",
    count_label_at: "입장 시작 시각",
    count_label_in: "입장 시작까지 남은 시간",
    count_now: "곧 시작합니다…",
    count_opens: "시작 시각: {time}",
    dur_dh: "{d}일 {h}시간",
    dur_hm: "{h}시간 {m}분",
    dur_ms: "{m}분 {s}초",
    dur_s: "{s}초",
    problem_title: "예매 사이트가 지금 응답하지 않습니다",
    problem_title_busy: "지금은 접속이 너무 많습니다",
    problem_unavailable: "예매 사이트에 연결할 수 없습니다.",
    problem_timeout: "예매 사이트의 응답이 너무 늦어지고 있습니다.",
    problem_busy: "요청이 한꺼번에 몰려 잠시 처리할 수 없습니다.",
    problem_safe: "입장 순서는 그대로 유지되어 있으니 잠시 후 다시 시도해 주세요.",
    problem_retry: "다시 시도",
    problem_code: "오류",
};

pub static EN: Strings = Strings {
    brand: "Waiting room",
    lang_nav: "Language",
    title_wait: "{event}: waiting room",
    position_label: "Your place in line",
    position_unit: "",
    ahead_label: "People ahead of you",
    ahead_unit: "",
    eta_label: "Estimated wait",
    eta_unknown: "not known yet",
    eta_buckets: &[
        (60, "less than a minute"),
        (150, "about 2 minutes"),
        (240, "about 3 minutes"),
        (420, "about 5 minutes"),
        (750, "about 10 minutes"),
        (1050, "about 15 minutes"),
        (1500, "about 20 minutes"),
        (2250, "about 30 minutes"),
        (3150, "about 45 minutes"),
        (4500, "about an hour"),
        (6300, "about an hour and a half"),
        (9000, "about 2 hours"),
        (u64::MAX, "more than 2 hours"),
    ],
    progress_label: "Progress",
    updated_label: "Last updated",
    server_zone: "UTC",
    status_waiting: "You are in line. Estimated wait: {eta}. {pct}% of the way there.",
    status_next: "You are next in line. Your turn is coming up.",
    status_paused: "Admissions are paused for now. You keep your place in line; keep this page open.",
    status_prequeue: "The line has not opened yet. When it opens you get your place in line, and this page shows it right away.",
    status_soldout: "Sorry, all seats are sold, so nobody more can be let in. Thank you for waiting.",
    status_expired: "Your place in line has lapsed: this page was away for longer than the line allows.",
    status_left: "You have left the line.",
    status_cookies: "This browser is not keeping your place. Allow cookies for this site, then use “Check now”.",
    alert_admitted: "It’s your turn! Taking you to the booking page now.",
    alert_admitted_page: "It’s your turn!",
    enter_link: "Go to the booking page",
    again_text: "Joining again gives you a new place in line.",
    again_link: "Join the line again",
    truth_title: "Refreshing keeps your place",
    truth_body: "Refreshing this page, or closing the tab and coming back, keeps your place: it is kept in a cookie in this browser.",
    truth_idle: "If you are away for longer than the line’s time limit, the place lapses, so keep this page open. Another browser or device gets a place of its own.",
    live_note: "This page updates by itself. If it does not, use “Check now”.",
    check_link: "Check now",
    count_label_at: "The line opens at",
    count_label_in: "The line opens in",
    count_now: "Opening now…",
    count_opens: "Opens at {time}",
    dur_dh: "{d} d {h} h",
    dur_hm: "{h} h {m} min",
    dur_ms: "{m} min {s} s",
    dur_s: "{s} s",
    problem_title: "The booking site is not answering right now",
    problem_title_busy: "The site is very busy right now",
    problem_unavailable: "We cannot reach the booking site.",
    problem_timeout: "The booking site is taking too long to answer.",
    problem_busy: "Too many requests are arriving at once.",
    problem_safe: "Your place is safe. Please try again in a moment.",
    problem_retry: "Try again",
    problem_code: "Error",
};

impl Strings {
    /// Which ETA bucket `eta_s` falls in; `None` while the ETA is unknown.
    pub fn eta_bucket(&self, eta_s: Option<u64>) -> Option<usize> {
        let s = eta_s?;
        Some(
            self.eta_buckets
                .iter()
                .position(|&(bound, _)| s < bound)
                .unwrap_or(self.eta_buckets.len().saturating_sub(1)),
        )
    }

    /// The ETA in words.
    pub fn eta_words(&self, eta_s: Option<u64>) -> &'static str {
        self.eta_bucket(eta_s)
            .and_then(|i| self.eta_buckets.get(i))
            .map_or(self.eta_unknown, |&(_, w)| w)
    }
}

/// Fills `{name}` blanks of a template.
pub fn fill(template: &str, blanks: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (name, value) in blanks {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// Korean pages write times in Korea time (no daylight saving); English
/// pages in UTC, named as such. The script rewrites both in local time.
fn local(lang: Lang, t: Timestamp) -> Option<OffsetDateTime> {
    let nanos = i128::from(t.as_millis()) * 1_000_000;
    let utc = OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()?;
    match lang {
        Lang::Ko => UtcOffset::from_hms(9, 0, 0).ok().map(|o| utc.to_offset(o)),
        Lang::En => Some(utc),
    }
}

/// A time of day with seconds: `오후 8:01:23 (한국 시간)`, `20:01:23 UTC`.
pub fn clock_time(lang: Lang, t: Timestamp) -> String {
    let Some(dt) = local(lang, t) else {
        return String::new();
    };
    let (h, m, s) = (dt.hour(), dt.minute(), dt.second());
    match lang {
        Lang::Ko => format!("{} {}:{m:02}:{s:02} (한국 시간)", ampm(h), h12(h)),
        Lang::En => format!("{h:02}:{m:02}:{s:02} UTC"),
    }
}

/// A date and time: `12월 2일 (수) 오후 8:00 (한국 시간)`, `Wed 2 Dec, 20:00 UTC`.
pub fn date_time(lang: Lang, t: Timestamp) -> String {
    let Some(dt) = local(lang, t) else {
        return String::new();
    };
    let (h, m) = (dt.hour(), dt.minute());
    let wd = usize::from(dt.weekday().number_days_from_monday());
    match lang {
        Lang::Ko => {
            const DAYS: [&str; 7] = ["월", "화", "수", "목", "금", "토", "일"];
            format!(
                "{}월 {}일 ({}) {} {}:{m:02} (한국 시간)",
                u8::from(dt.month()),
                dt.day(),
                DAYS[wd],
                ampm(h),
                h12(h)
            )
        }
        Lang::En => {
            const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
            const MONTHS: [&str; 12] = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ];
            let mon = MONTHS[usize::from(u8::from(dt.month())).saturating_sub(1) % 12];
            format!("{} {} {mon}, {h:02}:{m:02} UTC", DAYS[wd], dt.day())
        }
    }
}

fn ampm(h: u8) -> &'static str {
    if h < 12 {
        "오전"
    } else {
        "오후"
    }
}

fn h12(h: u8) -> u8 {
    match h % 12 {
        0 => 12,
        x => x,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn al(h: &str) -> Lang {
        Lang::negotiate(None, None, Some(h))
    }

    #[test]
    fn accept_language_q_values() {
        assert_eq!(al("ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7"), Lang::Ko);
        assert_eq!(al("en-US,en;q=0.9,ko;q=0.8"), Lang::En);
        assert_eq!(al("en;q=0.5, ko;q=0.8"), Lang::Ko);
        assert_eq!(al("ko-KR"), Lang::Ko);
        assert_eq!(al("en-US"), Lang::En);
        assert_eq!(al("KO"), Lang::Ko);
        assert_eq!(al("fr-FR, ko;q=0.3"), Lang::Ko);
        // Equal q: the one listed first.
        assert_eq!(al("ko, en"), Lang::Ko);
        assert_eq!(al("en, ko"), Lang::En);
        // q=0: not acceptable.
        assert_eq!(al("ko;q=0, en;q=0.1"), Lang::En);
        assert_eq!(al("en;q=0, ko;q=0.1"), Lang::Ko);
        assert_eq!(al("en;q=0"), Lang::En, "nothing acceptable: the default");
    }

    #[test]
    fn accept_language_star() {
        assert_eq!(al("*"), Lang::En);
        // `*` covers the languages not named: Ko at 0.9 beats en at 0.1.
        assert_eq!(al("en;q=0.1, *;q=0.9"), Lang::Ko);
        assert_eq!(al("ko;q=0.1, *;q=0.9"), Lang::En);
        assert_eq!(al("fr, *;q=0.5"), Lang::En);
    }

    #[test]
    fn accept_language_garbage() {
        for h in [
            "",
            ",,,",
            ";q=1",
            "ko;q=2",
            "ko;q=0.0001",
            "ko;q=abc, fr",
            "kor",
            "\u{0}\u{ff}",
            "de-DE",
        ] {
            assert_eq!(al(h), Lang::En, "{h:?}");
        }
        assert_eq!(al("ko;q=2, en;q=0"), Lang::En);
        assert_eq!(al("ko;q=x, en"), Lang::En);
        let long = "fr,".repeat(10_000) + "ko";
        assert_eq!(al(&long), Lang::En, "only the first entries are read");
    }

    #[test]
    fn query_then_cookie_then_header() {
        assert_eq!(
            Lang::negotiate(Some("ko"), Some("en"), Some("en")),
            Lang::Ko
        );
        assert_eq!(
            Lang::negotiate(Some("xx"), Some("ko"), Some("en")),
            Lang::Ko
        );
        assert_eq!(Lang::negotiate(None, Some("en"), Some("ko")), Lang::En);
        assert_eq!(Lang::negotiate(Some(""), Some("zz"), Some("ko")), Lang::Ko);
        assert_eq!(Lang::negotiate(None, None, None), Lang::En);
        // Whole query strings and Cookie headers are read too.
        assert_eq!(
            Lang::negotiate(Some("return=%2F&lang=ko"), None, None),
            Lang::Ko
        );
        assert_eq!(
            Lang::negotiate(None, Some("bo_ticket=abc; bo_lang=ko"), Some("en")),
            Lang::Ko
        );
        assert_eq!(
            Lang::negotiate(None, Some("bo_ticket=ko"), Some("en")),
            Lang::En
        );
    }

    #[test]
    fn parse_and_code() {
        assert_eq!(Lang::parse("ko"), Some(Lang::Ko));
        assert_eq!(Lang::parse(" EN "), Some(Lang::En));
        assert_eq!(Lang::parse("ko_KR"), Some(Lang::Ko));
        assert_eq!(Lang::parse("korean"), None);
        assert_eq!(Lang::parse(""), None);
        for l in [Lang::Ko, Lang::En] {
            assert_eq!(Lang::parse(l.code()), Some(l));
        }
    }

    #[test]
    fn eta_words_are_coarse() {
        for s in [&KO, &EN] {
            assert_eq!(s.eta_words(None), s.eta_unknown);
            assert_eq!(s.eta_words(Some(0)), s.eta_buckets[0].1);
            assert_eq!(s.eta_words(Some(59)), s.eta_buckets[0].1);
            assert_eq!(s.eta_words(Some(u64::MAX)), s.eta_buckets[12].1);
            assert!(s.eta_buckets.windows(2).all(|w| w[0].0 < w[1].0));
        }
        assert_eq!(EN.eta_words(Some(300)), "about 5 minutes");
        assert_eq!(KO.eta_words(Some(300)), "약 5분");
        assert_eq!(EN.eta_words(Some(3600)), "about an hour");
        assert_eq!(KO.eta_words(Some(100)), "약 2분");
        assert_eq!(KO.eta_buckets.len(), EN.eta_buckets.len());
    }

    #[test]
    fn times() {
        // 2026-12-02T11:01:23Z: 20:01:23 in Seoul, a Wednesday.
        let t = Timestamp::from_millis(1_796_209_283_000);
        assert_eq!(clock_time(Lang::En, t), "11:01:23 UTC");
        assert_eq!(clock_time(Lang::Ko, t), "오후 8:01:23 (한국 시간)");
        assert_eq!(date_time(Lang::En, t), "Wed 2 Dec, 11:01 UTC");
        assert_eq!(
            date_time(Lang::Ko, t),
            "12월 2일 (수) 오후 8:01 (한국 시간)"
        );
        let midnight = Timestamp::from_millis(1_796_223_600_000); // 00:00 KST on the 3rd
        assert_eq!(
            date_time(Lang::Ko, midnight),
            "12월 3일 (목) 오전 12:00 (한국 시간)"
        );
    }

    #[test]
    fn fill_blanks() {
        assert_eq!(fill("a {x} b {y}", &[("x", "1"), ("y", "2")]), "a 1 b 2");
    }
}
