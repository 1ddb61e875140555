//! `queue.identity`: who may stand in line as whom. Knowing someone's user id
//! is never enough to get, read or end their place (API.md, "Waiting room").

use crate::common::*;
use boxoffice_engine::{EventId, PassKey, UserId, UserToken};
use http::Method;
use serde_json::{json, Value};

const JOIN: &str = "/v1/events/q/queue";

/// The kid the server names its `--secret` by (docs/passes.md).
fn kid() -> String {
    boxoffice::config::kid(SECRET)
}

fn token_with(event: &str, user: &str, exp: u64, kid: &str, secret: &[u8]) -> String {
    let key = PassKey::new(kid, secret).unwrap();
    UserToken::new(
        &EventId::new(event).unwrap(),
        &UserId::new(user).unwrap(),
        exp,
    )
    .mint(&key)
}

fn later_s() -> u64 {
    start_time().as_millis() / 1000 + 3600
}

fn anonymous_queue() -> Value {
    let mut q = queue_cfg(1, 1);
    q["identity"] = json!("anonymous");
    q
}

/// Asserts that a refused join's body says nothing of anyone's place: an
/// error document with no ticket, position, state or pass anywhere in it.
#[track_caller]
fn leaks_nothing(r: &Resp, victim: &Value) {
    let body = String::from_utf8_lossy(&r.body).to_string();
    let doc = r.json();
    assert!(doc.get("error").is_some(), "{body}");
    for field in ["ticket", "position", "pass", "state", "eta_s"] {
        assert!(doc.get(field).is_none(), "{field} in {body}");
        assert!(doc["error"].get(field).is_none(), "{field} in {body}");
    }
    for secret in ["ticket", "pass"] {
        if let Some(s) = victim[secret].as_str() {
            assert!(!body.contains(s), "{secret} leaked: {body}");
        }
    }
}

#[tokio::test]
async fn signed_is_the_default_and_every_bad_token_is_refused() {
    let srv = TestServer::start().await;
    let doc = create_event(&srv, "q", &small_event(Some(queue_cfg(1, 1)))).await;
    assert_eq!(doc["queue"]["identity"], "signed");
    create_event(&srv, "other", &small_event(Some(queue_cfg(1, 1)))).await;
    // The victim is in line (and, capacity 1, soon admitted with a pass).
    let victim = admitted_victim(&srv).await;

    let srv = &srv;
    let post = |body: Value| async move { srv.public_post(JOIN, &body).await };
    // No token at all.
    let r = post(json!({"user": "victim"})).await;
    r.expect(401, Some("user_token_required"));
    leaks_nothing(&r, &victim);

    let good = user_token("q", "victim");
    let forged = {
        // The attacker's own valid token, its payload swapped for one that
        // names the victim.
        let mine = user_token("q", "attacker");
        let theirs = token_with(
            "q",
            "victim",
            later_s(),
            &kid(),
            b"any-other-secret-of-32-bytes!!!!",
        );
        let payload = theirs.split('.').nth(2).unwrap();
        let sig = mine.rsplit('.').next().unwrap();
        format!("u1.{}.{payload}.{sig}", kid())
    };
    let pass = victim["pass"].as_str().unwrap().to_string();
    let cases: Vec<(&str, String, &str)> = vec![
        ("forged", forged, "bad_signature"),
        (
            "wrong secret",
            token_with(
                "q",
                "victim",
                later_s(),
                &kid(),
                b"not-the-server-secret-at-all!!!!",
            ),
            "bad_signature",
        ),
        (
            "expired",
            token_with(
                "q",
                "victim",
                start_time().as_millis() / 1000,
                &kid(),
                SECRET,
            ),
            "expired",
        ),
        ("other event", user_token("other", "victim"), "other_event"),
        ("other user", user_token("q", "attacker"), "other_user"),
        (
            "unknown kid",
            token_with("q", "victim", later_s(), "k7", SECRET),
            "unknown_key",
        ),
        ("a pass", pass, "pass_not_user_token"),
        ("garbage", "u1.k1.nope".into(), "malformed"),
    ];
    for (what, token, reason) in cases {
        let r = post(json!({"user": "victim", "user_token": token})).await;
        assert_eq!(r.status, 403, "{what}: {:?}", r.body);
        assert_eq!(r.code(), "user_token_invalid", "{what}");
        assert_eq!(r.json()["error"]["reason"], reason, "{what}");
        leaks_nothing(&r, &victim);
    }
    // The genuine token still works: same ticket, same place.
    let r = post(json!({"user": "victim", "user_token": good})).await;
    r.expect(200, None);
    assert_eq!(r.json()["ticket"], victim["ticket"]);
    assert_eq!(r.json()["state"], "admitted");
    // Nobody else got in line through all that.
    let doc = srv.get("/v1/events/q").await.json();
    assert_eq!(
        doc["waiting"].as_u64().unwrap() + doc["admitted"].as_u64().unwrap(),
        1
    );
}

/// Joins "victim" through a valid token and waits until admitted.
async fn admitted_victim(srv: &TestServer) -> Value {
    let t = join(srv, "q", "victim").await;
    let ticket = t["ticket"].as_str().unwrap().to_string();
    for _ in 0..50 {
        srv.advance(1_000);
        let s = status(srv, "q", &ticket).await;
        if s["state"] == "admitted" {
            return s;
        }
    }
    panic!("victim never admitted");
}

#[tokio::test]
async fn rejoin_with_the_owners_token_keeps_the_place() {
    let srv = TestServer::start().await;
    create_event(&srv, "q", &small_event(Some(queue_cfg(1, 1)))).await;
    // Paused, so a driver tick between the joins cannot admit "first" and
    // move everyone's position (the comparison below is of places).
    srv.call(Method::POST, "/v1/events/q/pause")
        .admin()
        .send()
        .await
        .expect(200, None);
    join(&srv, "q", "first").await;
    let a = join(&srv, "q", "second").await;
    join(&srv, "q", "third").await;
    let r = srv.public_post(JOIN, &join_body("q", "second")).await;
    r.expect(200, None);
    assert_eq!(r.json()["ticket"], a["ticket"]);
    assert_eq!(r.json()["position"], a["position"]);
}

#[tokio::test]
async fn anonymous_joins_mint_distinct_unguessable_users() {
    let srv = TestServer::start().await;
    let doc = create_event(&srv, "q", &small_event(Some(anonymous_queue()))).await;
    assert_eq!(doc["queue"]["identity"], "anonymous");
    let mut users = std::collections::HashSet::new();
    let mut tickets = std::collections::HashSet::new();
    for i in 0..20 {
        // With `{}` and with no body at all.
        let call = srv.call(Method::POST, JOIN);
        let call = if i % 2 == 0 {
            call.json(&json!({}))
        } else {
            call
        };
        let r = call.send().await;
        r.expect(201, None);
        let d = r.json();
        let user = d["user"].as_str().unwrap().to_string();
        let hex = user.strip_prefix("anon-").expect("anon- prefix");
        assert_eq!(hex.len(), 32, "{user}");
        assert!(hex.bytes().all(|c| c.is_ascii_hexdigit()), "{user}");
        assert!(users.insert(user));
        assert!(tickets.insert(d["ticket"].as_str().unwrap().to_string()));
    }
    // A chosen user (or a token) is refused.
    srv.public_post(JOIN, &json!({"user": "u-1"}))
        .await
        .expect(400, Some("bad_request"));
    srv.public_post(JOIN, &join_body("q", "u-1"))
        .await
        .expect(400, Some("bad_request"));
    // The service realm still joins a named user.
    srv.service_post(JOIN, &json!({"user": "u-1"}))
        .await
        .expect(201, None);
}

#[tokio::test]
async fn service_realm_joins_as_given_and_a_wrong_token_is_401() {
    let srv = TestServer::start().await;
    create_event(&srv, "q", &small_event(Some(queue_cfg(1, 1)))).await;
    let a = srv.service_post(JOIN, &json!({"user": "u-1"})).await;
    a.expect(201, None);
    // The backend's rejoin is the same ticket, and so is the user's own.
    let b = srv.service_post(JOIN, &json!({"user": "u-1"})).await;
    b.expect(200, None);
    assert_eq!(a.json()["ticket"], b.json()["ticket"]);
    let c = srv.public_post(JOIN, &join_body("q", "u-1")).await;
    assert_eq!(c.json()["ticket"], a.json()["ticket"]);
    // A wrong bearer token is not taken for a public join.
    for auth in ["Bearer not-the-service-token", "Basic abc", "Bearer "] {
        let r = srv
            .call(Method::POST, JOIN)
            .header("authorization", auth)
            .json(&join_body("q", "u-1"))
            .send()
            .await;
        r.expect(401, Some("unauthorized"));
        leaks_nothing(&r, &a.json());
    }
    // The admin token is the other realm.
    srv.call(Method::POST, JOIN)
        .admin()
        .json(&json!({"user": "u-1"}))
        .send()
        .await
        .expect(403, Some("forbidden"));
    // The service realm needs a user.
    srv.call(Method::POST, JOIN)
        .service()
        .json(&json!({}))
        .send()
        .await
        .expect(400, Some("bad_request"));
}

#[tokio::test]
async fn service_joins_are_not_limited_per_address_public_ones_are() {
    let srv = TestServer::with(|s| {
        s.limits.join_rate_per_s = 1;
        s.limits.join_burst = 2;
    })
    .await;
    create_event(&srv, "q", &small_event(Some(queue_cfg(5, 5)))).await;
    for i in 0..50 {
        srv.service_post(JOIN, &json!({"user": format!("s-{i}")}))
            .await
            .expect(201, None);
    }
    join(&srv, "q", "p-1").await;
    join(&srv, "q", "p-2").await;
    srv.public_post(JOIN, &join_body("q", "p-3"))
        .await
        .expect(429, Some("too_many_requests"));
    // The limit on public joins does not spill onto the backend's.
    srv.service_post(JOIN, &json!({"user": "s-last"}))
        .await
        .expect(201, None);
}

#[tokio::test]
async fn a_service_key_names_one_join() {
    let srv = TestServer::start().await;
    create_event(&srv, "q", &small_event(Some(queue_cfg(1, 1)))).await;
    let send = |user: &'static str, key: &'static str| {
        srv.call(Method::POST, JOIN)
            .service()
            .header("idempotency-key", key)
            .json(&json!({"user": user}))
            .send()
    };
    let a = send("u1", "same-key").await;
    a.expect(201, None);
    // The replay answers with the first status and the same ticket.
    let again = send("u1", "same-key").await;
    again.expect(201, None);
    assert_eq!(again.json()["ticket"], a.json()["ticket"]);
    // The backend's key with another user's body is a reused key, and
    // nobody joins for it.
    send("u2", "same-key")
        .await
        .expect(422, Some("idempotency_key_reused"));
    let doc = srv.get("/v1/events/q").await.json();
    let in_line = doc["waiting"].as_u64().unwrap() + doc["admitted"].as_u64().unwrap();
    assert_eq!(in_line, 1, "u2 did not join");
    // Without a key (or with its own), u2 joins.
    send("u2", "other-key").await.expect(201, None);
}

/// A retried anonymous join (its answer lost) gets the first ticket back,
/// not a second place at the back; without the key it would mint a new
/// user each time.
#[tokio::test]
async fn an_anonymous_retry_with_its_key_keeps_the_first_place() {
    let srv = TestServer::start().await;
    create_event(&srv, "q", &small_event(Some(anonymous_queue()))).await;
    let send = |key: &'static str| {
        srv.call(Method::POST, JOIN)
            .header("idempotency-key", key)
            .json(&json!({}))
            .send()
    };
    let a = send("anon-retry-7f3a").await;
    a.expect(201, None);
    let b = send("anon-retry-7f3a").await;
    b.expect(201, None);
    assert_eq!(a.json()["ticket"], b.json()["ticket"]);
    assert_eq!(a.json()["user"], b.json()["user"]);
    let c = send("another-key-19c2").await;
    c.expect(201, None);
    assert_ne!(c.json()["ticket"], a.json()["ticket"]);
    let doc = srv.get("/v1/events/q").await.json();
    let in_line = doc["waiting"].as_u64().unwrap() + doc["admitted"].as_u64().unwrap();
    assert_eq!(in_line, 2, "two keys, two places");
}
