//! I1 (no seat sold twice) and I6 (nothing acknowledged is lost), judged on
//! seats, coupons and admissions.
//!
//! `seats_sold_once` proves that no seat was confirmed to two VUs, that the
//! server's final map shows every seat a VU bought as `S`, and that the
//! server sold no seat the VUs did not buy: the readback's sold count equals
//! the seats in confirmed holds, up to the confirms whose answer was lost in
//! transport (their outcome is unknown to the client). With `boxoffice:out`
//! the `seat.sold` record is checked as well: no seat in two sales, and its
//! seats are exactly the readback's `S` set.
//!
//! `nothing_lost` proves durability of what was acknowledged: every hold a
//! VU saw confirmed is sold in the readback, every coupon claim a VU kept is
//! within the readback's issued count, and with `boxoffice:out` every
//! confirmed hold, kept claim and admission a VU saw is in the record.

use super::{few, finish, out_of, total, transport_failures, Truth};
use crate::model::{HoldOutcome, Op, RunData};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// Seats of the holds VUs saw confirmed, with the VU that bought each.
fn bought(run: &RunData) -> impl Iterator<Item = (u32, &[String])> {
    run.vus.iter().filter_map(|v| match &v.hold {
        Some(h) if h.outcome == HoldOutcome::Sold => Some((v.id, h.seats.as_slice())),
        _ => None,
    })
}

fn is_sold(run: &RunData, seat: &str) -> bool {
    run.readback.seats.get(seat) == Some(&'S')
}

pub(super) fn sold_once(run: &RunData) -> Truth {
    let mut owner: BTreeMap<&str, u32> = BTreeMap::new();
    let mut twice = Vec::new();
    let mut not_s = Vec::new();
    for (vu, seats) in bought(run) {
        for seat in seats {
            if let Some(first) = owner.insert(seat, vu) {
                if first != vu {
                    twice.push(format!("{seat} (VUs {first} and {vu})"));
                }
            }
            if !is_sold(run, seat) {
                not_s.push(seat.clone());
            }
        }
    }
    let client_sold = owner.len() as u64;
    let map_sold = run.readback.seats.values().filter(|&&c| c == 'S').count() as u64;
    let unknown = transport_failures(run, &[Op::Confirm]);
    let mut problems = Vec::new();
    if !twice.is_empty() {
        problems.push(format!(
            "{} seats confirmed to two VUs: {}",
            twice.len(),
            few(&twice)
        ));
    }
    if !not_s.is_empty() {
        problems.push(format!(
            "{} bought seats not S in the readback: {}",
            not_s.len(),
            few(&not_s)
        ));
    }
    // The server may have sold seats whose confirm answer the client lost,
    // never more than that and never fewer than the client saw.
    let sold = run.readback.sold;
    if sold < client_sold || sold - client_sold > unknown {
        problems.push(format!(
            "the readback sold {sold} seats, the VUs bought {client_sold} \
             ({unknown} confirms lost in transport)"
        ));
    }
    if !run.readback.seats.is_empty() && map_sold != sold {
        problems.push(format!(
            "the seat map shows {map_sold} S, the event document {sold} sold"
        ));
    }
    let mut detail = format!(
        "{client_sold} seats bought by {} VUs, readback sold {sold}",
        bought(run).count()
    );
    if run.out.is_some() {
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut again = Vec::new();
        for e in out_of(run, "seat.sold") {
            for seat in &e.seats {
                if !seen.insert(seat) {
                    again.push(seat.clone());
                }
            }
        }
        let map_s: BTreeSet<&str> = run
            .readback
            .seats
            .iter()
            .filter(|(_, &c)| c == 'S')
            .map(|(s, _)| s.as_str())
            .collect();
        if !again.is_empty() {
            problems.push(format!(
                "{} seats in two seat.sold entries: {}",
                again.len(),
                few(&again)
            ));
        }
        if seen != map_s {
            let only_out: Vec<&str> = seen.difference(&map_s).copied().collect();
            let only_map: Vec<&str> = map_s.difference(&seen).copied().collect();
            problems.push(format!(
                "seat.sold and the readback's S differ: {} only in out ({}), {} only S ({})",
                only_out.len(),
                few(&only_out),
                only_map.len(),
                few(&only_map)
            ));
        }
        detail.push_str(&format!(", boxoffice:out sold {} seats", seen.len()));
    }
    finish("seats_sold_once", detail, problems)
}

pub(super) fn nothing_lost(run: &RunData) -> Truth {
    let mut problems = Vec::new();
    let mut lost_holds = Vec::new();
    let mut holds = 0u64;
    for v in &run.vus {
        if let Some(h) = &v.hold {
            if h.outcome == HoldOutcome::Sold {
                holds += 1;
                if h.seats.is_empty() || !h.seats.iter().all(|s| is_sold(run, s)) {
                    lost_holds.push(h.hold.clone());
                }
            }
        }
    }
    if !lost_holds.is_empty() {
        problems.push(format!(
            "{} confirmed holds not sold in the readback: {}",
            lost_holds.len(),
            few(&lost_holds)
        ));
    }
    let kept = total(
        run.vus
            .iter()
            .filter_map(|v| v.claim.as_ref())
            .map(|c| u64::from(!c.returned) + u64::from(c.extra_accepted)),
    );
    let unknown = transport_failures(run, &[Op::ReturnCoupon]);
    if kept > run.readback.coupon_issued.saturating_add(unknown) {
        problems.push(format!(
            "VUs keep {kept} coupons, the readback counts {} issued",
            run.readback.coupon_issued
        ));
    }
    let mut detail =
        format!("{holds} confirmed holds and {kept} kept coupons checked against the readback");
    if run.out.is_some() {
        // A hold is identified by its seats: a seat is sold once, so one
        // `seat.sold` entry carries exactly the seats of one hold.
        let sales: HashSet<Vec<&str>> = out_of(run, "seat.sold")
            .map(|e| sorted(e.seats.iter().map(String::as_str)))
            .collect();
        let missing: Vec<String> = run
            .vus
            .iter()
            .filter_map(|v| v.hold.as_ref())
            .filter(|h| h.outcome == HoldOutcome::Sold)
            .filter(|h| !sales.contains(&sorted(h.seats.iter().map(String::as_str))))
            .map(|h| h.hold.clone())
            .collect();
        if !missing.is_empty() {
            problems.push(format!(
                "{} confirmed holds without a seat.sold entry: {}",
                missing.len(),
                few(&missing)
            ));
        }
        let claimed: HashSet<&str> = out_of(run, "coupon.claimed")
            .filter_map(|e| e.claim.as_deref())
            .collect();
        let returned: HashSet<&str> = out_of(run, "coupon.returned")
            .filter_map(|e| e.claim.as_deref())
            .collect();
        let unrecorded: Vec<&str> = run
            .vus
            .iter()
            .filter_map(|v| v.claim.as_ref())
            .filter(|c| !c.returned)
            .map(|c| c.claim.as_str())
            .filter(|c| !claimed.contains(c) || returned.contains(c))
            .collect();
        if !unrecorded.is_empty() {
            problems.push(format!(
                "{} kept claims not claimed (or returned) in boxoffice:out: {}",
                unrecorded.len(),
                few(&unrecorded)
            ));
        }
        let admitted: HashSet<u32> = out_of(run, "queue.admitted")
            .filter_map(|e| e.join)
            .collect();
        let unadmitted: Vec<u32> = run
            .vus
            .iter()
            .filter(|v| v.admitted.is_some())
            .filter_map(|v| v.join_no)
            .filter(|j| !admitted.contains(j))
            .collect();
        if !unadmitted.is_empty() {
            problems.push(format!(
                "{} admissions seen by VUs missing from queue.admitted (joins {})",
                unadmitted.len(),
                few(&unadmitted)
            ));
        }
        detail.push_str(", and against boxoffice:out (sales, claims, admissions)");
    }
    finish("nothing_lost", detail, problems)
}

fn sorted<'a>(it: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = it.collect();
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use crate::model::{ErrorCount, OutEntry};

    #[test]
    fn a_clean_run_passes() {
        for run in [fixture::run(6), fixture::with_out(fixture::run(6))] {
            let t = sold_once(&run);
            assert!(t.passed, "{}", t.detail);
            let t = nothing_lost(&run);
            assert!(t.passed, "{}", t.detail);
        }
    }

    #[test]
    fn a_seat_sold_to_two_vus_fails() {
        let mut run = fixture::run(6);
        let seat = run.vus[0].hold.as_ref().expect("hold").seats[0].clone();
        run.vus[1].hold.as_mut().expect("hold").seats.push(seat);
        let t = sold_once(&run);
        assert!(!t.passed);
        assert!(t.detail.contains("confirmed to two VUs"), "{}", t.detail);
    }

    #[test]
    fn a_seat_sold_twice_in_out_fails() {
        let mut run = fixture::with_out(fixture::run(3));
        let again = OutEntry {
            id: "1-0-99-0".into(),
            kind: "seat.sold".into(),
            at_ms: 99,
            join: None,
            user: None,
            seats: vec!["A-1-0".into()],
            claim: None,
            reason: None,
        };
        run.out.as_mut().expect("out").push(again);
        let t = sold_once(&run);
        assert!(!t.passed);
        assert!(t.detail.contains("two seat.sold"), "{}", t.detail);
    }

    #[test]
    fn a_server_sale_nobody_bought_fails_unless_a_confirm_was_lost() {
        let mut run = fixture::run(4);
        run.readback.seats.insert("A-1-4".into(), 'S');
        run.readback.sold += 1;
        run.readback.free -= 1;
        assert!(!sold_once(&run).passed);
        run.errors.push(ErrorCount {
            op: Op::Confirm,
            status: 0,
            code: "timeout".into(),
            count: 1,
        });
        let t = sold_once(&run);
        assert!(t.passed, "{}", t.detail);
    }

    #[test]
    fn a_lost_sale_fails_both() {
        let mut run = fixture::run(4);
        run.readback.seats.insert("A-1-2".into(), 'F');
        run.readback.sold -= 1;
        assert!(!sold_once(&run).passed);
        let t = nothing_lost(&run);
        assert!(!t.passed);
        assert!(
            t.detail.contains("not sold in the readback"),
            "{}",
            t.detail
        );
    }

    #[test]
    fn a_sale_missing_from_out_fails() {
        let mut run = fixture::with_out(fixture::run(4));
        run.out
            .as_mut()
            .expect("out")
            .retain(|e| !(e.kind == "seat.sold" && e.seats == ["A-1-1"]));
        let t = nothing_lost(&run);
        assert!(!t.passed);
        assert!(t.detail.contains("without a seat.sold"), "{}", t.detail);
        // … and the readback's S set no longer matches the record.
        assert!(!sold_once(&run).passed);
    }

    #[test]
    fn a_kept_claim_missing_from_out_fails() {
        let mut run = fixture::with_out(fixture::run(4));
        run.out
            .as_mut()
            .expect("out")
            .retain(|e| !(e.kind == "coupon.claimed" && e.claim.as_deref() == Some("k2")));
        let t = nothing_lost(&run);
        assert!(!t.passed);
        assert!(t.detail.contains("kept claims"), "{}", t.detail);
    }

    #[test]
    fn an_admission_missing_from_out_fails() {
        let mut run = fixture::with_out(fixture::run(4));
        run.out
            .as_mut()
            .expect("out")
            .retain(|e| !(e.kind == "queue.admitted" && e.join == Some(3)));
        assert!(!nothing_lost(&run).passed);
    }
}
