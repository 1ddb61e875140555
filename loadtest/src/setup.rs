//! Before and after the run: create the event and the coupon the scenario
//! describes, and read the server's final state back (every seat, the
//! counts, the coupon, the event document, and with Redis `boxoffice:out`).

use crate::http::{self, Auth, Conn, Realm, Req, Resp};
use crate::scenario::Scenario;
use anyhow::{bail, Context, Result};
use boxoffice_loadtest::model::{OutEntry, Readback};
use hyper::Method;
use serde::Deserialize;
use serde_json::json;
use std::net::{Ipv4Addr, SocketAddr};

/// A plain client for the few set-up and read-back requests.
#[derive(Debug)]
pub struct Admin {
    pub auth: Auth,
    pub src: Ipv4Addr,
    pub dst: SocketAddr,
    conn: Option<Conn>,
}

impl Admin {
    pub fn new(auth: Auth, src: Ipv4Addr, dst: SocketAddr) -> Self {
        Admin {
            auth,
            src,
            dst,
            conn: None,
        }
    }

    pub async fn send(&mut self, req: Req) -> Result<Resp> {
        let what = format!("{} {}", req.method, req.path);
        let r = self.auth.build(req)?;
        if !self.conn.as_ref().is_some_and(Conn::usable) {
            self.conn = Some(http::connect(self.src, self.dst).await?);
        }
        let conn = self.conn.as_mut().context("no connection")?;
        let resp = tokio::time::timeout(std::time::Duration::from_secs(60), conn.send(r))
            .await
            .with_context(|| format!("{what}: no answer within 60 s"))?;
        match resp {
            Ok(r) => Ok(r),
            Err(e) => {
                self.conn = None;
                Err(e.context(what))
            }
        }
    }

    async fn expect(&mut self, req: Req, ok: &[u16]) -> Result<serde_json::Value> {
        let what = format!("{} {}", req.method, req.path);
        let r = self.send(req).await?;
        if !ok.contains(&r.status) {
            bail!(
                "{what}: HTTP {} {}",
                r.status,
                String::from_utf8_lossy(&r.body[..r.body.len().min(500)])
            );
        }
        serde_json::from_slice(&r.body).with_context(|| format!("{what}: not JSON"))
    }

    pub async fn get_json(&mut self, path: String) -> Result<serde_json::Value> {
        self.expect(Req::get(path), &[200]).await
    }
}

/// The event's JSON body as the scenario describes it.
pub fn event_body(sc: &Scenario, opens_at: Option<&str>) -> serde_json::Value {
    let e = &sc.event;
    let mut queue = json!({
        "capacity": e.capacity,
        "admit_per_s": e.admit_per_s,
        "session_ttl_s": e.session_ttl_s,
        "idle_timeout_s": e.idle_timeout_s,
        "max_waiting": e.max_waiting,
        "prequeue": e.prequeue.as_str(),
        // A service join works whatever the identity; `signed` keeps public
        // joins out of a service-identity run.
        "identity": match e.identity {
            boxoffice_loadtest::model::IdentityMode::Anonymous => "anonymous",
            _ => "signed",
        },
    });
    if let Some(b) = e.poll_budget_per_s {
        queue["poll_budget_per_s"] = json!(b);
    }
    let mut seats = Vec::new();
    for s in &e.sections {
        for r in 1..=s.rows {
            seats.push(json!({"section": s.name, "row": r.to_string(), "first": 1,
                              "last": s.seats_per_row, "category": s.category}));
        }
    }
    let mut body = json!({
        "name": format!("loadtest {}", sc.name),
        "queue": queue,
        "seats": seats,
        "holds": {"ttl_s": e.holds.ttl_s, "max_seats_per_user": e.holds.max_seats_per_user},
    });
    if let Some(o) = opens_at {
        body["opens_at"] = json!(o);
    }
    body
}

pub async fn create(
    admin: &mut Admin,
    sc: &Scenario,
    event: &str,
    coupon: &str,
    opens_at: Option<&str>,
) -> Result<()> {
    let body = serde_json::to_vec(&event_body(sc, opens_at))?;
    admin
        .expect(
            Req::new(
                Method::PUT,
                format!("/v1/events/{event}"),
                Realm::Admin,
                Some(body),
            ),
            &[201],
        )
        .await
        .context("creating the event")?;
    let body =
        serde_json::to_vec(&json!({"stock": sc.coupon.stock, "per_user": sc.coupon.per_user}))?;
    admin
        .expect(
            Req::new(
                Method::PUT,
                format!("/v1/coupons/{coupon}"),
                Realm::Admin,
                Some(body),
            ),
            &[201],
        )
        .await
        .context("creating the coupon")?;
    Ok(())
}

/// The server's final state.
pub async fn readback(
    admin: &mut Admin,
    sc: &Scenario,
    event: &str,
    coupon: &str,
) -> Result<Readback> {
    #[derive(Deserialize)]
    struct Map {
        rows: Vec<Row>,
    }
    #[derive(Deserialize)]
    struct Row {
        row: String,
        first: u32,
        status: String,
    }
    let mut rb = Readback::default();
    for s in &sc.event.sections {
        let v = admin
            .get_json(format!("/v1/events/{event}/seats?section={}", s.name))
            .await?;
        let map: Map = serde_json::from_value(v).context("seat map")?;
        for row in map.rows {
            for (k, c) in row.status.chars().enumerate() {
                rb.seats.insert(
                    format!("{}-{}-{}", s.name, row.row, row.first as usize + k),
                    c,
                );
            }
        }
    }
    let counts = admin.get_json(format!("/v1/events/{event}/seats")).await?;
    let n =
        |v: &serde_json::Value, k: &str| v.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
    rb.free = n(&counts, "free");
    rb.held = n(&counts, "held");
    rb.sold = n(&counts, "sold");
    let c = admin.get_json(format!("/v1/coupons/{coupon}")).await?;
    rb.coupon_stock = n(&c, "stock");
    rb.coupon_issued = n(&c, "issued");
    rb.coupon_remaining = n(&c, "remaining");
    let e = admin.get_json(format!("/v1/events/{event}")).await?;
    rb.served = n(&e, "served");
    rb.active = n(&e, "admitted");
    rb.waiting = n(&e, "waiting");
    let s = |k: &str| {
        e.get(k)
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    };
    rb.prequeue_seed = s("prequeue_seed");
    rb.prequeue_seed_sha256 = s("prequeue_seed_sha256");
    Ok(rb)
}

/// Unix ms of an RFC 3339 timestamp.
pub fn rfc3339_ms(s: &str) -> Option<u64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

pub fn rfc3339(ms: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// One `boxoffice:out` entry's `json` field, if it is of this event or coupon.
pub fn out_entry(json: &str, event: &str, coupon: &str) -> Option<OutEntry> {
    #[derive(Deserialize)]
    struct Env {
        id: String,
        #[serde(rename = "type")]
        kind: String,
        event: String,
        at: String,
        #[serde(default)]
        data: Data,
    }
    #[derive(Deserialize, Default)]
    struct Data {
        join: Option<u32>,
        user: Option<String>,
        #[serde(default)]
        seats: Vec<String>,
        claim: Option<String>,
        reason: Option<String>,
    }
    let e: Env = serde_json::from_str(json).ok()?;
    let ours = if e.kind.starts_with("coupon.") {
        e.event == coupon
    } else {
        e.event == event
    };
    if !ours {
        return None;
    }
    Some(OutEntry {
        id: e.id,
        kind: e.kind,
        at_ms: rfc3339_ms(&e.at).unwrap_or(0),
        join: e.data.join,
        user: e.data.user,
        seats: e.data.seats,
        claim: e.data.claim,
        reason: e.data.reason,
    })
}

/// Every `boxoffice:out` entry of the event and coupon, oldest first.
pub fn read_out(url: &str, event: &str, coupon: &str) -> Result<Vec<OutEntry>> {
    let client = redis::Client::open(url)?;
    let mut con = client.get_connection().context("connecting to Redis")?;
    let mut out = Vec::new();
    let mut start = "-".to_string();
    loop {
        let page: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
            .arg("boxoffice:out")
            .arg(&start)
            .arg("+")
            .arg("COUNT")
            .arg(10_000)
            .query(&mut con)
            .context("XRANGE boxoffice:out")?;
        let Some((last, _)) = page.last() else {
            break;
        };
        start = format!("({last}");
        let n = page.len();
        for (_, fields) in page {
            let mut it = fields.chunks(2);
            if let Some(json) = it.find_map(|kv| match kv {
                [k, v] if k == "json" => Some(v),
                _ => None,
            }) {
                if let Some(e) = out_entry(json, event, coupon) {
                    out.push(e);
                }
            }
        }
        if n < 10_000 {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_entries_parse_and_filter() {
        let j = r#"{"v":1,"id":"5-0-9-0","type":"queue.admitted","event":"e1","at":"2026-12-01T11:00:00.250Z","data":{"join":7}}"#;
        let e = out_entry(j, "e1", "c1").expect("ours");
        assert_eq!(e.join, Some(7));
        assert_eq!(e.at_ms, 1_796_122_800_250);
        assert!(out_entry(j, "e2", "c1").is_none());
        let c = r#"{"v":1,"id":"5-1-2-0","type":"coupon.claimed","event":"c1","at":"2026-12-01T11:00:00Z","data":{"coupon":"c1","claim":"k1","user":"u"}}"#;
        assert_eq!(
            out_entry(c, "c1x", "c1").and_then(|e| e.claim).as_deref(),
            Some("k1")
        );
        assert!(out_entry("{", "e1", "c1").is_none());
        assert_eq!(
            rfc3339_ms(&rfc3339(1_796_122_800_250)),
            Some(1_796_122_800_250)
        );
    }

    #[test]
    fn event_bodies_carry_the_layout() {
        let sc = Scenario::parse(include_str!("../scenarios/smoke.toml")).expect("smoke");
        let b = event_body(&sc, Some("2026-12-01T11:00:00Z"));
        assert_eq!(b["seats"].as_array().map(Vec::len), Some(7));
        assert_eq!(b["queue"]["identity"], "signed");
        assert!(b["queue"].get("poll_budget_per_s").is_none());
        assert_eq!(b["opens_at"], "2026-12-01T11:00:00Z");
    }
}
