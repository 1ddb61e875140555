//! boxoffice in-process: the engine called directly from the client threads,
//! the way a booking backend that embeds the engine crate would call it.
//!
//! Ids (`UserId`, `SeatChoice`) are built before the run, as a server has
//! them parsed from the request before it calls the engine. `now` is a fixed
//! instant for joins, polls, holds and claims (no hold expires mid-run); the
//! admission run moves it 100 ms per tick.

use super::suite::{ClaimResult, Client, Coupon, JoinReply, Outcome, System};
use super::workloads::{histogram, record, Measured, Plan};
use crate::{engine, event, event_id, layout, nz, T0};
use anyhow::{bail, ensure, Context, Result};
use boxoffice_engine::queue::TicketState;
use boxoffice_engine::seats::SeatChoice;
use boxoffice_engine::{
    CouponConfig, CouponId, Engine, EventId, HoldId, PrequeueOrder, QueueConfig, Receipt,
    Rejection, SeatId, UserId,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Milliseconds of engine time per admission tick.
const TICK_MS: u64 = 100;

/// The engine side. The queue lives in its own engine so `tick` (which walks
/// every event) does only the admission work being measured.
#[derive(Debug)]
pub struct EngineSide {
    /// The handles client threads share (see [`EngineParts`]).
    parts: EngineParts,
    joiners: u32,
    admit_batch: u32,
    sizes: (u32, u32, u32),
}

#[derive(Debug)]
pub struct EngineClient {
    side: EngineParts,
}

/// What a client thread needs: cheap clones of the shared handles.
#[derive(Clone, Debug)]
struct EngineParts {
    queue_engine: Arc<Engine>,
    engine: Arc<Engine>,
    users: Arc<Vec<UserId>>,
    choices: Arc<Vec<(usize, SeatChoice)>>,
    queue: EventId,
    venue: EventId,
    coupon: CouponId,
    spin_coupon: CouponId,
}

impl EngineSide {
    pub fn new(plan: &Plan) -> Result<Self> {
        let users = plan
            .users
            .iter()
            .map(|u| UserId::new(u).context("user id"))
            .collect::<Result<Vec<_>>>()?;
        let choices = plan
            .holds
            .iter()
            .map(|h| {
                h.seats
                    .iter()
                    .map(|s| SeatId::parse(s).context("seat id"))
                    .collect::<Result<Vec<_>>>()
                    .map(|seats| (h.user, SeatChoice::Exact(seats)))
            })
            .collect::<Result<Vec<_>>>()?;
        let s = &plan.sizes;
        Ok(EngineSide {
            parts: EngineParts {
                queue_engine: Arc::new(engine(16)),
                engine: Arc::new(engine(16)),
                users: Arc::new(users),
                choices: Arc::new(choices),
                queue: event_id("q"),
                venue: event_id("s"),
                coupon: CouponId::new("c").context("coupon id")?,
                spin_coupon: CouponId::new("c-spin").context("coupon id")?,
            },
            joiners: u32::try_from(s.joiners).context("joiners")?,
            admit_batch: u32::try_from(s.admit_batch).context("admit batch")?,
            sizes: (s.sections, s.rows, s.per_row),
        })
    }

    fn parts(&self) -> EngineParts {
        self.parts.clone()
    }

    /// Admits the whole line with `tick`, one scheduler thread, `admit_batch`
    /// users a tick. Timed: the ticks. Checked after each tick (untimed): the
    /// users admitted are exactly the next ones in line, in order.
    pub fn admit(&self, line: &[(String, u64)]) -> Result<Outcome> {
        let (q, e) = (&self.parts.queue, &self.parts.queue_engine);
        // Tickets in line order (position 1 first).
        let mut order = vec![""; line.len()];
        for (ticket, pos) in line {
            let slot = order
                .get_mut((*pos as usize).wrapping_sub(1))
                .context("position out of range")?;
            *slot = ticket.as_str();
        }
        let mut now = T0.plus_secs(1);
        let _ = e
            .resume(q, now)
            .map_err(|r| anyhow::anyhow!("resume: {r}"))?;
        let mut hist = histogram();
        let mut busy = Duration::ZERO;
        let (mut admitted, mut idle_ticks) = (0usize, 0u32);
        while admitted < order.len() {
            now = now.plus_ms(TICK_MS);
            let start = Instant::now();
            let report = e.tick(now);
            let took = start.elapsed();
            record(&mut hist, took);
            busy += took;
            let n = report.admitted as usize;
            ensure!(
                report.idle_dropped == 0 && report.sessions_expired == 0,
                "nobody should be dropped or expire here: {report:?}"
            );
            idle_ticks = if n == 0 { idle_ticks + 1 } else { 0 };
            ensure!(
                idle_ticks < 100,
                "the engine stopped admitting at {admitted}"
            );
            ensure!(
                admitted + n <= order.len(),
                "admitted more than were waiting"
            );
            // FIFO: exactly the next `n` in line are now admitted...
            for t in &order[admitted..admitted + n] {
                let s = e
                    .status(q, t, now)
                    .map_err(|r| anyhow::anyhow!("status: {r}"))?;
                ensure!(
                    s.status.state == TicketState::Admitted,
                    "a user within the first {} is {:?}",
                    admitted + n,
                    s.status.state
                );
            }
            admitted += n;
            // ...and the next one is first in line.
            if let Some(t) = order.get(admitted) {
                let s = e
                    .status(q, t, now)
                    .map_err(|r| anyhow::anyhow!("status: {r}"))?;
                ensure!(
                    s.status.state == TicketState::Waiting && s.status.position == Some(1),
                    "after {admitted} admissions the next user is {:?} at {:?}",
                    s.status.state,
                    s.status.position
                );
            }
            let info = e.event(q, now).map_err(|r| anyhow::anyhow!("event: {r}"))?;
            ensure!(
                info.admitted == admitted as u64 && info.waiting == (order.len() - admitted) as u64,
                "event says {} admitted, {} waiting after {admitted} admissions",
                info.admitted,
                info.waiting
            );
        }
        let ticks = hist.len();
        Ok(Outcome::new(
            Measured {
                ops: admitted as u64,
                elapsed: busy,
                hist,
                // Ticks alternate with untimed FIFO checks; process CPU
                // time would count both.
                cpu: None,
                cpu_parts: Vec::new(),
            },
            vec![format!("{ticks} ticks of {TICK_MS} ms engine time")],
        ))
    }
}

fn reject(what: &str, r: Rejection) -> anyhow::Error {
    anyhow::anyhow!("{what}: {r}")
}

impl System for EngineSide {
    type Client = EngineClient;

    fn client(&self) -> Result<EngineClient> {
        Ok(EngineClient { side: self.parts() })
    }

    fn setup_queue(&self) -> Result<()> {
        // Capacity for everyone and sessions/idle timeouts beyond the run, so
        // admission is paced by `admit_per_s` alone: `admit_batch` per tick.
        let per_s = (u64::from(self.admit_batch) * 1000 / TICK_MS).min(100_000) as u32;
        let cfg = QueueConfig {
            capacity: nz(self.joiners),
            admit_per_s: nz(per_s),
            session_ttl_s: nz(86_400),
            idle_timeout_s: nz(86_400),
            max_waiting: nz(100_000_000),
            poll_budget_per_s: boxoffice_engine::QueueConfig::default_poll_budget(
                nz(per_s),
                nz(100_000_000),
            ),
            identity: boxoffice_engine::Identity::Signed,
            prequeue: PrequeueOrder::Fifo,
        };
        let e = &self.parts.queue_engine;
        let _ = e
            .put_event(&self.parts.queue, event(Some(cfg), vec![], 4), [1; 32], T0)
            .map_err(|r| reject("put_event", r))?;
        let _ = e
            .pause(&self.parts.queue, T0)
            .map_err(|r| reject("pause", r))?;
        Ok(())
    }

    fn waiting(&self) -> Result<u64> {
        let info = self
            .parts
            .queue_engine
            .event(&self.parts.queue, T0)
            .map_err(|r| reject("event", r))?;
        Ok(info.waiting)
    }

    fn setup_seats(&self) -> Result<()> {
        let (sections, rows, per_row) = self.sizes;
        let cfg = event(None, layout(sections, rows, per_row), 4);
        let _ = self
            .parts
            .engine
            .put_event(&self.parts.venue, cfg, [2; 32], T0)
            .map_err(|r| reject("put_event", r))?;
        Ok(())
    }

    fn seat_counts(&self) -> Result<(u64, u64)> {
        let c = self
            .parts
            .engine
            .seat_counts(&self.parts.venue, T0)
            .map_err(|r| reject("seats", r))?;
        Ok((c.total.held, c.total.sold))
    }

    fn setup_coupon(&self, coupon: Coupon, stock: u32) -> Result<()> {
        let id = match coupon {
            Coupon::Main => &self.parts.coupon,
            Coupon::Spin => &self.parts.spin_coupon,
        };
        let cfg = CouponConfig {
            stock,
            per_user: nz(1),
            opens_at: None,
            closes_at: None,
        };
        let _ = self
            .parts
            .engine
            .put_coupon(id, cfg, T0)
            .map_err(|r| reject("put_coupon", r))?;
        Ok(())
    }

    fn coupon_counts(&self, coupon: Coupon) -> Result<(u64, u64)> {
        let id = match coupon {
            Coupon::Main => &self.parts.coupon,
            Coupon::Spin => &self.parts.spin_coupon,
        };
        let (_, c) = self
            .parts
            .engine
            .coupon(id)
            .map_err(|r| reject("coupon", r))?;
        Ok((u64::from(c.issued), u64::from(c.remaining)))
    }
}

impl Client for EngineClient {
    type Hold = HoldId;

    fn join(&mut self, user: usize) -> Result<JoinReply> {
        let s = &self.side;
        let j = s
            .queue_engine
            .join(&s.queue, &s.users[user], T0)
            .map(Receipt::into_value)
            .map_err(|r| reject("join", r))?;
        let position = j
            .view
            .status
            .position
            .context("a joined user has no position")?;
        Ok(JoinReply {
            ticket: j.view.status.ticket,
            position,
            created: j.created,
            seq: None,
        })
    }

    fn poll(&mut self, ticket: &str) -> Result<u64> {
        let s = &self.side;
        let v = s
            .queue_engine
            .status(&s.queue, ticket, T0)
            .map_err(|r| reject("status", r))?;
        match (v.status.state, v.status.position) {
            (TicketState::Waiting, Some(p)) => Ok(p),
            (state, _) => bail!("ticket is {state:?}, not waiting"),
        }
    }

    fn hold(&mut self, attempt: usize) -> Result<Option<HoldId>> {
        let s = &self.side;
        let (user, choice) = &s.choices[attempt];
        match s.engine.hold(&s.venue, &s.users[*user], choice, None, T0) {
            Ok(reply) => Ok(Some(reply.into_value().hold.id)),
            Err(Rejection::SeatsUnavailable { .. }) => Ok(None),
            Err(r) => Err(reject("hold", r)),
        }
    }

    fn confirm(&mut self, _attempt: usize, hold: &HoldId) -> Result<bool> {
        let s = &self.side;
        match s.engine.confirm(&s.venue, *hold, "order", T0) {
            Ok(_) => Ok(true),
            Err(Rejection::HoldExpired) => Ok(false),
            Err(r) => Err(reject("confirm", r)),
        }
    }

    fn claim(&mut self, coupon: Coupon, user: usize) -> Result<ClaimResult> {
        let s = &self.side;
        let id = match coupon {
            Coupon::Main => &s.coupon,
            Coupon::Spin => &s.spin_coupon,
        };
        match s.engine.claim(id, &s.users[user], None, T0) {
            Ok(_) => Ok(ClaimResult::Claimed),
            Err(Rejection::AlreadyClaimed) => Ok(ClaimResult::AlreadyClaimed),
            Err(Rejection::SoldOut) => Ok(ClaimResult::SoldOut),
            Err(r) => Err(reject("claim", r)),
        }
    }
}
