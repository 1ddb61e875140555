//! `--demo`: a ready event (three sections, three categories, a waiting
//! room) and a coupon, so a newcomer sees every endpoint work after
//! `make run`, plus the curl lines to try.

use boxoffice_engine::{
    CouponConfig, CouponId, Engine, EventConfig, EventId, HoldPolicy, Identity, PassKey,
    PrequeueOrder, QueueConfig, Rejection, RowRange, Timestamp, UserId, UserToken,
};
use std::num::NonZeroU32;

pub const EVENT: &str = "demo";
pub const COUPON: &str = "demo-coupon";

/// A positive demo constant; used in `const` blocks, so a zero is a
/// compile error rather than a silent fallback.
const fn nz(v: u32) -> NonZeroU32 {
    match NonZeroU32::new(v) {
        Some(n) => n,
        None => panic!("demo constants are positive"),
    }
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
            capacity: const { nz(50) },
            admit_per_s: const { nz(5) },
            session_ttl_s: const { nz(600) },
            idle_timeout_s: const { nz(120) },
            max_waiting: const { nz(1_000_000) },
            poll_budget_per_s: boxoffice_engine::QueueConfig::default_poll_budget(
                nz(5),
                nz(1_000_000),
            ),
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
        per_user: const { nz(1) },
        opens_at: None,
        closes_at: None,
    };
    let _ = engine.put_coupon(&coupon, cfg, now)?;
    Ok(())
}

/// The demo user the walkthrough joins as.
pub const USER: &str = "u-1";

/// How long the printed user token lasts: a day of trying things out.
pub const USER_TOKEN_TTL_S: u64 = 24 * 3600;

/// A user token for [`USER`] in the demo event, signed with the server's
/// pass key (as a booking backend would mint it), valid for
/// [`USER_TOKEN_TTL_S`] from `now`.
pub fn user_token(secret: &[u8], now: Timestamp) -> Result<String, Rejection> {
    let bad = |e: &dyn std::fmt::Display| Rejection::InvalidRequest(e.to_string());
    let key = PassKey::new(&crate::config::kid(secret), secret).map_err(|e| bad(&e))?;
    let event = EventId::new(EVENT).map_err(|e| bad(&e))?;
    let user = UserId::new(USER).map_err(|e| bad(&e))?;
    let exp = now.as_millis() / 1000 + USER_TOKEN_TTL_S;
    Ok(UserToken::new(&event, &user, exp).mint(&key))
}

/// A shell assignment of a credential: its value when the server made it up
/// (printed once anyway), else a reference to the environment variable the
/// operator set, so a token given to the server is never echoed.
fn credential(var: &str, env: &str, flag: &str, generated: Option<&str>) -> String {
    match generated {
        Some(v) => format!("{var}={v}"),
        None => format!("{var}=\"${{{env}:?set it to your {flag}}}\""),
    }
}

/// Shell lines that walk through the demo; pasted into bash they run as
/// printed. `admin` and `service` are the tokens only when the server
/// generated them (`None`: the operator's, shown as a placeholder);
/// `user_token` is [`user_token`]'s.
pub fn examples(
    base: &str,
    admin: Option<&str>,
    service: Option<&str>,
    user_token: &str,
) -> String {
    let admin = credential(
        "ADMIN_TOKEN",
        "BOXOFFICE_ADMIN_TOKEN",
        "--admin-token",
        admin,
    );
    let service = credential(
        "SERVICE_TOKEN",
        "BOXOFFICE_SERVICE_TOKEN",
        "--service-token",
        service,
    );
    format!(
        r#"Try the demo (paste into bash):
  B={base}
  {admin}
  {service}
  USER_TOKEN={user_token}   # user {USER} of event {EVENT}, minted at start-up, valid 24 h
  field() {{ sed -E "s/.*\"$1\":\"([^\"]*)\".*/\1/"; }}
  curl -s $B/v1/events/{EVENT}
  # A browser joins with the user token its backend minted for the signed-in user:
  TICKET=$(curl -s -X POST $B/v1/events/{EVENT}/queue -H 'Content-Type: application/json' -d "{{\"user\":\"{USER}\",\"user_token\":\"$USER_TOKEN\"}}" | field ticket); echo $TICKET
  # Or the backend joins on its user's behalf (service realm): the same ticket and place.
  curl -s -X POST $B/v1/events/{EVENT}/queue -H "Authorization: Bearer $SERVICE_TOKEN" -H 'Content-Type: application/json' -d '{{"user":"{USER}"}}'
  sleep 1; curl -s $B/v1/events/{EVENT}/queue/$TICKET     # admitted within a second: "state":"admitted" and a "pass"
  curl -sN --max-time 5 $B/v1/events/{EVENT}/queue/$TICKET/stream   # or watch it live
  PASS=$(curl -s $B/v1/events/{EVENT}/queue/$TICKET | field pass)
  HOLD=$(curl -s -X POST $B/v1/events/{EVENT}/holds -H "Authorization: Bearer $SERVICE_TOKEN" -H 'Content-Type: application/json' \
       -d "{{\"user\":\"{USER}\",\"pass\":\"$PASS\",\"best\":{{\"count\":2,\"category\":\"VIP\"}}}}" | field hold); echo $HOLD
  curl -s -X POST $B/v1/events/{EVENT}/holds/$HOLD/confirm -H "Authorization: Bearer $SERVICE_TOKEN" -H 'Content-Type: application/json' -d '{{"order":"o-1"}}'
  curl -s "$B/v1/events/{EVENT}/seats?section=A"
  curl -s -X POST $B/v1/coupons/{COUPON}/claims -H "Authorization: Bearer $SERVICE_TOKEN" -H 'Content-Type: application/json' -d '{{"user":"{USER}"}}'
  curl -s -X POST $B/v1/events/{EVENT}/pause -H "Authorization: Bearer $ADMIN_TOKEN"
  curl -s $B/metrics | grep boxoffice_queue
"#
    )
}
