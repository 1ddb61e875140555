//! Tickets and presence: a rejoin keeps the place, an idle user loses it, a
//! user who follows the advice never does.
//!
//! `rejoin_keeps_place` proves that every refresh VU that joined again got
//! its own ticket back (the same ticket is the same place).
//!
//! `idle_users_dropped` proves both halves of the presence rule. An idle VU
//! that came back must find its place `expired`, unless it had been
//! admitted; and the server must not have admitted it while it was idle: its
//! pass's `iat` must be within the presence grace of the last waiting read
//! the VU made — `max(idle_timeout, poll_after + ⅔ idle_timeout)` for the
//! advice that read gave (`boxoffice_engine::queue::advice::grace`, the
//! rule docs/api.md states) — and the server heard that read no later than
//! the VU got its answer, so this bound is never a false alarm. A VU with no
//! waiting read is not judged on this. And no VU that followed the advice
//! (`poll`, `stream`, `second_tab`: reading at least as often as told) saw
//! its place `expired` while in line.

use super::{few, finish, Truth};
use crate::model::{Behaviour, RunData};
use boxoffice_engine::queue::advice::grace;

pub(super) fn rejoin_keeps_place(run: &RunData) -> Truth {
    let refreshers = run.vus.iter().filter(|v| v.behaviour == Behaviour::Refresh);
    let (mut same, mut other, mut none) = (0u64, Vec::new(), 0u64);
    for v in refreshers {
        match v.rejoin_same_ticket {
            Some(true) => same += 1,
            Some(false) => other.push(v.id),
            None => none += 1,
        }
    }
    let detail = format!(
        "{same} rejoins got their ticket back, {} a different one ({none} refresh VUs did not rejoin)",
        other.len()
    );
    let problems = if other.is_empty() {
        Vec::new()
    } else {
        vec![format!("rejoins lost their place: VUs {}", few(&other))]
    };
    finish("rejoin_keeps_place", detail, problems)
}

fn follows_advice(b: Behaviour) -> bool {
    matches!(
        b,
        Behaviour::Poll | Behaviour::Stream | Behaviour::SecondTab
    )
}

pub(super) fn idle_users_dropped(run: &RunData) -> Truth {
    let timeout_ms = u64::from(run.setup.idle_timeout_s) * 1000;
    let (mut idle, mut dropped, mut admitted, mut unseen) = (0u64, 0u64, 0u64, 0u64);
    let mut kept_place = Vec::new();
    let mut admitted_idle = Vec::new();
    let mut dropped_diligent = Vec::new();
    for v in &run.vus {
        let in_line_expired = v.admitted.is_none() && v.final_state.as_deref() == Some("expired");
        if v.behaviour == Behaviour::Idle {
            idle += 1;
            if let Some(a) = v.admitted {
                admitted += 1;
                let late = v.last_wait.is_some_and(|o| {
                    a.iat_ms > o.at_ms.saturating_add(grace(o.poll_after_ms, timeout_ms))
                });
                if timeout_ms > 0 && late {
                    admitted_idle.push(v.id);
                }
            } else if !v.idle_checked && v.final_state.as_deref() != Some("expired") {
                // The run ended before its presence deadline came.
                unseen += 1;
            } else {
                match v.final_state.as_deref() {
                    Some("expired") => dropped += 1,
                    // Gave its place up itself, or never got one.
                    Some("left") | None => unseen += 1,
                    Some(_) => kept_place.push(v.id),
                }
            }
        } else if follows_advice(v.behaviour) && in_line_expired {
            dropped_diligent.push(v.id);
        }
    }
    let mut problems = Vec::new();
    if !kept_place.is_empty() {
        problems.push(format!(
            "{} idle VUs still had their place: VUs {}",
            kept_place.len(),
            few(&kept_place)
        ));
    }
    if !admitted_idle.is_empty() {
        problems.push(format!(
            "{} VUs admitted after their presence deadline (idle): VUs {}",
            admitted_idle.len(),
            few(&admitted_idle)
        ));
    }
    if !dropped_diligent.is_empty() {
        problems.push(format!(
            "{} VUs following the advice lost their place: VUs {}",
            dropped_diligent.len(),
            few(&dropped_diligent)
        ));
    }
    let detail = format!(
        "{idle} idle VUs: {dropped} found their place expired, {admitted} admitted before going idle, \
         {unseen} not judged (left, or the run ended before their deadline); {} VUs following the advice dropped",
        dropped_diligent.len()
    );
    finish("idle_users_dropped", detail, problems)
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;

    #[test]
    fn refresh_passes_and_a_new_ticket_fails() {
        let mut run = fixture::run(4);
        run.vus[0].behaviour = Behaviour::Refresh;
        run.vus[0].rejoin_same_ticket = Some(true);
        run.vus[1].behaviour = Behaviour::Refresh;
        let t = rejoin_keeps_place(&run);
        assert!(t.passed, "{}", t.detail);
        run.vus[1].rejoin_same_ticket = Some(false);
        let t = rejoin_keeps_place(&run);
        assert!(!t.passed);
        assert!(t.detail.contains("VUs 1"), "{}", t.detail);
    }

    fn idle(run: &mut crate::model::RunData, i: usize, state: &str) {
        let v = &mut run.vus[i];
        v.behaviour = Behaviour::Idle;
        v.admitted = None;
        v.ended = None;
        v.hold = None;
        v.claim = None;
        v.final_state = Some(state.into());
        v.idle_checked = true;
    }

    #[test]
    fn idle_users_dropped_passes() {
        let mut run = fixture::run(4);
        idle(&mut run, 1, "expired");
        idle(&mut run, 2, "left");
        // Admitted before its idle time ran out: the pass came 8 s after its
        // last read, the timeout is 30 s.
        run.vus[3].behaviour = Behaviour::Idle;
        let t = idle_users_dropped(&run);
        assert!(t.passed, "{}", t.detail);
        assert!(t.detail.starts_with("3 idle VUs: 1 found"), "{}", t.detail);
    }

    #[test]
    fn an_idle_user_keeping_the_place_fails() {
        let mut run = fixture::run(4);
        idle(&mut run, 1, "waiting");
        assert!(!idle_users_dropped(&run).passed);
        // Unless its read never came (the run ended before its deadline).
        run.vus[1].idle_checked = false;
        let t = idle_users_dropped(&run);
        assert!(t.passed, "{}", t.detail);
    }

    #[test]
    fn an_idle_user_admitted_fails() {
        let mut run = fixture::run(4);
        run.vus[2].behaviour = Behaviour::Idle;
        run.setup.idle_timeout_s = 5;
        let t = idle_users_dropped(&run);
        assert!(!t.passed);
        assert!(
            t.detail.contains("after their presence deadline"),
            "{}",
            t.detail
        );
        // The same admission is in time when the last read advised a long
        // wait (the poll budget): the deadline follows the advice.
        if let Some(o) = run.vus[2].last_wait.as_mut() {
            o.poll_after_ms = 60_000;
        }
        let t = idle_users_dropped(&run);
        assert!(t.passed, "{}", t.detail);
    }

    #[test]
    fn a_polling_user_dropped_fails() {
        let mut run = fixture::run(4);
        run.vus[0].admitted = None;
        run.vus[0].final_state = Some("expired".into());
        let t = idle_users_dropped(&run);
        assert!(!t.passed);
        assert!(t.detail.contains("following the advice"), "{}", t.detail);
        // An admitted session that ran out is not a place lost in line.
        let mut run = fixture::run(4);
        run.vus[0].final_state = Some("expired".into());
        assert!(idle_users_dropped(&run).passed);
    }
}
