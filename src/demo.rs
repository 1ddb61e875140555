//! `--demo`: a ready event (three sections, three categories, a waiting
//! room) and a coupon, so a newcomer sees every endpoint work after
//! `make run`, plus the curl lines to try.

use boxoffice_engine::{
    CouponConfig, CouponId, Engine, EventConfig, EventId, HoldPolicy, Identity, PrequeueOrder,
    QueueConfig, Rejection, RowRange, Timestamp,
};
use std::num::NonZeroU32;

pub const EVENT: &str = "demo";
pub const COUPON: &str = "demo-coupon";

fn nz(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN)
}

/// The demo event's configuration.
pub fn event_config() -> EventConfig {
    let mut seats = Vec::new();
    let mut rows = |section: &str, rows: u32, last: u32, category: &str| {
        for r in 1..=rows {
            seats.push(RowRange {
                section: section.into(),
                row: r.to_string(),
                first: 1,
                last,
                category: category.into(),
            });
        }
    };
    rows("A", 3, 20, "VIP");
    rows("B", 10, 30, "R");
    rows("C", 10, 40, "S");
    EventConfig {
        name: "boxoffice demo night".into(),
        opens_at: None,
        queue: Some(QueueConfig {
            capacity: nz(50),
            admit_per_s: nz(5),
            session_ttl_s: nz(600),
            idle_timeout_s: nz(120),
            max_waiting: nz(1_000_000),
            identity: Identity::Signed,
            prequeue: PrequeueOrder::Fifo,
        }),
        seats,
        holds: HoldPolicy::default(),
    }
}

/// Creates the demo event and coupon unless the event exists (a recovered
/// engine may have it already, with sales in it).
///
/// Start-up writes, acknowledged to no client: their receipts are not
/// committed; with replication the shipper stores them with its first batch.
pub fn ensure(engine: &Engine, now: Timestamp) -> Result<(), Rejection> {
    let bad = |_| Rejection::InvalidRequest("demo ids".into());
    let event = EventId::new(EVENT).map_err(bad)?;
    if engine.event(&event, now).is_ok() {
        return Ok(());
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| Rejection::InvalidRequest(e.to_string()))?;
    let _ = engine.put_event(&event, event_config(), seed, now)?;
    let coupon = CouponId::new(COUPON).map_err(bad)?;
    let cfg = CouponConfig {
        stock: 100,
        per_user: nz(1),
        opens_at: None,
        closes_at: None,
    };
    let _ = engine.put_coupon(&coupon, cfg, now)?;
    Ok(())
}

/// Curl lines that walk through the demo.
pub fn examples(base: &str, admin: &str, service: &str) -> String {
    format!(
        r#"Try the demo:
  curl -s {base}/v1/events/{EVENT}
  curl -s -X POST {base}/v1/events/{EVENT}/queue -H 'Content-Type: application/json' -d '{{"user":"u-1"}}'
  curl -s {base}/v1/events/{EVENT}/queue/TICKET            # poll until "state":"admitted", copy "pass"
  curl -sN {base}/v1/events/{EVENT}/queue/TICKET/stream    # or watch it live
  curl -s -X POST {base}/v1/events/{EVENT}/holds -H 'Authorization: Bearer {service}' -H 'Content-Type: application/json' \
       -d '{{"user":"u-1","pass":"PASS","best":{{"count":2,"category":"VIP"}}}}'
  curl -s -X POST {base}/v1/events/{EVENT}/holds/HOLD/confirm -H 'Authorization: Bearer {service}' -H 'Content-Type: application/json' -d '{{"order":"o-1"}}'
  curl -s '{base}/v1/events/{EVENT}/seats?section=A'
  curl -s -X POST {base}/v1/coupons/{COUPON}/claims -H 'Authorization: Bearer {service}' -H 'Content-Type: application/json' -d '{{"user":"u-1"}}'
  curl -s -X POST {base}/v1/events/{EVENT}/pause -H 'Authorization: Bearer {admin}'
  curl -s {base}/metrics | grep boxoffice_queue
"#
    )
}
