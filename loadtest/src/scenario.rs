//! Scenario files (TOML, `loadtest/scenarios/`): who arrives when, what they
//! do in line and after admission, and the run's bounds. Unknown keys are
//! refused (`deny_unknown_fields`), so a typo never silently runs a default;
//! [`Scenario::validate`] checks the numbers with messages that name the key.

use anyhow::{bail, ensure, Context, Result};
use boxoffice_loadtest::model::{Behaviour, IdentityMode};
use serde::Deserialize;
use std::path::Path;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// Seeds every random choice of the run (behaviours, seats, failures).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// How often the server's event and coupon documents are sampled.
    #[serde(default = "default_sample_ms")]
    pub sample_ms: u64,
    pub event: EventSpec,
    pub coupon: CouponSpec,
    pub arrivals: Arrivals,
    pub behaviour: Mix,
    pub purchase: PurchaseSpec,
    pub limits: Limits,
}

fn default_seed() -> u64 {
    0x5eed_b0c5
}
fn default_sample_ms() -> u64 {
    250
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prequeue {
    #[default]
    Fifo,
    Random,
}

impl Prequeue {
    pub fn as_str(self) -> &'static str {
        match self {
            Prequeue::Fifo => "fifo",
            Prequeue::Random => "random",
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    pub capacity: u32,
    pub admit_per_s: u32,
    #[serde(default = "default_session_ttl")]
    pub session_ttl_s: u32,
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_s: u32,
    #[serde(default = "default_max_waiting")]
    pub max_waiting: u32,
    #[serde(default)]
    pub prequeue: Prequeue,
    /// Opening this long after the run starts (arrivals before it are in the
    /// pre-queue); absent: open at creation.
    pub opens_in_s: Option<f64>,
    /// Sent as `queue.poll_budget_per_s` only when set.
    pub poll_budget_per_s: Option<u32>,
    #[serde(default)]
    pub identity: IdentityMode,
    /// Waiting VUs leave (DELETE of the ticket) at their next read once the
    /// server reports the event closed (every seat sold), as people do when
    /// the page says "sold out"; otherwise they wait to be admitted in vain.
    #[serde(default = "yes")]
    pub leave_when_sold_out: bool,
    pub sections: Vec<SectionSpec>,
    pub holds: HoldSpec,
}

fn default_session_ttl() -> u32 {
    600
}
fn default_idle_timeout() -> u32 {
    120
}
fn default_max_waiting() -> u32 {
    5_000_000
}
fn yes() -> bool {
    true
}

/// `rows` rows of `seats_per_row` seats named `<name>-<row>-<n>`, rows
/// numbered from 1, all of one category.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SectionSpec {
    pub name: String,
    pub rows: u32,
    pub seats_per_row: u32,
    pub category: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldSpec {
    pub ttl_s: u32,
    pub max_seats_per_user: u32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CouponSpec {
    pub stock: u32,
    #[serde(default = "one")]
    pub per_user: u32,
}

fn one() -> u32 {
    1
}

/// The arrival curve: phases one after another, each spreading its users
/// evenly over its duration (open loop: every VU has an intended arrival
/// time, kept whatever the server does).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arrivals {
    pub phases: Vec<Phase>,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    pub users: u32,
    pub over_s: f64,
}

/// What VUs do while in line, as fractions of all VUs (they must sum to 1).
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mix {
    #[serde(default)]
    pub poll: f64,
    #[serde(default)]
    pub stream: f64,
    #[serde(default)]
    pub abandon: f64,
    #[serde(default)]
    pub refresh: f64,
    #[serde(default)]
    pub second_tab: f64,
    #[serde(default)]
    pub idle: f64,
    /// An abandoning VU leaves at a uniformly random time within this many
    /// seconds of joining (if still in line or in its session then).
    #[serde(default = "default_abandon_within")]
    pub abandon_within_s: f64,
}

fn default_abandon_within() -> f64 {
    10.0
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurchaseSpec {
    /// Fraction of admitted VUs that pick seats from the seat map; the
    /// others ask for the best available.
    pub choice: f64,
    /// Seats per hold, uniformly in `[seats_min, seats_max]`.
    #[serde(default = "one")]
    pub seats_min: u32,
    #[serde(default = "one")]
    pub seats_max: u32,
    /// Fraction whose payment fails: release the hold, return the coupon
    /// (compensation), complete.
    pub pay_failure: f64,
    /// Fraction of VUs with a coupon that try a second claim (exercises
    /// `per_user`).
    #[serde(default)]
    pub extra_claim: f64,
    /// Think time between admission and the first step, and between steps.
    #[serde(default = "default_think")]
    pub think_s: f64,
    /// Time the payment takes (between claim and confirm or release).
    #[serde(default = "default_pay")]
    pub pay_s: f64,
}

fn default_think() -> f64 {
    0.5
}
fn default_pay() -> f64 {
    1.0
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// The run stops by itself after this long, whatever is left.
    pub max_duration_s: f64,
    /// Keep-alive request connections (each carries one request at a time).
    pub connections: u32,
    /// Source addresses 127.0.0.2 … 127.0.0.(1+n) the connections spread over.
    pub source_addrs: u32,
    /// Most SSE streams open at once; stream VUs beyond it poll instead.
    pub max_streams: u32,
    #[serde(default = "default_request_timeout")]
    pub request_timeout_s: f64,
}

fn default_request_timeout() -> f64 {
    30.0
}

impl Scenario {
    pub fn load(path: &Path) -> Result<(Scenario, String)> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading scenario {}", path.display()))?;
        let sc = Scenario::parse(&text).with_context(|| format!("scenario {}", path.display()))?;
        Ok((sc, text))
    }

    pub fn parse(text: &str) -> Result<Scenario> {
        let sc: Scenario = toml::from_str(text)?;
        sc.validate()?;
        Ok(sc)
    }

    /// Total VUs of the arrival curve.
    pub fn users(&self) -> u64 {
        self.arrivals
            .phases
            .iter()
            .map(|p| u64::from(p.users))
            .sum()
    }

    pub fn seats(&self) -> u64 {
        self.event
            .sections
            .iter()
            .map(|s| u64::from(s.rows) * u64::from(s.seats_per_row))
            .sum()
    }

    /// Stretches every duration of the run (arrival phases, think and pay
    /// times, the bound) by `f`, and multiplies the users of every phase by
    /// `users` (at least one per phase).
    pub fn scale(&mut self, f: f64, users: f64) -> Result<()> {
        ensure!(
            f.is_finite() && f > 0.0,
            "--duration-scale must be a positive number"
        );
        ensure!(
            users.is_finite() && users > 0.0,
            "--users-scale must be a positive number"
        );
        for p in &mut self.arrivals.phases {
            p.over_s *= f;
            p.users = ((f64::from(p.users) * users).round() as u32).max(1);
        }
        self.purchase.think_s *= f;
        self.purchase.pay_s *= f;
        self.behaviour.abandon_within_s *= f;
        self.limits.max_duration_s *= f;
        if let Some(o) = &mut self.event.opens_in_s {
            *o *= f;
        }
        self.validate()
    }

    pub fn validate(&self) -> Result<()> {
        let e = &self.event;
        ensure!(
            !self.name.is_empty() && self.name.len() <= 40,
            "name: 1-40 characters"
        );
        ensure!(
            self.name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
            "name: letters, digits, '-' and '_' only (it becomes part of the event id)"
        );
        ensure!(
            (50..=10_000).contains(&self.sample_ms),
            "sample_ms: 50-10000"
        );
        ensure!(
            (1..=10_000_000).contains(&e.capacity),
            "event.capacity: 1-10000000"
        );
        ensure!(
            (1..=100_000).contains(&e.admit_per_s),
            "event.admit_per_s: 1-100000"
        );
        ensure!(
            (1..=86_400).contains(&e.session_ttl_s),
            "event.session_ttl_s: 1-86400"
        );
        ensure!(
            (1..=86_400).contains(&e.idle_timeout_s),
            "event.idle_timeout_s: 1-86400"
        );
        ensure!(
            (1..=100_000_000).contains(&e.max_waiting),
            "event.max_waiting: 1-100000000"
        );
        if let Some(o) = e.opens_in_s {
            ensure!(
                o.is_finite() && (0.0..=3600.0).contains(&o),
                "event.opens_in_s: 0-3600"
            );
        }
        ensure!(!e.sections.is_empty(), "event.sections: at least one");
        let mut names = std::collections::BTreeSet::new();
        for (i, s) in e.sections.iter().enumerate() {
            ensure!(
                !s.name.is_empty()
                    && s.name.len() <= 16
                    && s.name.bytes().all(|c| c.is_ascii_alphanumeric()),
                "event.sections[{i}].name: 1-16 ASCII letters or digits"
            );
            ensure!(
                names.insert(s.name.as_str()),
                "event.sections[{i}].name: {:?} appears twice",
                s.name
            );
            ensure!(
                (1..=10_000).contains(&s.rows),
                "event.sections[{i}].rows: 1-10000"
            );
            ensure!(
                (1..=100_000).contains(&s.seats_per_row),
                "event.sections[{i}].seats_per_row: 1-100000"
            );
            ensure!(
                !s.category.is_empty() && s.category.len() <= 32,
                "event.sections[{i}].category: 1-32 bytes"
            );
        }
        ensure!(
            self.seats() <= 1_000_000,
            "event.sections: at most 1000000 seats in all (the server's limit), {} given",
            self.seats()
        );
        ensure!(
            (1..=86_400).contains(&e.holds.ttl_s),
            "event.holds.ttl_s: 1-86400"
        );
        ensure!(
            (1..=100).contains(&e.holds.max_seats_per_user),
            "event.holds.max_seats_per_user: 1-100"
        );
        ensure!(
            self.coupon.stock <= 100_000_000,
            "coupon.stock: 0-100000000"
        );
        ensure!(
            (1..=1000).contains(&self.coupon.per_user),
            "coupon.per_user: 1-1000"
        );
        let ph = &self.arrivals.phases;
        ensure!(!ph.is_empty(), "arrivals.phases: at least one");
        for (i, p) in ph.iter().enumerate() {
            ensure!(
                p.over_s.is_finite() && (0.0..=86_400.0).contains(&p.over_s),
                "arrivals.phases[{i}].over_s: 0-86400"
            );
        }
        ensure!(
            (1..=20_000_000).contains(&self.users()),
            "arrivals: 1-20000000 users in all, {} given",
            self.users()
        );
        let m = &self.behaviour;
        for (k, v) in [
            ("poll", m.poll),
            ("stream", m.stream),
            ("abandon", m.abandon),
            ("refresh", m.refresh),
            ("second_tab", m.second_tab),
            ("idle", m.idle),
        ] {
            ensure!(
                v.is_finite() && (0.0..=1.0).contains(&v),
                "behaviour.{k}: a fraction 0-1"
            );
        }
        let sum = m.poll + m.stream + m.abandon + m.refresh + m.second_tab + m.idle;
        ensure!(
            (sum - 1.0).abs() < 1e-6,
            "behaviour: the fractions must sum to 1 (they sum to {sum})"
        );
        ensure!(
            m.abandon_within_s.is_finite() && m.abandon_within_s > 0.0,
            "behaviour.abandon_within_s: > 0"
        );
        if e.identity == IdentityMode::Anonymous && m.refresh > 0.0 {
            bail!(
                "behaviour.refresh: an anonymous join is a new user each time, so a refresh \
                 cannot rejoin as the same user; set it to 0 for identity = \"anonymous\""
            );
        }
        let p = &self.purchase;
        for (k, v) in [
            ("choice", p.choice),
            ("pay_failure", p.pay_failure),
            ("extra_claim", p.extra_claim),
        ] {
            ensure!(
                v.is_finite() && (0.0..=1.0).contains(&v),
                "purchase.{k}: a fraction 0-1"
            );
        }
        ensure!(
            1 <= p.seats_min && p.seats_min <= p.seats_max && p.seats_max <= 100,
            "purchase: 1 <= seats_min <= seats_max <= 100"
        );
        ensure!(
            p.seats_max <= e.holds.max_seats_per_user,
            "purchase.seats_max: at most event.holds.max_seats_per_user ({})",
            e.holds.max_seats_per_user
        );
        for (k, v) in [("think_s", p.think_s), ("pay_s", p.pay_s)] {
            ensure!(
                v.is_finite() && (0.0..=3600.0).contains(&v),
                "purchase.{k}: 0-3600"
            );
        }
        let l = &self.limits;
        ensure!(
            l.max_duration_s.is_finite() && (1.0..=7200.0).contains(&l.max_duration_s),
            "limits.max_duration_s: 1-7200"
        );
        ensure!(
            (1..=16_384).contains(&l.connections),
            "limits.connections: 1-16384"
        );
        ensure!(
            (1..=250).contains(&l.source_addrs),
            "limits.source_addrs: 1-250 (127.0.0.2 ...)"
        );
        ensure!(l.max_streams <= 100_000, "limits.max_streams: 0-100000");
        ensure!(
            l.request_timeout_s.is_finite() && (0.1..=300.0).contains(&l.request_timeout_s),
            "limits.request_timeout_s: 0.1-300"
        );
        Ok(())
    }

    /// The behaviour for a uniform draw `u` in [0, 1).
    pub fn behaviour_for(&self, u: f64) -> Behaviour {
        let m = &self.behaviour;
        let table = [
            (m.poll, Behaviour::Poll),
            (m.stream, Behaviour::Stream),
            (m.abandon, Behaviour::Abandon),
            (m.refresh, Behaviour::Refresh),
            (m.second_tab, Behaviour::SecondTab),
            (m.idle, Behaviour::Idle),
        ];
        let mut acc = 0.0;
        for (f, b) in table {
            acc += f;
            if u < acc {
                return b;
            }
        }
        // Rounding left a sliver above the last boundary: the last non-zero.
        table
            .iter()
            .rev()
            .find(|(f, _)| *f > 0.0)
            .map_or(Behaviour::Poll, |(_, b)| *b)
    }
}

/// The open-loop arrival schedule: intended arrival offsets (µs from the
/// run's start) in order, computed lazily so a million VUs cost nothing
/// up front. Phase `k` with `n` users over `d` seconds places user `i` at
/// `start_k + d × i / n`.
#[derive(Clone, Debug)]
pub struct Schedule {
    phases: Vec<Phase>,
    phase: usize,
    i: u32,
    start_us: u64,
}

impl Schedule {
    pub fn new(phases: &[Phase]) -> Self {
        Schedule {
            phases: phases.to_vec(),
            phase: 0,
            i: 0,
            start_us: 0,
        }
    }

    /// The next arrival's offset without taking it.
    pub fn peek(&self) -> Option<u64> {
        let mut phase = self.phase;
        let mut i = self.i;
        let mut start = self.start_us;
        loop {
            let p = self.phases.get(phase)?;
            if i < p.users {
                let d_us = p.over_s * 1e6;
                return Some(start + (d_us * f64::from(i) / f64::from(p.users)) as u64);
            }
            start += (p.over_s * 1e6) as u64;
            phase += 1;
            i = 0;
        }
    }

    /// Takes the next arrival.
    pub fn next_arrival(&mut self) -> Option<u64> {
        loop {
            let p = *self.phases.get(self.phase)?;
            if self.i < p.users {
                let d_us = p.over_s * 1e6;
                let at = self.start_us + (d_us * f64::from(self.i) / f64::from(p.users)) as u64;
                self.i += 1;
                return Some(at);
            }
            self.start_us += (p.over_s * 1e6) as u64;
            self.phase += 1;
            self.i = 0;
        }
    }

    /// Arrivals the schedule intends within `[from_us, to_us)` (for the
    /// per-second `arrivals` counter).
    pub fn intended_between(phases: &[Phase], from_us: u64, to_us: u64) -> u64 {
        let mut start = 0u64;
        let mut n = 0u64;
        for p in phases {
            let d_us = (p.over_s * 1e6) as u64;
            if p.users > 0 {
                // User i is at start + d*i/users; count the i in range.
                let count_below = |t: u64| -> u64 {
                    if t <= start {
                        0
                    } else if d_us == 0 {
                        u64::from(p.users)
                    } else {
                        let x = (t - start) as f64 * f64::from(p.users) / d_us as f64;
                        (x.ceil() as u64).min(u64::from(p.users))
                    }
                };
                n += count_below(to_us) - count_below(from_us);
            }
            start += d_us;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOKE: &str = include_str!("../scenarios/smoke.toml");
    const DEFAULT: &str = include_str!("../scenarios/default.toml");
    const MILLION: &str = include_str!("../scenarios/million.toml");

    #[test]
    fn shipped_scenarios_parse() {
        let s = Scenario::parse(SMOKE).expect("smoke");
        assert!(s.users() < 2_000);
        let d = Scenario::parse(DEFAULT).expect("default");
        assert!(d.users() >= 10_000);
        let m = Scenario::parse(MILLION).expect("million");
        assert!(m.users() >= 1_000_000);
        assert_eq!(m.seats(), 50_000);
        for sc in [&s, &d, &m] {
            assert!(
                sc.users() * 2 > sc.seats(),
                "{}: the venue must sell out",
                sc.name
            );
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let bad = SMOKE.replace("[limits]", "[limits]\nmax_duraton_s = 3");
        let err = format!("{:#}", Scenario::parse(&bad).expect_err("typo"));
        assert!(err.contains("max_duraton_s"), "{err}");
    }

    #[test]
    fn validation_names_the_key() {
        let cases = [
            ("poll = ", "poll = 0.9 #", "sum to 1"),
            ("capacity = ", "capacity = 0 #", "event.capacity"),
            (
                "pay_failure = ",
                "pay_failure = 1.5 #",
                "purchase.pay_failure",
            ),
            (
                "source_addrs = ",
                "source_addrs = 0 #",
                "limits.source_addrs",
            ),
        ];
        for (find, repl, want) in cases {
            let text = SMOKE.replacen(find, repl, 1);
            assert_ne!(text, SMOKE, "{find} is in smoke.toml");
            let err = format!("{:#}", Scenario::parse(&text).expect_err(want));
            assert!(err.contains(want), "{want}: {err}");
        }
    }

    #[test]
    fn anonymous_refresh_is_refused() {
        let text = SMOKE.replacen("identity = \"service\"", "identity = \"anonymous\"", 1);
        assert_ne!(text, SMOKE);
        let err = format!("{:#}", Scenario::parse(&text).expect_err("refresh"));
        assert!(err.contains("behaviour.refresh"), "{err}");
    }

    #[test]
    fn schedule_spreads_each_phase_evenly() {
        let phases = [
            Phase {
                users: 4,
                over_s: 2.0,
            },
            Phase {
                users: 2,
                over_s: 0.0,
            },
            Phase {
                users: 2,
                over_s: 1.0,
            },
        ];
        let mut s = Schedule::new(&phases);
        let mut got = Vec::new();
        while let Some(p) = s.peek() {
            assert_eq!(s.next_arrival(), Some(p));
            got.push(p);
        }
        assert_eq!(
            got,
            [0, 500_000, 1_000_000, 1_500_000, 2_000_000, 2_000_000, 2_000_000, 2_500_000]
        );
        assert_eq!(s.next_arrival(), None);
        assert_eq!(Schedule::intended_between(&phases, 0, 1_000_000), 2);
        assert_eq!(Schedule::intended_between(&phases, 1_000_000, 2_000_000), 2);
        assert_eq!(Schedule::intended_between(&phases, 2_000_000, 3_000_000), 4);
        assert_eq!(Schedule::intended_between(&phases, 0, 10_000_000), 8);
    }

    #[test]
    fn scaling_stretches_time_and_users() {
        let mut s = Scenario::parse(SMOKE).expect("smoke");
        let users = s.users();
        let dur = s.limits.max_duration_s;
        s.scale(2.0, 0.5).expect("scale");
        assert!(s.users() <= users / 2 + s.arrivals.phases.len() as u64);
        assert_eq!(s.limits.max_duration_s, dur * 2.0);
        assert!(s.scale(0.0, 1.0).is_err());
    }

    #[test]
    fn behaviours_follow_the_fractions() {
        let s = Scenario::parse(SMOKE).expect("smoke");
        assert_eq!(s.behaviour_for(0.0), Behaviour::Poll);
        assert_ne!(s.behaviour_for(0.999_999), Behaviour::Poll);
    }
}
