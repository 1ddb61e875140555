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

/// A join's idempotency key is the caller's: the backend's keys name one
/// user each (another user with the key is refused, writing nothing); an
/// anonymous join's key, scoped to the client address, gives the same
/// minted user and ticket back; the same key from another address is
/// another caller's. A new waiting room forgets the keys of the old one
/// (their users' numbers would name others).
#[test]
fn join_keys_are_scoped_to_their_caller() {
    let (e, id) = setup(Identity::Anonymous);
    let k = IdempotencyKey::new("k-1").expect("key");
    let at = |address| Some(JoinKey { key: &k, address });
    let trusted = |n: u32| {
        let u = user(n);
        e.join_keyed(&id, JoinAs::Trusted(&u), at("10.0.0.1"), T0)
    };
    let first = trusted(1).expect("join").into_value();
    assert!(first.created && !first.replayed);
    let again = trusted(1).expect("replay").into_value();
    assert!(again.created && again.replayed);
    assert_eq!(again.view.status.ticket, first.view.status.ticket);
    let seq = e.journal_seq(e.shard_of_event(&id));
    assert_eq!(trusted(2).err(), Some(Rejection::IdempotencyKeyReused));
    assert_eq!(e.journal_seq(e.shard_of_event(&id)), seq, "nothing written");

    let minted = [user(50), user(51), user(52)];
    let anon = |m, address| {
        let who = JoinAs::Public {
            user: None,
            user_token: None,
            minted: m,
        };
        e.join_keyed(&id, who, at(address), T0)
            .expect("anonymous join")
            .into_value()
    };
    let a = anon(&minted[0], "192.0.2.7");
    // The retry draws a new id; the key gives the first one back.
    let b = anon(&minted[1], "192.0.2.7");
    assert!(b.replayed);
    assert_eq!(b.view.status.user, minted[0]);
    assert_eq!(b.view.status.ticket, a.view.status.ticket);
    // The service realm's use of the same key is not the visitor's.
    assert_ne!(a.view.status.ticket, first.view.status.ticket);
    let c = anon(&minted[2], "198.51.100.9");
    assert!(!c.replayed);
    assert_eq!(c.view.status.user, minted[2]);

    // The room goes and comes back: the old keys are forgotten.
    let no_room = event_config(None, rows(&["A"], 1, 4), 4);
    let _ = e.put_event(&id, no_room, [3; 32], T0).expect("no room");
    let mut q = queue(1, 1, 600, 120);
    q.identity = Identity::Anonymous;
    let room = event_config(Some(q), rows(&["A"], 1, 4), 4);
    let _ = e.put_event(&id, room, [3; 32], T0).expect("room again");
    let fresh = trusted(2).expect("the key is free").into_value();
    assert!(fresh.created && !fresh.replayed);
    assert_eq!(fresh.view.status.user, user(2));
}
