//! bare hyper (`bin/bare_hyper.rs`): the ceiling for any HTTP front on this
//! machine. The same client threads send it exactly the requests boxoffice
//! over HTTP gets (the same paths, tokens and bodies, built by the same
//! code); it answers every one with the same small JSON body and does
//! nothing else. Its checks: every answer is a 200 with that body, complete.
//! Hold attempts that the plan confirms always confirm here (nothing is ever
//! taken), so this side sends a few more confirms than the others.

use super::http_side::{unexpected, HttpClient, HttpServer};
use super::report::{Status, Work};
use super::suite::{Coupon, Outcome};
use super::workloads::{drive, timed, Plan};
use anyhow::{ensure, Result};
use serde::Deserialize;
use std::sync::Arc;

/// What bare hyper answers.
#[derive(Deserialize)]
struct Fixed {
    state: String,
    position: u64,
}

fn check(what: &str, (status, body): (u16, Vec<u8>)) -> Result<()> {
    ensure!(status == 200, "{}", unexpected(what, status, &body));
    let ok = serde_json::from_slice::<Fixed>(&body)
        .is_ok_and(|f| f.state == "waiting" && f.position == 1);
    ensure!(ok, "{}", unexpected(what, status, &body));
    Ok(())
}

fn run(
    server: &HttpServer,
    plan: &Arc<Plan>,
    threads: usize,
    total: usize,
    op: impl Fn(&mut HttpClient, usize, &mut hdrhistogram::Histogram<u64>) -> Result<()> + Sync,
) -> Result<Outcome> {
    let (measured, _) = drive(
        threads,
        total,
        &[server.pid()],
        |_| HttpClient::connect(server.addr, plan.clone()),
        op,
    )?;
    Ok(Outcome::new(
        measured,
        vec!["every answer was the fixed 200 JSON body".into()],
    ))
}

/// One workload's requests against bare hyper; `None` for admission (no
/// request does it).
pub fn workload(
    server: &HttpServer,
    plan: &Arc<Plan>,
    work: Work,
    threads: usize,
) -> Option<Result<Outcome>> {
    Some(match work {
        Work::Admit => return None,
        Work::Joins => run(server, plan, threads, plan.joins.len(), |c, i, h| {
            check("join", timed(h, || c.send_join(plan.joins[i]))?)
        }),
        Work::Polls => run(server, plan, threads, plan.polls.len(), |c, i, h| {
            let ticket = &plan.users[plan.polls[i]];
            check("status", timed(h, || c.send_poll(ticket))?)
        }),
        Work::Seats => run(server, plan, threads, plan.holds.len(), |c, i, h| {
            check("hold", timed(h, || c.send_hold(i))?)?;
            if plan.holds[i].confirm {
                let hold = format!("h{i}");
                check("confirm", timed(h, || c.send_confirm(&hold))?)?;
            }
            Ok(())
        }),
        Work::Coupons => run(server, plan, threads, plan.claims.len(), |c, i, h| {
            check(
                "claim",
                timed(h, || c.send_claim(Coupon::Main, plan.claims[i]))?,
            )
        }),
        Work::SpinCoupons => run(server, plan, threads, plan.spin_claims.len(), |c, i, h| {
            check(
                "claim",
                timed(h, || c.send_claim(Coupon::Spin, plan.spin_claims[i]))?,
            )
        }),
    })
}

/// [`workload`] as a row status.
pub fn status(server: &HttpServer, plan: &Arc<Plan>, work: Work, threads: usize) -> Status {
    match workload(server, plan, work, threads) {
        None => Status::Skipped("no request admits; bare hyper answers every one the same".into()),
        Some(Ok(o)) => Status::Done(o),
        Some(Err(e)) => Status::Failed(format!("{e:#}")),
    }
}
