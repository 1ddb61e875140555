//! Concurrency over HTTP: seats fought over by 200 clients (I1), and 2,000
//! duplicate-laden claims on a stock of 500 (I2).

use crate::common::*;
use http::Method;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// A small deterministic generator per client (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_fight_for_a_hundred_seats() {
    let srv = Arc::new(TestServer::start().await);
    let body = json!({"name": "fight",
        "seats": [{"section": "A", "row": "1", "first": 1, "last": 50, "category": "R"},
                  {"section": "A", "row": "2", "first": 1, "last": 50, "category": "R"}],
        "holds": {"ttl_s": 5, "max_ttl_s": 10, "max_seats_per_user": 4}});
    create_event(&srv, "f", &body).await;

    let clock_task = {
        let srv = srv.clone();
        tokio::spawn(async move {
            // Time moves while clients work: some holds lapse mid-flight.
            for _ in 0..40 {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                srv.advance(700);
            }
        })
    };
    let mut tasks = Vec::new();
    for c in 0..200u64 {
        let srv = srv.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(c * 7919 + 17);
            let user = format!("client-{c}");
            let mut sold: Vec<String> = Vec::new();
            for _ in 0..5 {
                let n = 1 + rng.next(2);
                let seats: Vec<String> = (0..n)
                    .map(|_| format!("A-{}-{}", 1 + rng.next(2), 1 + rng.next(50)))
                    .collect::<HashSet<_>>()
                    .into_iter()
                    .collect();
                let r = srv
                    .service_post("/v1/events/f/holds", &json!({"user": user, "seats": seats}))
                    .await;
                match r.status {
                    201 => {}
                    409 | 422 => continue,
                    s => panic!("unexpected {s}: {:?}", r.body),
                }
                let h = r.json();
                let id = h["hold"].as_str().unwrap().to_string();
                match rng.next(3) {
                    0 => {
                        let r = srv
                            .service_post(
                                &format!("/v1/events/f/holds/{id}/confirm"),
                                &json!({"order": format!("o-{c}")}),
                            )
                            .await;
                        match r.status {
                            200 => {
                                let s: Vec<String> =
                                    serde_json::from_value(r.json()["seats"].clone()).unwrap();
                                sold.extend(s);
                            }
                            410 => {}
                            s => panic!("confirm {s}"),
                        }
                    }
                    1 => {
                        srv.call(Method::DELETE, &format!("/v1/events/f/holds/{id}"))
                            .service()
                            .send()
                            .await
                            .expect(204, None);
                    }
                    _ => {} // abandoned: left to expire
                }
            }
            sold
        }));
    }
    let mut all_sold = Vec::new();
    for t in tasks {
        all_sold.extend(t.await.unwrap());
    }
    clock_task.await.unwrap();
    let unique: HashSet<&String> = all_sold.iter().collect();
    assert_eq!(unique.len(), all_sold.len(), "no seat sold twice");

    srv.advance(20_000); // every remaining hold lapses
    let counts = srv.get("/v1/events/f/seats").await.json();
    let (free, held, sold) = (
        counts["free"].as_u64().unwrap(),
        counts["held"].as_u64().unwrap(),
        counts["sold"].as_u64().unwrap(),
    );
    assert_eq!(free + held + sold, 100);
    assert_eq!(held, 0);
    assert_eq!(
        sold,
        all_sold.len() as u64,
        "sold count matches confirmed seats"
    );
    let rows = srv.get("/v1/events/f/seats?section=A").await.json();
    let letters: String = rows["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(letters.matches('S').count() as u64, sold);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_claims_on_five_hundred() {
    let srv = Arc::new(TestServer::start().await);
    srv.admin_put("/v1/coupons/flash", &json!({"stock": 500, "per_user": 1}))
        .await
        .expect(201, None);
    let gate = Arc::new(Semaphore::new(64));
    let mut tasks = Vec::new();
    for i in 0..2000u32 {
        let srv = srv.clone();
        let gate = gate.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            // 1,000 users, each claiming twice.
            let user = format!("user-{}", i % 1000);
            let r = srv
                .service_post("/v1/coupons/flash/claims", &json!({"user": user}))
                .await;
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            (r.status, user, body)
        }));
    }
    let mut ok = Vec::new();
    let mut refusals: HashMap<String, usize> = HashMap::new();
    for t in tasks {
        let (status, user, body) = t.await.unwrap();
        match status {
            201 => ok.push((user, body["claim"].as_str().unwrap().to_string())),
            409 | 410 => {
                *refusals
                    .entry(body["error"]["code"].as_str().unwrap().to_string())
                    .or_default() += 1
            }
            s => panic!("unexpected {s}: {body}"),
        }
    }
    assert_eq!(ok.len(), 500, "exactly the stock succeeds: {refusals:?}");
    let users: HashSet<_> = ok.iter().map(|(u, _)| u).collect();
    assert_eq!(users.len(), 500, "no user passes per_user");
    let claims: HashSet<_> = ok.iter().map(|(_, c)| c).collect();
    assert_eq!(claims.len(), 500, "distinct claims");
    let c = srv.get("/v1/coupons/flash").await.json();
    assert_eq!(
        (c["issued"].clone(), c["remaining"].clone()),
        (json!(500), json!(0))
    );
}
