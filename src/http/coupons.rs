//! Coupons: stock (admin), counts (public), claims and give-backs (service).

use super::errors::ApiError;
use super::json;
use super::{json_response, no_content, Cx, Reply};
use crate::commit::Write;
use boxoffice_engine::config::limits;
use boxoffice_engine::coupons::CouponCounts;
use boxoffice_engine::{ClaimId, CouponConfig, CouponId, PutOutcome, Rejection};
use http::StatusCode;
use serde_json::{json, Value};
use std::num::NonZeroU32;

fn coupon_doc(id: &CouponId, cfg: &CouponConfig, n: &CouponCounts) -> Value {
    json!({
        "coupon": id.as_str(),
        "stock": n.stock,
        "issued": n.issued,
        "remaining": n.remaining,
        "per_user": cfg.per_user.get(),
        "opens_at": cfg.opens_at.map(|t| t.to_rfc3339()),
        "closes_at": cfg.closes_at.map(|t| t.to_rfc3339()),
    })
}

pub async fn put(mut cx: Cx) -> Reply {
    let id = cx.coupon_id()?;
    let body = cx.json().await?;
    let o = json::object(&body)?;
    let cfg = CouponConfig {
        stock: o.u32("stock", 0, limits::MAX_COUPON_STOCK)?,
        per_user: NonZeroU32::new(
            o.opt_u32("per_user", 1, limits::MAX_COUPON_PER_USER)?
                .unwrap_or(1),
        )
        .unwrap_or(NonZeroU32::MIN),
        opens_at: o.opt_timestamp("opens_at")?,
        closes_at: o.opt_timestamp("closes_at")?,
    };
    let st = &cx.state;
    let put = st.engine.put_coupon(&id, cfg, st.now())?;
    let (outcome, counts) = st.commit(put, Write::Coupon(&id)).await?;
    let status = match outcome {
        PutOutcome::Created => StatusCode::CREATED,
        PutOutcome::Replaced => StatusCode::OK,
    };
    Ok(json_response(status, &coupon_doc(&id, &cfg, &counts)))
}

pub async fn get(cx: Cx) -> Reply {
    let id = cx.coupon_id()?;
    let (cfg, counts) = cx.state.engine.coupon(&id)?;
    Ok(json_response(
        StatusCode::OK,
        &coupon_doc(&id, &cfg, &counts),
    ))
}

fn outcome_label(r: &Rejection) -> &'static str {
    match r {
        Rejection::AlreadyClaimed => "already_claimed",
        Rejection::SoldOut => "sold_out",
        Rejection::NotOpen => "not_open",
        Rejection::IdempotencyKeyReused => "key_reused",
        _ => "other",
    }
}

pub async fn claim(mut cx: Cx) -> Reply {
    let id = cx.coupon_id()?;
    let key = cx.idempotency_key()?;
    let body = cx.json().await?;
    let user = json::object(&body)?.user("user")?;
    let st = &cx.state;
    let reply = match st.engine.claim(&id, &user, key.as_ref(), st.now()) {
        Ok(r) => r,
        Err(Rejection::CouponNotFound) => return Err(Rejection::CouponNotFound.into()),
        Err(r) => {
            st.metrics.claim(&id, outcome_label(&r));
            return Err(r.into());
        }
    };
    let reply = st.commit(reply, Write::Claim(&id)).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({
            "claim": reply.claim.to_string(),
            "coupon": reply.coupon.as_str(),
            "user": reply.user.as_str(),
            "remaining": reply.remaining,
        }),
    ))
}

pub async fn give_back(cx: Cx) -> Reply {
    let id = cx.coupon_id()?;
    let claim: ClaimId = cx
        .param(1)
        .parse()
        .map_err(|_| ApiError::bad_request("claim: claim ids look like k12"))?;
    let st = &cx.state;
    let returned = st.engine.return_claim(&id, claim, st.now())?;
    st.commit(returned, Write::ClaimReturned(&id)).await?;
    Ok(no_content())
}
