//! I2, coupon conservation: the stock is never oversold and nobody gets more
//! than `per_user`.
//!
//! Proves, from the readback, that `issued + remaining == stock` (and that the
//! stock is the one the scenario created); that the server's issued count is
//! exactly the claims the VUs kept (each VU's claim unless returned, plus the
//! further claims the server accepted from it), up to the claim and return
//! requests whose answer was lost in transport; that no VU's further claims
//! went past `per_user - 1`; that no sample showed more issued than stock.
//! With `boxoffice:out` it replays `coupon.claimed` / `coupon.returned` in
//! stream order: the coupons out never exceed the stock at any point, and
//! no user ever holds more than `per_user` at once.

use super::{few, finish, out_of, total, transport_failures, Truth};
use crate::model::{Op, RunData};
use std::collections::HashMap;

pub(super) fn conservation(run: &RunData) -> Truth {
    let rb = &run.readback;
    let stock = rb.coupon_stock;
    let per_user = run.setup.coupon_per_user;
    let mut problems = Vec::new();
    if u128::from(rb.coupon_issued) + u128::from(rb.coupon_remaining) != u128::from(stock) {
        problems.push(format!(
            "readback issued {} + remaining {} != stock {stock}",
            rb.coupon_issued, rb.coupon_remaining
        ));
    }
    if run.setup.coupon_stock != 0 && u64::from(run.setup.coupon_stock) != stock {
        problems.push(format!(
            "the coupon was created with stock {}, the readback says {stock}",
            run.setup.coupon_stock
        ));
    }
    let claims: Vec<_> = run.vus.iter().filter_map(|v| v.claim.as_ref()).collect();
    let kept = total(
        claims
            .iter()
            .map(|c| u64::from(!c.returned) + u64::from(c.extra_accepted)),
    );
    let unknown = transport_failures(run, &[Op::Claim, Op::ReturnCoupon]);
    if rb.coupon_issued.abs_diff(kept) > unknown {
        problems.push(format!(
            "readback issued {} but the VUs keep {kept} ({unknown} claims/returns lost in transport)",
            rb.coupon_issued
        ));
    }
    if kept > stock {
        problems.push(format!("the VUs keep {kept} coupons of a stock of {stock}"));
    }
    if per_user > 0 {
        let greedy: Vec<u32> = run
            .vus
            .iter()
            .filter(|v| {
                v.claim
                    .as_ref()
                    .is_some_and(|c| c.extra_accepted > per_user - 1)
            })
            .map(|v| v.id)
            .collect();
        if !greedy.is_empty() {
            problems.push(format!(
                "{} VUs got more than per_user {per_user}: VUs {}",
                greedy.len(),
                few(&greedy)
            ));
        }
    }
    let over: Vec<u64> = run
        .samples
        .iter()
        .filter(|s| s.coupon_issued > stock)
        .map(|s| s.at_ms)
        .collect();
    if !over.is_empty() {
        problems.push(format!(
            "{} samples show more issued than stock (at ms {})",
            over.len(),
            few(&over)
        ));
    }
    let mut detail = format!(
        "stock {stock}: issued {} + remaining {}; VUs keep {kept} of {} claims; per_user {per_user}",
        rb.coupon_issued,
        rb.coupon_remaining,
        claims.len()
    );
    if run.out.is_some() {
        let (peak, problem) = replay(run, stock, per_user);
        problems.extend(problem);
        detail.push_str(&format!("; boxoffice:out peak {peak} out at once"));
    }
    finish("coupon_conservation", detail, problems)
}

/// Replays the out record's claims and returns: the most coupons out at
/// once, and what went wrong.
fn replay(run: &RunData, stock: u64, per_user: u32) -> (u64, Vec<String>) {
    let mut problems = Vec::new();
    let mut out = 0u64;
    let mut peak = 0u64;
    let mut by_user: HashMap<&str, i64> = HashMap::new();
    let mut over_user: Vec<&str> = Vec::new();
    let entries = run
        .out
        .iter()
        .flatten()
        .filter(|e| e.kind == "coupon.claimed" || e.kind == "coupon.returned");
    for e in entries {
        let user = e.user.as_deref().unwrap_or("");
        let held = by_user.entry(user).or_default();
        if e.kind == "coupon.claimed" {
            out += 1;
            *held += 1;
            if per_user > 0 && *held > i64::from(per_user) && !over_user.contains(&user) {
                over_user.push(user);
            }
        } else {
            out = out.saturating_sub(1);
            *held -= 1;
        }
        peak = peak.max(out);
    }
    if peak > stock {
        problems.push(format!(
            "boxoffice:out had {peak} coupons out at once of a stock of {stock}"
        ));
    }
    if !over_user.is_empty() {
        problems.push(format!(
            "boxoffice:out shows {} users past per_user {per_user}: {}",
            over_user.len(),
            few(&over_user)
        ));
    }
    let claimed = out_of(run, "coupon.claimed").count() as u64;
    let returned = out_of(run, "coupon.returned").count() as u64;
    if claimed.saturating_sub(returned) != run.readback.coupon_issued {
        problems.push(format!(
            "boxoffice:out claimed {claimed} − returned {returned} != readback issued {}",
            run.readback.coupon_issued
        ));
    }
    (peak, problems)
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use crate::model::OutEntry;

    #[test]
    fn a_clean_run_passes() {
        for run in [fixture::run(5), fixture::with_out(fixture::run(5))] {
            let t = conservation(&run);
            assert!(t.passed, "{}", t.detail);
        }
    }

    #[test]
    fn a_coupon_over_stock_fails() {
        // The server issued one more than its stock allows.
        let mut run = fixture::run(5);
        run.readback.coupon_issued = 8;
        run.readback.coupon_remaining = 0;
        assert!(!conservation(&run).passed);
        // The VUs hold one more than the stock.
        let mut run = fixture::run(5);
        run.readback.coupon_stock = 4;
        run.readback.coupon_remaining = 0;
        run.readback.coupon_issued = 4;
        run.setup.coupon_stock = 4;
        let t = conservation(&run);
        assert!(!t.passed);
        assert!(t.detail.contains("of a stock of 4"), "{}", t.detail);
    }

    #[test]
    fn a_claim_unknown_to_the_server_fails() {
        // The server forgot a claim a VU was granted.
        let mut run = fixture::run(5);
        run.readback.coupon_issued = 4;
        run.readback.coupon_remaining = 3;
        let t = conservation(&run);
        assert!(!t.passed, "{}", t.detail);
    }

    #[test]
    fn a_vu_past_per_user_fails() {
        let mut run = fixture::run(5);
        run.vus[2].claim.as_mut().expect("claim").extra_accepted = 1;
        run.readback.coupon_issued += 1;
        run.readback.coupon_remaining -= 1;
        let t = conservation(&run);
        assert!(!t.passed);
        assert!(t.detail.contains("more than per_user"), "{}", t.detail);
    }

    #[test]
    fn a_user_past_per_user_in_out_fails() {
        let mut run = fixture::with_out(fixture::run(5));
        let out = run.out.as_mut().expect("out");
        let second = OutEntry {
            id: "1-0-500-0".into(),
            kind: "coupon.claimed".into(),
            at_ms: 1,
            join: None,
            user: Some("u1".into()),
            seats: Vec::new(),
            claim: Some("k99".into()),
            reason: None,
        };
        out.push(second.clone());
        out.push(OutEntry {
            kind: "coupon.returned".into(),
            ..second
        });
        let t = conservation(&run);
        assert!(!t.passed);
        assert!(t.detail.contains("users past per_user"), "{}", t.detail);
    }

    #[test]
    fn a_lost_claim_answer_is_tolerated_once() {
        let mut run = fixture::run(5);
        run.readback.coupon_issued += 1;
        run.readback.coupon_remaining -= 1;
        assert!(!conservation(&run).passed);
        run.errors.push(crate::model::ErrorCount {
            op: Op::Claim,
            status: 0,
            code: "timeout".into(),
            count: 1,
        });
        let t = conservation(&run);
        assert!(t.passed, "{}", t.detail);
    }
}
