//! Docs agree with the server: every route in docs/openapi.yaml is served
//! (not 404 `not_found` / 405), every served route is documented, and
//! docs/api.md names every endpoint and error code.

use crate::common::*;
use http::Method;
use std::collections::BTreeSet;

/// (path, method) pairs from the `paths:` section of the OpenAPI file.
fn openapi_routes() -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.yaml"))
        .expect("docs/openapi.yaml");
    assert!(text.starts_with("openapi: 3.1"), "OpenAPI 3.1");
    let mut out = BTreeSet::new();
    let mut in_paths = false;
    let mut path: Option<String> = None;
    for line in text.lines() {
        if !line.starts_with(' ') && !line.trim().is_empty() {
            in_paths = line.trim_end() == "paths:";
            path = None;
            continue;
        }
        if !in_paths {
            continue;
        }
        if let Some(p) = line.strip_prefix("  /") {
            path = Some(format!(
                "/{}",
                p.trim_end().trim_end_matches(':').trim_matches('"')
            ));
        } else if let (Some(p), Some(m)) = (&path, line.strip_prefix("    ")) {
            let m = m.trim_end().trim_end_matches(':');
            if ["get", "put", "post", "delete", "patch"].contains(&m) {
                out.insert((p.clone(), m.to_uppercase()));
            }
        }
    }
    out
}

#[test]
fn every_served_route_is_documented_and_back() {
    let served: BTreeSet<(String, String)> = boxoffice::routes()
        .into_iter()
        .map(|r| (r.pattern.to_string(), r.method.to_string()))
        .collect();
    let documented = openapi_routes();
    assert_eq!(
        served.difference(&documented).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "served but not in docs/openapi.yaml"
    );
    assert_eq!(
        documented.difference(&served).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "documented but not served"
    );
    let api = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.md"))
        .expect("docs/api.md");
    for (path, method) in &served {
        assert!(
            api.contains(&format!("{method} {path}")),
            "docs/api.md lacks `{method} {path}`"
        );
    }
}

#[tokio::test]
async fn every_documented_route_is_answered() {
    let srv = TestServer::start().await;
    for (path, method) in openapi_routes() {
        let concrete = path
            .replace("{event}", "e1")
            .replace("{ticket}", "t1")
            .replace("{hold}", "h1g1-1")
            .replace("{coupon}", "c1")
            .replace("{claim}", "k1-1");
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let r = srv.call(m, &concrete).admin().send().await;
        let code = serde_json::from_slice::<serde_json::Value>(&r.body)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_string));
        assert_ne!(r.status, 405, "{method} {path}");
        assert_ne!(code.as_deref(), Some("not_found"), "{method} {path}");
    }
}

#[test]
fn every_error_code_is_documented() {
    let api = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.md"))
        .expect("docs/api.md");
    let openapi =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.yaml"))
            .expect("docs/openapi.yaml");
    for code in [
        "bad_request",
        "unauthorized",
        "forbidden",
        "not_found",
        "method_not_allowed",
        "payload_too_large",
        "unsupported_media_type",
        "too_many_requests",
        "unavailable",
        "internal",
        "idempotency_key_reused",
        "event_not_found",
        "event_in_use",
        "no_queue",
        "queue_full",
        "event_closed",
        "ticket_not_found",
        "not_admitted",
        "seats_unavailable",
        "unknown_seat",
        "unknown_category",
        "limit_exceeded",
        "pass_required",
        "pass_invalid",
        "user_token_required",
        "user_token_invalid",
        "section_not_found",
        "hold_not_found",
        "hold_expired",
        "ttl_too_long",
        "hold_sold",
        "coupon_not_found",
        "already_claimed",
        "sold_out",
        "not_open",
        "claim_not_found",
        "stock_below_issued",
    ] {
        assert!(
            api.contains(&format!("`{code}`")),
            "docs/api.md lacks `{code}`"
        );
        assert!(openapi.contains(code), "docs/openapi.yaml lacks {code}");
    }
}
