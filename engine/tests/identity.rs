//! `queue.identity` through the engine: who a join is for is decided before
//! the line is looked at, so a refused join changes and reveals nothing.

mod common;

use boxoffice_engine::config::Identity;
use boxoffice_engine::*;
use common::*;

fn setup(identity: Identity) -> (Engine, EventId) {
    let e = engine(2, true);
    let id = ev("e1");
    let mut q = queue(1, 1, 600, 120);
    q.identity = identity;
    let cfg = event_config(Some(q), rows(&["A"], 1, 4), 4);
    let _ = e.put_event(&id, cfg, [3; 32], T0).expect("event");
    (e, id)
}

fn token(e: &Engine, event: &str, u: &UserId, exp_s: u64) -> String {
    UserToken::new(&ev(event), u, exp_s).mint(&e.config().pass_keys.current)
}

#[test]
fn signed_public_joins_need_the_users_token_and_refusals_write_nothing() {
    let (e, id) = setup(Identity::Signed);
    let victim = user(1);
    let _ = e.join(&id, &victim, T0).expect("trusted join");
    let seq = e.journal_seq(e.shard_of_event(&id));
    let minted = user(99);
    let exp = T0.as_millis() / 1000 + 60;
    fn public<'a>(victim: &'a UserId, tok: Option<&'a str>, minted: &'a UserId) -> JoinAs<'a> {
        JoinAs::Public {
            user: Some(victim),
            user_token: tok,
            minted,
        }
    }
    assert_eq!(
        e.join_as(&id, public(&victim, None, &minted), T0).err(),
        Some(Rejection::UserTokenRequired)
    );
    let other = token(&e, "e1", &user(2), exp);
    assert_eq!(
        e.join_as(&id, public(&victim, Some(&other), &minted), T0)
            .err(),
        Some(Rejection::UserTokenInvalid(UserTokenError::OtherUser))
    );
    let expired = token(&e, "e1", &victim, T0.as_millis() / 1000);
    assert_eq!(
        e.join_as(&id, public(&victim, Some(&expired), &minted), T0)
            .err(),
        Some(Rejection::UserTokenInvalid(UserTokenError::Expired))
    );
    // Refusals journal nothing (the line was never touched).
    assert_eq!(e.journal_seq(e.shard_of_event(&id)), seq);
    let good = token(&e, "e1", &victim, exp);
    let j = e
        .join_as(&id, public(&victim, Some(&good), &minted), T0)
        .expect("own token")
        .into_value();
    assert!(!j.created, "a rejoin keeps the ticket");
    assert_eq!(j.view.status.user, victim);
}

#[test]
fn anonymous_public_joins_take_the_minted_id_and_refuse_a_chosen_one() {
    let (e, id) = setup(Identity::Anonymous);
    let minted = user(42);
    let anon = JoinAs::Public {
        user: None,
        user_token: None,
        minted: &minted,
    };
    let j = e.join_as(&id, anon, T0).expect("anonymous").into_value();
    assert!(j.created);
    assert_eq!(j.view.status.user, minted);
    let chosen = JoinAs::Public {
        user: Some(&minted),
        user_token: None,
        minted: &minted,
    };
    assert!(matches!(
        e.join_as(&id, chosen, T0),
        Err(Rejection::InvalidRequest(_))
    ));
    // The backend may still name its user.
    assert!(e.join_as(&id, JoinAs::Trusted(&user(7)), T0).is_ok());
}
