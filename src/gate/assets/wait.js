// boxoffice waiting page: keeps the server-rendered page live.
// Plain ES2017, no framework, no build step. The page works without this
// script (it shows the real status and a "check now" link); this only
// follows the visitor's status: SSE first, polling if the stream fails.
// Strings come from the page (#bo-i18n), the status from #bo-doc and then
// from /_boxoffice/stream or /_boxoffice/status (GateDoc JSON).
(() => {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const readJson = (id) => {
    try { return JSON.parse($(id).textContent); } catch (e) { return null; }
  };
  const main = $('bo-wait');
  const T = readJson('bo-i18n');
  let doc = readJson('bo-doc');
  if (!main || !T || !doc || typeof doc !== 'object') return;

  const lang = document.documentElement.lang || 'en';
  const statusUrl = main.dataset.status;
  const streamUrl = main.dataset.stream;
  const enterUrl = main.dataset.enter;
  // The server's clock as of rendering, so the countdown does not follow a
  // wrong clock on the visitor's machine.
  const rendered = Number(main.dataset.now) || Date.now();
  const skew = rendered - Date.now();
  const serverNow = () => Date.now() + skew;

  const fill = (t, o) => t.replace(/\{(\w+)\}/g, (m, k) => (k in o ? String(o[k]) : m));
  const setText = (el, t) => { if (el && el.textContent !== t) el.textContent = t; };
  const clamp01 = (p) => (p >= 0 ? Math.min(1, p) : 0);

  // Same derivation as page.rs View::of / View::shows.
  const viewOf = (d) => {
    if (d.state === 'admitted') return 'admitted';
    if (d.sold_out || d.phase === 'closed') return 'soldout';
    if (d.state === 'expired') return 'expired';
    if (d.state === 'left') return 'left';
    if (d.state === 'prequeue' || d.phase === 'prequeue') return 'prequeue';
    if (d.phase === 'paused') return 'paused';
    return 'waiting';
  };
  const SHOW = {
    'bo-line': ['waiting', 'paused'],
    'bo-pre': ['prequeue'],
    'bo-enter': ['admitted'],
    'bo-again': ['expired', 'left'],
    'bo-truth': ['waiting', 'paused', 'prequeue'],
    'bo-live': ['waiting', 'paused', 'prequeue', 'soldout'],
    'bo-state': ['waiting', 'paused', 'prequeue', 'soldout', 'expired', 'left'],
  };

  // ETA words that do not jump: a lower bucket shows at once; a higher one
  // only after two updates in a row were higher (then the lower of the two).
  const B = T.eta_buckets;
  const bucketOf = (eta) => {
    if (typeof eta !== 'number') return -1;
    for (let i = 0; i < B.length; i++) if (eta < B[i][0]) return i;
    return B.length - 1;
  };
  let shown = bucketOf(doc.eta_s);
  let higher = null;
  const settle = (b) => {
    if (b < 0) { higher = null; return shown; } // unknown now: keep the words
    if (shown < 0 || b <= shown) { higher = null; return b; }
    if (higher !== null) { const up = Math.min(higher, b); higher = null; return up; }
    higher = b;
    return shown;
  };
  const etaText = () => (shown < 0 ? T.eta_unknown : B[shown][1]);

  const statusText = (v, d) => {
    if (v === 'waiting') {
      if (d.position === 1) return T.status_next;
      const pct = Math.floor(clamp01(d.progress) * 10) * 10;
      return fill(T.status_waiting, { eta: etaText(), pct });
    }
    return T['status_' + v] || '';
  };

  const fmtClock = (date) => date.toLocaleTimeString(lang, { hour: 'numeric', minute: '2-digit', second: '2-digit' });
  const fmtWhen = (date) => date.toLocaleString(lang, { month: 'long', day: 'numeric', weekday: 'short', hour: 'numeric', minute: '2-digit' });
  const fmtDur = (ms) => {
    let s = Math.max(0, Math.ceil(ms / 1000));
    const d = Math.floor(s / 86400); s %= 86400;
    const h = Math.floor(s / 3600); s %= 3600;
    const m = Math.floor(s / 60); s %= 60;
    if (d > 0) return fill(T.dur_dh, { d, h });
    if (h > 0) return fill(T.dur_hm, { h, m });
    if (m > 0) return fill(T.dur_ms, { m, s });
    return fill(T.dur_s, { s });
  };

  let ticker = null;
  const countdown = () => {
    const at = doc.opens_at ? Date.parse(doc.opens_at) : NaN;
    const cd = $('bo-countdown');
    if (isNaN(at)) { setText(cd, T.count_now); return; }
    const left = at - serverNow();
    setText($('bo-count-label'), T.count_label_in);
    setText(cd, left > 0 ? fmtDur(left) : T.count_now);
    const opens = $('bo-opens');
    setText(opens, fill(T.count_opens, { time: fmtWhen(new Date(at)) }));
    if (opens) opens.hidden = false;
  };

  let done = false;
  let es = null;
  let timer = null;
  const stop = () => {
    done = true;
    clearTimeout(timer); timer = null;
    if (es) { es.close(); es = null; }
  };

  const setUpdated = (date) => {
    const u = $('bo-updated');
    if (!u) return;
    u.dateTime = date.toISOString();
    setText(u, fmtClock(date));
  };

  const apply = (d, when) => {
    if (!d || typeof d !== 'object' || done) return;
    doc = d;
    const v = viewOf(d);
    main.dataset.state = String(d.state);
    main.dataset.phase = String(d.phase);
    main.dataset.view = v;
    shown = settle(bucketOf(d.eta_s));
    const pos = typeof d.position === 'number' ? d.position : null;
    setText($('bo-position'), pos === null ? '' : String(pos));
    setText($('bo-ahead'), pos === null ? '' : String(Math.max(0, pos - 1)));
    setText($('bo-eta'), etaText());
    const bar = $('bo-progress');
    if (bar) {
      const p = Math.round(clamp01(d.progress) * 100) / 100;
      if (bar.value !== p) { bar.value = p; bar.textContent = Math.round(p * 100) + '%'; }
    }
    setUpdated(when || new Date());
    for (const id of Object.keys(SHOW)) {
      const el = $(id);
      if (el) el.hidden = SHOW[id].indexOf(v) < 0;
    }
    // The one live region: its text changes only when its meaning does.
    if (v !== 'admitted') setText($('bo-state'), statusText(v, d));
    if (v === 'prequeue') {
      countdown();
      if (!ticker) ticker = setInterval(countdown, 1000);
    } else if (ticker) {
      clearInterval(ticker); ticker = null;
    }
    if (v === 'admitted') {
      stop();
      setText($('bo-alert'), T.alert_admitted);
      setTimeout(() => { location.assign(enterUrl); }, 1500);
    } else if (v === 'expired' || v === 'left') {
      stop();
    }
  };

  // Polling: every poll_after_ms; in a background tab twice that, capped at
  // 20 s (never slower than asked, never stopped: a poll is presence).
  let fails = 0;
  let dueAt = 0;
  const interval = () => {
    const p = Math.max(500, Number(doc.poll_after_ms) || 2000);
    return document.visibilityState === 'hidden' ? Math.max(p, Math.min(2 * p, 20000)) : p;
  };
  const backoff = () => Math.min(20000, 1000 * Math.pow(2, Math.min(fails++, 5)));
  const later = (ms) => {
    clearTimeout(timer);
    if (done) return;
    dueAt = Date.now() + ms;
    timer = setTimeout(poll, ms);
  };
  const retryAfter = (h) => {
    if (!h) return null;
    const ms = /^\s*\d+\s*$/.test(h) ? Number(h) * 1000 : Date.parse(h) - Date.now();
    return isNaN(ms) ? null : Math.min(600000, Math.max(500, ms));
  };
  // 404: the server no longer knows this visitor's ticket; a reload gets a
  // new place. Once per 30 s at most, so a browser refusing cookies does not
  // reload forever.
  const lost = () => {
    let reload = false;
    try {
      const last = Number(sessionStorage.getItem('bo-reloaded')) || 0;
      if (Date.now() - last > 30000) {
        sessionStorage.setItem('bo-reloaded', String(Date.now()));
        reload = true;
      }
    } catch (e) { reload = false; }
    if (reload) { stop(); location.reload(); return; }
    setText($('bo-state'), T.status_cookies);
    later(backoff());
  };
  const poll = async () => {
    timer = null;
    if (done) return;
    let r;
    try {
      r = await fetch(statusUrl, { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } });
    } catch (e) { later(backoff()); return; }
    if (r.status === 404) { lost(); return; }
    if (r.status === 429) {
      const ra = retryAfter(r.headers.get('Retry-After'));
      later(ra === null ? interval() : ra);
      return;
    }
    if (!r.ok) { later(backoff()); return; }
    let d;
    try { d = await r.json(); } catch (e) { later(backoff()); return; }
    fails = 0;
    apply(d);
    // A little later than asked, spread out, so many pages do not poll in step.
    later(interval() * (1 + Math.random() * 0.2));
  };

  // The stream stays open in a background tab too: it is presence as well.
  const stream = () => {
    if (!window.EventSource || !streamUrl) { later(interval()); return; }
    try { es = new EventSource(streamUrl); } catch (e) { later(interval()); return; }
    es.addEventListener('status', (e) => {
      let d;
      try { d = JSON.parse(e.data); } catch (x) { return; }
      fails = 0;
      apply(d);
    });
    es.onerror = () => {
      if (es) { es.close(); es = null; }
      if (!done) later(interval());
    };
  };

  document.addEventListener('visibilitychange', () => {
    // Back in front: do not wait out a background-length pause.
    if (timer !== null && document.visibilityState === 'visible' && dueAt - Date.now() > interval()) {
      later(interval());
    }
  });

  // A page restored from the back-forward cache shows an old status and
  // has lost its stream: load it afresh (the cookie keeps the place).
  window.addEventListener('pageshow', (e) => { if (e.persisted) location.reload(); });

  apply(doc, new Date(rendered));
  if (!done) stream();
})();
