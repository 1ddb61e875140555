//! What every compared system offers ([`System`], [`Client`]), and the
//! workloads that are the same for all of them, with their correctness checks.
//!
//! A check that fails is a failed run: it is recorded as such in the result
//! and the program exits non-zero. Informational findings (the Redis design's
//! positions that moved after they were reported) are notes, not failures.

use super::workloads::{drive, timed, Measured, Plan};
use anyhow::{bail, ensure, Context, Result};
use std::collections::HashSet;

/// What a join answered.
#[derive(Clone, Debug)]
pub struct JoinReply {
    /// What the user polls with: a ticket, or the user id in the Redis design.
    pub ticket: String,
    /// 1 = next in.
    pub position: u64,
    /// False for a repeat join that got the existing place back.
    pub created: bool,
    /// The Redis design's `INCR` sequence number (its sorted-set score).
    pub seq: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimResult {
    Claimed,
    AlreadyClaimed,
    SoldOut,
}

/// The two coupon runs: the main one, and the smaller one that the Redis
/// design guards with a spin lock instead of a script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coupon {
    Main,
    Spin,
}

/// One client: a connection (or, in process, a handle), used by one thread.
pub trait Client: Send {
    type Hold: Send;
    fn join(&mut self, user: usize) -> Result<JoinReply>;
    /// The position of a waiting ticket; an error if it is not waiting.
    fn poll(&mut self, ticket: &str) -> Result<u64>;
    /// `Some` if the seats of hold attempt `attempt` were all held, `None` if taken.
    fn hold(&mut self, attempt: usize) -> Result<Option<Self::Hold>>;
    /// True if sold, false if the hold had lapsed.
    fn confirm(&mut self, attempt: usize, hold: &Self::Hold) -> Result<bool>;
    fn claim(&mut self, coupon: Coupon, user: usize) -> Result<ClaimResult>;
    /// Lock attempts made so far (spin-lock path only).
    fn lock_attempts(&self) -> u64 {
        0
    }
}

/// A system under test: makes clients and answers the checks' questions.
pub trait System: Sync {
    type Client: Client;
    fn client(&self) -> Result<Self::Client>;
    /// The serving processes whose CPU time is measured (`None`: this one).
    fn pids(&self) -> Vec<Option<u32>> {
        vec![None]
    }

    /// Creates the waiting room with admission paused, so positions stay put
    /// while joins and polls are measured.
    fn setup_queue(&self) -> Result<()>;
    /// Users in line.
    fn waiting(&self) -> Result<u64>;
    /// Checks the join replies. The default is the engine's promise: first
    /// joins got positions 1..=n exactly once, repeat joins their first place.
    fn check_joins(
        &self,
        replies: &[(usize, JoinReply)],
        joiners: usize,
        _notes: &mut Vec<String>,
    ) -> Result<()> {
        strict_join_check(replies, joiners)
    }
    /// Ticket and expected position of every user, by user index.
    fn line(&self, replies: &[(usize, JoinReply)], joiners: usize) -> Result<Vec<(String, u64)>> {
        let mut line = vec![(String::new(), 0); joiners];
        for (u, r) in replies.iter().filter(|(_, r)| r.created) {
            line[*u] = (r.ticket.clone(), r.position);
        }
        Ok(line)
    }

    fn setup_seats(&self) -> Result<()>;
    /// (held, sold) seats.
    fn seat_counts(&self) -> Result<(u64, u64)>;

    fn setup_coupon(&self, coupon: Coupon, stock: u32) -> Result<()>;
    /// (issued, remaining).
    fn coupon_counts(&self, coupon: Coupon) -> Result<(u64, u64)>;
}

/// A workload's measurement plus what its checks found.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub measured: Measured,
    /// Informational findings (not failures).
    pub notes: Vec<String>,
    /// Spin-lock path: `SET NX` attempts per claim.
    pub lock_attempts_per_op: Option<f64>,
}

impl Outcome {
    pub fn new(measured: Measured, notes: Vec<String>) -> Self {
        Outcome {
            measured,
            notes,
            lock_attempts_per_op: None,
        }
    }
}

fn strict_join_check(replies: &[(usize, JoinReply)], joiners: usize) -> Result<()> {
    let mut first: Vec<Option<u64>> = vec![None; joiners];
    let mut taken = vec![false; joiners + 1];
    for (u, r) in replies.iter().filter(|(_, r)| r.created) {
        ensure!(first[*u].is_none(), "user {u} got two new places");
        let p = r.position as usize;
        ensure!(
            (1..=joiners).contains(&p),
            "position {p} out of 1..={joiners}"
        );
        ensure!(!taken[p], "position {p} given twice");
        taken[p] = true;
        first[*u] = Some(r.position);
    }
    ensure!(
        first.iter().all(Option::is_some),
        "some users never got a new place"
    );
    for (u, r) in replies.iter().filter(|(_, r)| !r.created) {
        ensure!(
            first[*u] == Some(r.position),
            "repeat join of user {u} got position {} instead of {:?}",
            r.position,
            first[*u]
        );
    }
    Ok(())
}

/// 1 M joins with 10% repeats; returns the line for the poll workload.
pub fn joins<S: System>(
    sys: &S,
    plan: &Plan,
    threads: usize,
) -> Result<(Outcome, Vec<(String, u64)>)> {
    sys.setup_queue().context("creating the waiting room")?;
    let (measured, states) = drive(
        threads,
        plan.joins.len(),
        &sys.pids(),
        |_| Ok((sys.client()?, Vec::new())),
        |(c, out), i, h| {
            let u = plan.joins[i];
            let r = timed(h, || c.join(u))?;
            out.push((u, r));
            Ok(())
        },
    )?;
    let replies: Vec<(usize, JoinReply)> = states.into_iter().flat_map(|(_, r)| r).collect();
    let joiners = plan.sizes.joiners;
    let waiting = sys.waiting()?;
    ensure!(
        waiting == joiners as u64,
        "{waiting} users in line after {joiners} distinct joins"
    );
    let created = replies.iter().filter(|(_, r)| r.created).count();
    ensure!(
        created == joiners,
        "{created} joins created a place for {joiners} distinct users"
    );
    let mut notes = Vec::new();
    sys.check_joins(&replies, joiners, &mut notes)?;
    let line = sys.line(&replies, joiners)?;
    Ok((Outcome::new(measured, notes), line))
}

/// Every waiting user polls once, in random order; each must see exactly
/// the position the line says (nothing moves while admission is paused).
pub fn polls<S: System>(
    sys: &S,
    plan: &Plan,
    line: &[(String, u64)],
    threads: usize,
) -> Result<Outcome> {
    let (measured, _) = drive(
        threads,
        plan.polls.len(),
        &sys.pids(),
        |_| sys.client(),
        |c, i, h| {
            let u = plan.polls[i];
            let (ticket, expected) = &line[u];
            let got = timed(h, || c.poll(ticket))?;
            ensure!(
                got == *expected,
                "user {u} polled position {got}, expected {expected}"
            );
            Ok(())
        },
    )?;
    Ok(Outcome::new(measured, vec![]))
}

/// Holds of 1–4 adjacent seats by new users, every second one confirmed.
pub fn seats<S: System>(sys: &S, plan: &Plan, threads: usize) -> Result<Outcome> {
    sys.setup_seats().context("creating the venue")?;
    let (measured, states) = drive(
        threads,
        plan.holds.len(),
        &sys.pids(),
        |_| Ok((sys.client()?, Vec::new())),
        |(c, out), i, h| {
            let held = timed(h, || c.hold(i))?;
            let mut sold = false;
            if let Some(hold) = held.as_ref().filter(|_| plan.holds[i].confirm) {
                sold = timed(h, || c.confirm(i, hold))?;
                ensure!(sold, "a fresh hold (attempt {i}) could not be confirmed");
            }
            out.push((i, held.is_some(), sold));
            Ok(())
        },
    )?;
    // No double seat: the seats of all successful holds are disjoint, and the
    // system's counts are exactly those seats.
    let mut seen = HashSet::new();
    let (mut held, mut sold, mut holds_ok) = (0u64, 0u64, 0u64);
    for (i, ok, is_sold) in states.into_iter().flat_map(|(_, r)| r) {
        if !ok {
            continue;
        }
        holds_ok += 1;
        for s in &plan.holds[i].seats {
            ensure!(seen.insert(s.as_str()), "seat {s} was held twice");
        }
        let n = plan.holds[i].seats.len() as u64;
        if is_sold {
            sold += n;
        } else {
            held += n;
        }
    }
    let counts = sys.seat_counts()?;
    ensure!(
        counts == (held, sold),
        "system counts (held, sold) = {counts:?}, clients saw {:?}",
        (held, sold)
    );
    ensure!(holds_ok > 0, "no hold succeeded");
    let notes = vec![format!(
        "{holds_ok} of {} holds succeeded; {sold} seats sold, {held} held",
        plan.holds.len()
    )];
    Ok(Outcome::new(measured, notes))
}

/// Claims against a limited stock, 10% of them duplicates.
pub fn coupons<S: System>(sys: &S, plan: &Plan, coupon: Coupon, threads: usize) -> Result<Outcome> {
    let (requests, stock) = match coupon {
        Coupon::Main => (&plan.claims, plan.sizes.coupon_stock),
        Coupon::Spin => (&plan.spin_claims, plan.sizes.spin_stock),
    };
    sys.setup_coupon(coupon, stock)
        .context("creating the coupon")?;
    let (measured, states) = drive(
        threads,
        requests.len(),
        &sys.pids(),
        |_| Ok((sys.client()?, Vec::new())),
        |(c, out), i, h| {
            let u = requests[i];
            let r = timed(h, || c.claim(coupon, u))?;
            out.push((u, r));
            Ok(())
        },
    )?;
    let lock_attempts: u64 = states.iter().map(|(c, _)| c.lock_attempts()).sum();
    let results: Vec<(usize, ClaimResult)> = states.into_iter().flat_map(|(_, r)| r).collect();
    let mut claimed = HashSet::new();
    for (u, r) in &results {
        if *r == ClaimResult::Claimed && !claimed.insert(*u) {
            bail!("user {u} claimed twice");
        }
    }
    ensure!(
        claimed.len() as u64 == u64::from(stock),
        "{} claims succeeded for a stock of {stock}",
        claimed.len()
    );
    for (u, r) in &results {
        ensure!(
            *r != ClaimResult::AlreadyClaimed || claimed.contains(u),
            "user {u} was told already_claimed without a claim"
        );
    }
    let (issued, remaining) = sys.coupon_counts(coupon)?;
    ensure!(
        (issued, remaining) == (u64::from(stock), 0),
        "system says issued {issued}, remaining {remaining} for a stock of {stock}"
    );
    let mut out = Outcome::new(measured, vec![]);
    if lock_attempts > 0 {
        let per = lock_attempts as f64 / results.len().max(1) as f64;
        out.notes.push(format!(
            "{per:.1} lock attempts per claim (retried at once, no sleep)"
        ));
        out.lock_attempts_per_op = Some(per);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::workloads::Sizes;

    /// A system that breaks every promise: it holds any seat for anyone,
    /// issues coupons without limit and gives everyone place 1. The checks
    /// must catch each of these.
    struct Broken;
    struct BrokenClient;

    impl Client for BrokenClient {
        type Hold = ();
        fn join(&mut self, _: usize) -> Result<JoinReply> {
            Ok(reply(1, true))
        }
        fn poll(&mut self, _: &str) -> Result<u64> {
            Ok(1)
        }
        fn hold(&mut self, _: usize) -> Result<Option<()>> {
            Ok(Some(()))
        }
        fn confirm(&mut self, _: usize, _: &()) -> Result<bool> {
            Ok(true)
        }
        fn claim(&mut self, _: Coupon, _: usize) -> Result<ClaimResult> {
            Ok(ClaimResult::Claimed)
        }
    }

    impl System for Broken {
        type Client = BrokenClient;
        fn client(&self) -> Result<BrokenClient> {
            Ok(BrokenClient)
        }
        fn setup_queue(&self) -> Result<()> {
            Ok(())
        }
        fn waiting(&self) -> Result<u64> {
            Ok(Sizes::quick().joiners as u64)
        }
        fn setup_seats(&self) -> Result<()> {
            Ok(())
        }
        fn seat_counts(&self) -> Result<(u64, u64)> {
            Ok((0, 0))
        }
        fn setup_coupon(&self, _: Coupon, _: u32) -> Result<()> {
            Ok(())
        }
        fn coupon_counts(&self, _: Coupon) -> Result<(u64, u64)> {
            Ok((0, 0))
        }
    }

    #[test]
    fn checks_catch_a_broken_system() {
        let plan = Plan::new(Sizes::quick(), 3);
        let e = joins(&Broken, &plan, 4).err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("created a place")), "joins");
        let e = seats(&Broken, &plan, 4).err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("held twice")), "seats");
        let e = coupons(&Broken, &plan, Coupon::Main, 4)
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("claimed twice")), "coupons");
    }

    fn reply(position: u64, created: bool) -> JoinReply {
        JoinReply {
            ticket: String::new(),
            position,
            created,
            seq: None,
        }
    }

    #[test]
    fn strict_check_catches_a_moved_repeat() {
        let ok = vec![
            (0, reply(1, true)),
            (1, reply(2, true)),
            (0, reply(1, false)),
        ];
        assert!(strict_join_check(&ok, 2).is_ok());
        let moved = vec![
            (0, reply(1, true)),
            (1, reply(2, true)),
            (0, reply(3, false)),
        ];
        assert!(strict_join_check(&moved, 2).is_err());
        let twice = vec![(0, reply(1, true)), (1, reply(1, true))];
        assert!(strict_join_check(&twice, 2).is_err());
    }
}
