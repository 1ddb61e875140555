//! Coupons: stock (admin), counts (public), claims and give-backs (service).

use super::{json_response, no_content, Cx, Reply};
use crate::commit::Write;
use crate::metrics::ClaimOutcome;
use crate::wire::coupons::{ClaimDoc, ClaimRequest, CouponDoc, CouponRequest};
use boxoffice_engine::{ClaimId, CouponConfig, PutOutcome, Rejection};
use http::StatusCode;

pub async fn put(mut cx: Cx) -> Reply {
    let id = cx.coupon_id()?;
    let cfg = CouponConfig::from(cx.json::<CouponRequest>().await?);
    let st = &cx.state;
    let put = st.engine.put_coupon(&id, cfg, st.now())?;
    let (outcome, counts) = st.commit(put, Write::Coupon(&id)).await?;
    let status = match outcome {
        PutOutcome::Created => StatusCode::CREATED,
        PutOutcome::Replaced => StatusCode::OK,
    };
    Ok(json_response(status, &CouponDoc::new(&id, &cfg, &counts)))
}

pub async fn get(cx: Cx) -> Reply {
    let id = cx.coupon_id()?;
    let (cfg, counts) = cx.state.engine.coupon(&id)?;
    Ok(json_response(
        StatusCode::OK,
        &CouponDoc::new(&id, &cfg, &counts),
    ))
}

fn outcome(r: &Rejection) -> ClaimOutcome {
    match r {
        Rejection::AlreadyClaimed => ClaimOutcome::AlreadyClaimed,
        Rejection::SoldOut => ClaimOutcome::SoldOut,
        Rejection::NotOpen => ClaimOutcome::NotOpen,
        Rejection::IdempotencyKeyReused => ClaimOutcome::KeyReused,
        _ => ClaimOutcome::Other,
    }
}

pub async fn claim(mut cx: Cx) -> Reply {
    let id = cx.coupon_id()?;
    let key = cx.idempotency_key()?;
    let user = cx.json::<ClaimRequest>().await?.user.0;
    let st = &cx.state;
    let reply = match st.engine.claim(&id, &user, key.as_ref(), st.now()) {
        Ok(r) => r,
        Err(Rejection::CouponNotFound) => return Err(Rejection::CouponNotFound.into()),
        Err(r) => {
            st.metrics.claim(&id, outcome(&r));
            return Err(r.into());
        }
    };
    let reply = st.commit(reply, Write::Claim(&id)).await?;
    Ok(json_response(StatusCode::CREATED, &ClaimDoc::new(&reply)))
}

pub async fn give_back(cx: Cx) -> Reply {
    let id = cx.coupon_id()?;
    let st = &cx.state;
    // Claim ids are opaque to clients: one the server could never have
    // issued names no claim (404), after an unknown coupon (404 too).
    let claim: ClaimId = match cx.param(1).parse() {
        Ok(c) => c,
        Err(_) => {
            st.engine.coupon(&id)?;
            return Err(Rejection::ClaimNotFound.into());
        }
    };
    let returned = st.engine.return_claim(&id, claim, st.now())?;
    st.commit(returned, Write::ClaimReturned(&id)).await?;
    Ok(no_content())
}
