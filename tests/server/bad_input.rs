//! The bad-input matrix: every malformed request gets its 4xx and leaves the
//! state exactly as it was (event, seats, coupon and ticket documents are
//! compared before and after).

use crate::common::*;
use crate::holds::admitted;
use bytes::Bytes;
use http::Method;
use serde_json::{json, Value};

struct Case {
    name: &'static str,
    method: Method,
    path: String,
    token: Option<&'static str>,
    content_type: Option<&'static str>,
    body: Bytes,
    headers: Vec<(&'static str, String)>,
    status: u16,
    code: &'static str,
}

fn case(
    name: &'static str,
    method: Method,
    path: &str,
    token: Option<&'static str>,
    body: impl Into<Bytes>,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        name,
        method,
        path: path.to_string(),
        token,
        content_type: Some("application/json"),
        body: body.into(),
        headers: Vec::new(),
        status,
        code,
    }
}

async fn snapshot(srv: &TestServer, ticket: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for p in [
        "/v1/events/e1".to_string(),
        "/v1/events/e1/seats".to_string(),
        "/v1/events/e1/seats?section=A".to_string(),
        "/v1/coupons/c1".to_string(),
        format!("/v1/events/e1/queue/{ticket}"),
    ] {
        let r = srv.get(&p).await;
        r.expect(200, None);
        let mut v = r.json();
        // The pass is re-signed on every read; compare what it says instead.
        if let Some(o) = v.as_object_mut() {
            o.remove("pass");
        }
        out.push(v);
    }
    out
}

const PUT_EVENT: &str = "/v1/events/e1";
const HOLDS: &str = "/v1/events/e1/holds";
const ADMIN_T: Option<&str> = Some(ADMIN);
const SERVICE_T: Option<&str> = Some(SERVICE);

fn event_with(patch: impl FnOnce(&mut Value)) -> String {
    let mut e = small_event(Some(queue_cfg(10, 10)));
    e["name"] = json!("replacement");
    patch(&mut e);
    e.to_string()
}

#[tokio::test]
async fn bad_input_matrix_leaves_state_unchanged() {
    let srv = TestServer::start().await;
    create_event(&srv, "e1", &small_event(Some(queue_cfg(10, 10)))).await;
    srv.admin_put("/v1/coupons/c1", &json!({"stock": 10}))
        .await
        .expect(201, None);
    let s = admitted(&srv, "e1", "u1").await;
    let ticket = s["ticket"].as_str().unwrap().to_string();
    let pass = s["pass"].as_str().unwrap().to_string();
    let before = snapshot(&srv, &ticket).await;

    let hold = |v: Value| v.to_string();
    let mut forged = pass.clone();
    forged.insert(10, 'x');
    let mut cases = vec![
        // Malformed and truncated JSON, wrong shapes.
        case(
            "truncated",
            Method::PUT,
            PUT_EVENT,
            ADMIN_T,
            r#"{"name": "x", "seats": ["#,
            400,
            "bad_request",
        ),
        case(
            "malformed",
            Method::PUT,
            PUT_EVENT,
            ADMIN_T,
            "{name: x}",
            400,
            "bad_request",
        ),
        case(
            "array body",
            Method::PUT,
            PUT_EVENT,
            ADMIN_T,
            "[1,2]",
            400,
            "bad_request",
        ),
        case(
            "empty body",
            Method::PUT,
            PUT_EVENT,
            ADMIN_T,
            "",
            400,
            "bad_request",
        ),
        case(
            "invalid utf-8",
            Method::PUT,
            PUT_EVENT,
            ADMIN_T,
            &b"{\"name\": \"\xff\xfe\", \"seats\": []}"[..],
            400,
            "bad_request",
        ),
        case(
            "deep nesting",
            Method::PUT,
            PUT_EVENT,
            ADMIN_T,
            "[".repeat(5000),
            400,
            "bad_request",
        ),
        // Wrong types, missing fields, out of range.
        case(
            "name not string",
            Method::PUT,
            PUT_EVENT,
            ADMIN_T,
            event_with(|e| e["name"] = json!(5)),
            400,
            "bad_request",
        ),
        case(
            "seats not array",
            Method::PUT,
            PUT_EVENT,
            ADMIN_T,
            event_with(|e| e["seats"] = json!("A")),
            400,
            "bad_request",
        ),
        case(
            "missing seats",
            Method::PUT,
            PUT_EVENT,
            ADMIN_T,
            event_with(|e| {
                e.as_object_mut().unwrap().remove("seats");
            }),
            400,
            "bad_request",
        ),
        case(
            "missing name",
            Method::PUT,
            PUT_EVENT,
            ADMIN_T,
            event_with(|e| {
                e.as_object_mut().unwrap().remove("name");
            }),
            400,
            "bad_request",
        ),
        case(
            "capacity string",
            Method::PUT,
            PUT_EVENT,
            ADMIN_T,
            event_with(|e| e["queue"]["capacity"] = json!("10")),
            400,
            "bad_request",
        ),
        case(
            "capacity missing",
            Method::PUT,
            PUT_EVENT,
            ADMIN_T,
            event_with(|e| {
                e["queue"].as_object_mut().unwrap().remove("capacity");
            }),
            400,
            "bad_request",
        ),
        case(
            "capacity zero",
            Method::PUT,
            PUT_EVENT,
            ADMIN_T,
            event_with(|e| e["queue"]["capacity"] = json!(0)),
            400,
            "bad_request",
        ),
        case(
            "capacity huge",
            Method::PUT,
            PUT_EVENT,
            ADMIN_T,
            event_with(|e| e["queue"]["capacity"] = json!(1e20)),
            400,
            "bad_request",
        ),
        case(
            "rate negative",
            Method::PUT,
            PUT_EVENT,
            ADMIN_T,
            event_with(|e| e["queue"]["admit_per_s"] = json!(-1)),
            400,
            "bad_request",
        ),
        case(
            "rate fraction",
            Method::PUT,
            PUT_EVENT,
            ADMIN_T,
            event_with(|e| e["queue"]["admit_per_s"] = json!(1.5)),
            400,
            "bad_request",
        ),
        case(
            "u64 overflow",
            Method::PUT,
            PUT_EVENT,
            ADMIN_T,
            r#"{"name":"x","seats":[{"section":"A","row":"1","first":1,"last":99999999999999999999999,"category":"R"}]}"#,
            400,
            "bad_request",
        ),
        case(
            "prequeue unknown",
            Method::PUT,
            PUT_EVENT,
            ADMIN_T,
            event_with(|e| e["queue"]["prequeue"] = json!("lifo")),
            400,
            "bad_request",
        ),
        case(
            "opens_at garbage",
            Method::PUT,
            PUT_EVENT,
            ADMIN_T,
            event_with(|e| e["opens_at"] = json!("tomorrow")),
            400,
            "bad_request",
        ),
        case(
            "overlapping rows",
            Method::PUT,
            PUT_EVENT,
            ADMIN_T,
            event_with(|e| e["seats"][1]["row"] = json!("1")),
            400,
            "bad_request",
        ),
        case(
            "section with dash",
            Method::PUT,
            PUT_EVENT,
            ADMIN_T,
            event_with(|e| e["seats"][0]["section"] = json!("A-B")),
            400,
            "bad_request",
        ),
        case(
            "first after last",
            Method::PUT,
            PUT_EVENT,
            ADMIN_T,
            event_with(|e| e["seats"][0]["first"] = json!(11)),
            400,
            "bad_request",
        ),
        case(
            "ttl above max",
            Method::PUT,
            PUT_EVENT,
            ADMIN_T,
            event_with(|e| e["holds"]["ttl_s"] = json!(500)),
            400,
            "bad_request",
        ),
        case(
            "name control chars",
            Method::PUT,
            PUT_EVENT,
            ADMIN_T,
            event_with(|e| e["name"] = json!("a\u{7}b")),
            400,
            "bad_request",
        ),
        // Bad ids in paths.
        case(
            "event id too long",
            Method::PUT,
            &format!("/v1/events/{}", "e".repeat(65)),
            ADMIN_T,
            event_with(|_| {}),
            400,
            "bad_request",
        ),
        case(
            "event id control",
            Method::GET,
            "/v1/events/e%001",
            None,
            "",
            400,
            "bad_request",
        ),
        case(
            "event id unicode",
            Method::GET,
            "/v1/events/%C3%A9v",
            None,
            "",
            400,
            "bad_request",
        ),
        case(
            "coupon id bad",
            Method::PUT,
            "/v1/coupons/-c",
            ADMIN_T,
            r#"{"stock": 1}"#,
            400,
            "bad_request",
        ),
        // Content types and sizes.
        case(
            "text/plain",
            Method::PUT,
            PUT_EVENT,
            ADMIN_T,
            event_with(|_| {}),
            415,
            "unsupported_media_type",
        ),
        case(
            "oversized",
            Method::PUT,
            PUT_EVENT,
            ADMIN_T,
            event_with(|e| e["pad"] = json!("p".repeat(66_000))),
            413,
            "payload_too_large",
        ),
        // Wrong methods and paths.
        case(
            "PATCH event",
            Method::PATCH,
            PUT_EVENT,
            ADMIN_T,
            "",
            405,
            "method_not_allowed",
        ),
        case(
            "POST event",
            Method::POST,
            PUT_EVENT,
            ADMIN_T,
            "{}",
            405,
            "method_not_allowed",
        ),
        case(
            "GET holds",
            Method::GET,
            HOLDS,
            SERVICE_T,
            "",
            405,
            "method_not_allowed",
        ),
        case(
            "unknown path",
            Method::GET,
            "/v1/events/e1/tickets",
            None,
            "",
            404,
            "not_found",
        ),
        // Holds: users, seats, best, passes.
        case(
            "user too long",
            Method::POST,
            HOLDS,
            SERVICE_T,
            hold(json!({"user": "u".repeat(129), "pass": pass, "seats": ["A-1-1"]})),
            400,
            "bad_request",
        ),
        case(
            "user control",
            Method::POST,
            HOLDS,
            SERVICE_T,
            hold(json!({"user": "u\u{1}", "pass": pass, "seats": ["A-1-1"]})),
            400,
            "bad_request",
        ),
        case(
            "user empty",
            Method::POST,
            HOLDS,
            SERVICE_T,
            hold(json!({"user": "", "pass": pass, "seats": ["A-1-1"]})),
            400,
            "bad_request",
        ),
        case(
            "user number",
            Method::POST,
            HOLDS,
            SERVICE_T,
            hold(json!({"user": 7, "pass": pass, "seats": ["A-1-1"]})),
            400,
            "bad_request",
        ),
        case(
            "user missing",
            Method::POST,
            HOLDS,
            SERVICE_T,
            hold(json!({"pass": pass, "seats": ["A-1-1"]})),
            400,
            "bad_request",
        ),
        case(
            "seats empty",
            Method::POST,
            HOLDS,
            SERVICE_T,
            hold(json!({"user": "u1", "pass": pass, "seats": []})),
            400,
            "bad_request",
        ),
        case(
            "seat malformed",
            Method::POST,
            HOLDS,
            SERVICE_T,
            hold(json!({"user": "u1", "pass": pass, "seats": ["A-1"]})),
            400,
            "bad_request",
        ),
        case(
            "seat number huge",
            Method::POST,
            HOLDS,
            SERVICE_T,
            hold(json!({"user": "u1", "pass": pass, "seats": ["A-1-99999999999"]})),
            400,
            "bad_request",
        ),
        case(
            "seat not string",
            Method::POST,
            HOLDS,
            SERVICE_T,
            hold(json!({"user": "u1", "pass": pass, "seats": [1]})),
            400,
            "bad_request",
        ),
        case(
            "seat twice",
            Method::POST,
            HOLDS,
            SERVICE_T,
            hold(json!({"user": "u1", "pass": pass, "seats": ["A-1-1", "A-1-1"]})),
            400,
            "bad_request",
        ),
        case(
            "seats and best",
            Method::POST,
            HOLDS,
            SERVICE_T,
            hold(
                json!({"user": "u1", "pass": pass, "seats": ["A-1-1"], "best": {"count": 1, "category": "R"}}),
            ),
            400,
            "bad_request",
        ),
        case(
            "neither",
            Method::POST,
            HOLDS,
            SERVICE_T,
            hold(json!({"user": "u1", "pass": pass})),
            400,
            "bad_request",
        ),
        case(
            "best zero",
            Method::POST,
            HOLDS,
            SERVICE_T,
            hold(json!({"user": "u1", "pass": pass, "best": {"count": 0, "category": "R"}})),
            400,
            "bad_request",
        ),
        case(
            "best negative",
            Method::POST,
            HOLDS,
            SERVICE_T,
            hold(json!({"user": "u1", "pass": pass, "best": {"count": -2, "category": "R"}})),
            400,
            "bad_request",
        ),
        case(
            "best huge",
            Method::POST,
            HOLDS,
            SERVICE_T,
            hold(
                json!({"user": "u1", "pass": pass, "best": {"count": 4_000_000_000u64, "category": "R"}}),
            ),
            400,
            "bad_request",
        ),
        case(
            "unknown seat",
            Method::POST,
            HOLDS,
            SERVICE_T,
            hold(json!({"user": "u1", "pass": pass, "seats": ["Z-1-1"]})),
            422,
            "unknown_seat",
        ),
        case(
            "no pass",
            Method::POST,
            HOLDS,
            SERVICE_T,
            hold(json!({"user": "u1", "seats": ["A-1-1"]})),
            403,
            "pass_required",
        ),
        case(
            "forged pass",
            Method::POST,
            HOLDS,
            SERVICE_T,
            hold(json!({"user": "u1", "pass": forged, "seats": ["A-1-1"]})),
            403,
            "pass_invalid",
        ),
        case(
            "other user's pass",
            Method::POST,
            HOLDS,
            SERVICE_T,
            hold(json!({"user": "u2", "pass": pass, "seats": ["A-1-1"]})),
            403,
            "pass_invalid",
        ),
        case(
            "pass wrong type",
            Method::POST,
            HOLDS,
            SERVICE_T,
            hold(json!({"user": "u1", "pass": 12, "seats": ["A-1-1"]})),
            400,
            "bad_request",
        ),
        case(
            "pass overlong",
            Method::POST,
            HOLDS,
            SERVICE_T,
            hold(json!({"user": "u1", "pass": "p".repeat(3000), "seats": ["A-1-1"]})),
            400,
            "bad_request",
        ),
        // Hold steps on nothing.
        case(
            "confirm no order",
            Method::POST,
            "/v1/events/e1/holds/h0g0-1/confirm",
            SERVICE_T,
            "{}",
            400,
            "bad_request",
        ),
        case(
            "extend zero",
            Method::POST,
            "/v1/events/e1/holds/h0g0-1/extend",
            SERVICE_T,
            r#"{"ttl_s": 0}"#,
            400,
            "bad_request",
        ),
        case(
            "extend string",
            Method::POST,
            "/v1/events/e1/holds/h0g0-1/extend",
            SERVICE_T,
            r#"{"ttl_s": "5"}"#,
            400,
            "bad_request",
        ),
        case(
            "hold id bad",
            Method::DELETE,
            "/v1/events/e1/holds/h-1g0",
            SERVICE_T,
            "",
            404,
            "hold_not_found",
        ),
        // Queue.
        case(
            "join no user",
            Method::POST,
            "/v1/events/e1/queue",
            None,
            "{}",
            400,
            "bad_request",
        ),
        case(
            "join user array",
            Method::POST,
            "/v1/events/e1/queue",
            None,
            r#"{"user": ["u"]}"#,
            400,
            "bad_request",
        ),
        case(
            "complete no token",
            Method::POST,
            &format!("/v1/events/e1/queue/{ticket}/complete"),
            None,
            "",
            401,
            "unauthorized",
        ),
        case(
            "leave bad ticket",
            Method::DELETE,
            "/v1/events/e1/queue/AAAAAAAAAAAAAAAAAAAAAA",
            None,
            "",
            404,
            "ticket_not_found",
        ),
        // Query values that are not percent-encoded UTF-8 are refused, not
        // read as absent (which would answer with the counts instead).
        case(
            "section not UTF-8",
            Method::GET,
            "/v1/events/e1/seats?section=%FF",
            None,
            "",
            400,
            "bad_request",
        ),
        case(
            "section bad percent",
            Method::GET,
            "/v1/events/e1/seats?section=%G1",
            None,
            "",
            400,
            "bad_request",
        ),
        case(
            "section truncated percent",
            Method::GET,
            "/v1/events/e1/seats?section=A%2",
            None,
            "",
            400,
            "bad_request",
        ),
        // Timestamps past what RFC 3339 can write (year 9999 in UTC).
        case(
            "opens_at past 9999",
            Method::PUT,
            "/v1/coupons/c1",
            ADMIN_T,
            r#"{"stock": 10, "opens_at": "9999-12-31T23:59:59-01:00"}"#,
            400,
            "bad_request",
        ),
        case(
            "closes_at five-digit year",
            Method::PUT,
            "/v1/coupons/c1",
            ADMIN_T,
            r#"{"stock": 10, "closes_at": "10000-01-01T00:00:00Z"}"#,
            400,
            "bad_request",
        ),
        case(
            "event opens_at past 9999",
            Method::PUT,
            PUT_EVENT,
            ADMIN_T,
            event_with(|e| e["opens_at"] = json!("9999-12-31T23:30:00-23:00")),
            400,
            "bad_request",
        ),
        // Coupons.
        case(
            "stock negative",
            Method::PUT,
            "/v1/coupons/c1",
            ADMIN_T,
            r#"{"stock": -5}"#,
            400,
            "bad_request",
        ),
        case(
            "stock huge",
            Method::PUT,
            "/v1/coupons/c1",
            ADMIN_T,
            r#"{"stock": 18446744073709551616}"#,
            400,
            "bad_request",
        ),
        case(
            "per_user zero",
            Method::PUT,
            "/v1/coupons/c1",
            ADMIN_T,
            r#"{"stock": 5, "per_user": 0}"#,
            400,
            "bad_request",
        ),
        case(
            "window reversed",
            Method::PUT,
            "/v1/coupons/c1",
            ADMIN_T,
            r#"{"stock": 5, "opens_at": "2026-12-02T00:00:00Z", "closes_at": "2026-12-01T00:00:00Z"}"#,
            400,
            "bad_request",
        ),
        case(
            "claim user missing",
            Method::POST,
            "/v1/coupons/c1/claims",
            SERVICE_T,
            r#"{"usr": "u1"}"#,
            400,
            "bad_request",
        ),
        case(
            "claim bad id",
            Method::DELETE,
            "/v1/coupons/c1/claims/k-1",
            SERVICE_T,
            "",
            404,
            "claim_not_found",
        ),
    ];
    // Variants that need header tweaks.
    let mut no_ct = case(
        "body without content type",
        Method::POST,
        "/v1/coupons/c1/claims",
        SERVICE_T,
        r#"{"user": "u9"}"#,
        415,
        "unsupported_media_type",
    );
    no_ct.content_type = None;
    cases.push(no_ct);
    let mut form = case(
        "form body",
        Method::POST,
        "/v1/coupons/c1/claims",
        SERVICE_T,
        "user=u9",
        415,
        "unsupported_media_type",
    );
    form.content_type = Some("application/x-www-form-urlencoded");
    cases.push(form);
    let mut plain = case(
        "text/plain event",
        Method::PUT,
        PUT_EVENT,
        ADMIN_T,
        event_with(|_| {}),
        415,
        "unsupported_media_type",
    );
    plain.content_type = Some("text/plain");
    cases.push(plain);
    let mut long_key = case(
        "idempotency key too long",
        Method::POST,
        "/v1/coupons/c1/claims",
        SERVICE_T,
        r#"{"user": "u9"}"#,
        400,
        "bad_request",
    );
    long_key.headers.push(("idempotency-key", "k".repeat(129)));
    cases.push(long_key);
    let mut space_key = case(
        "idempotency key with space",
        Method::POST,
        "/v1/coupons/c1/claims",
        SERVICE_T,
        r#"{"user": "u9"}"#,
        400,
        "bad_request",
    );
    space_key.headers.push(("idempotency-key", "a b".into()));
    cases.push(space_key);
    // The text/plain case above used the JSON type by mistake; fix it here.
    if let Some(c) = cases.iter_mut().find(|c| c.name == "text/plain") {
        c.content_type = Some("text/plain");
    }

    let mut failures = Vec::new();
    for c in cases {
        let mut call = srv
            .call(c.method.clone(), &c.path)
            .raw(c.content_type, c.body.clone());
        if let Some(t) = c.token {
            call = call.bearer(t);
        }
        for (k, v) in &c.headers {
            call = call.header(k, v);
        }
        let r = call.send().await;
        let code = serde_json::from_slice::<Value>(&r.body)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_string));
        if r.status != c.status || code.as_deref() != Some(c.code) {
            failures.push(format!(
                "{}: got {} {}, want {} {}",
                c.name,
                r.status,
                String::from_utf8_lossy(&r.body),
                c.status,
                c.code
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(snapshot(&srv, &ticket).await, before, "state unchanged");
}

#[tokio::test]
async fn expired_pass_changes_nothing() {
    let srv = TestServer::start().await;
    create_event(&srv, "e1", &small_event(Some(queue_cfg(10, 10)))).await;
    srv.admin_put("/v1/coupons/c1", &json!({"stock": 1}))
        .await
        .expect(201, None);
    let s = admitted(&srv, "e1", "u1").await;
    let ticket = s["ticket"].as_str().unwrap().to_string();
    let pass = s["pass"].as_str().unwrap().to_string();
    srv.advance(600_000);
    let before = snapshot(&srv, &ticket).await;
    let r = srv
        .service_post(
            HOLDS,
            &json!({"user": "u1", "pass": pass, "seats": ["A-1-1"]}),
        )
        .await;
    r.expect(403, Some("pass_invalid"));
    assert_eq!(snapshot(&srv, &ticket).await, before);
}
