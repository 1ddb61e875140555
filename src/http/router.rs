//! The route table: every path pattern, method and realm of the v1 API.
//!
//! The table is data, exported through [`routes`], so the docs test can
//! check that docs/openapi.yaml and the server agree in both directions.

use http::Method;

/// Who may call an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Realm {
    /// No credentials (browsers, probes).
    Public,
    /// The booking backend's bearer token.
    Service,
    /// The operator's bearer token.
    Admin,
    /// Public, or the service realm when an `Authorization` header is sent
    /// (the join: browsers join publicly, the booking backend on its users'
    /// behalf). A header that is not the service token is refused, never
    /// taken as public.
    PublicOrService,
}

impl Realm {
    /// Whether a browser page may call it without credentials (CORS applies).
    pub fn is_public(self) -> bool {
        matches!(self, Realm::Public | Realm::PublicOrService)
    }
}

impl std::fmt::Display for Realm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Realm {
    pub fn as_str(self) -> &'static str {
        match self {
            Realm::Public => "public",
            Realm::Service => "service",
            Realm::Admin => "admin",
            Realm::PublicOrService => "public_or_service",
        }
    }
}

/// Every endpoint the server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteId {
    EventPut,
    EventGet,
    EventDelete,
    EventPause,
    EventResume,
    QueueJoin,
    QueueStatus,
    QueueStream,
    QueueLeave,
    QueueComplete,
    Seats,
    HoldCreate,
    HoldGet,
    HoldDelete,
    HoldConfirm,
    HoldExtend,
    CouponPut,
    CouponGet,
    ClaimCreate,
    ClaimDelete,
    Metrics,
    Healthz,
    Readyz,
    ReadyzWrites,
}

#[derive(Debug)]
pub struct Endpoint {
    pub method: &'static str,
    pub id: RouteId,
    pub realm: Realm,
}

#[derive(Debug)]
pub struct Route {
    /// The pattern, `{name}` for a path parameter; also the metrics label.
    pub pattern: &'static str,
    pub endpoints: &'static [Endpoint],
}

const fn ep(method: &'static str, id: RouteId, realm: Realm) -> Endpoint {
    Endpoint { method, id, realm }
}

use Realm::{Admin, Public, PublicOrService, Service};
use RouteId::*;

pub static ROUTES: &[Route] = &[
    Route {
        pattern: "/v1/events/{event}",
        endpoints: &[
            ep("GET", EventGet, Public),
            ep("PUT", EventPut, Admin),
            ep("DELETE", EventDelete, Admin),
        ],
    },
    Route {
        pattern: "/v1/events/{event}/pause",
        endpoints: &[ep("POST", EventPause, Admin)],
    },
    Route {
        pattern: "/v1/events/{event}/resume",
        endpoints: &[ep("POST", EventResume, Admin)],
    },
    Route {
        pattern: "/v1/events/{event}/queue",
        endpoints: &[ep("POST", QueueJoin, PublicOrService)],
    },
    Route {
        pattern: "/v1/events/{event}/queue/{ticket}",
        endpoints: &[
            ep("GET", QueueStatus, Public),
            ep("DELETE", QueueLeave, Public),
        ],
    },
    Route {
        pattern: "/v1/events/{event}/queue/{ticket}/stream",
        endpoints: &[ep("GET", QueueStream, Public)],
    },
    Route {
        pattern: "/v1/events/{event}/queue/{ticket}/complete",
        endpoints: &[ep("POST", QueueComplete, Service)],
    },
    Route {
        pattern: "/v1/events/{event}/seats",
        endpoints: &[ep("GET", Seats, Public)],
    },
    Route {
        pattern: "/v1/events/{event}/holds",
        endpoints: &[ep("POST", HoldCreate, Service)],
    },
    Route {
        pattern: "/v1/events/{event}/holds/{hold}",
        endpoints: &[
            ep("GET", HoldGet, Service),
            ep("DELETE", HoldDelete, Service),
        ],
    },
    Route {
        pattern: "/v1/events/{event}/holds/{hold}/confirm",
        endpoints: &[ep("POST", HoldConfirm, Service)],
    },
    Route {
        pattern: "/v1/events/{event}/holds/{hold}/extend",
        endpoints: &[ep("POST", HoldExtend, Service)],
    },
    Route {
        pattern: "/v1/coupons/{coupon}",
        endpoints: &[ep("GET", CouponGet, Public), ep("PUT", CouponPut, Admin)],
    },
    Route {
        pattern: "/v1/coupons/{coupon}/claims",
        endpoints: &[ep("POST", ClaimCreate, Service)],
    },
    Route {
        pattern: "/v1/coupons/{coupon}/claims/{claim}",
        endpoints: &[ep("DELETE", ClaimDelete, Service)],
    },
    Route {
        pattern: "/metrics",
        endpoints: &[ep("GET", Metrics, Public)],
    },
    Route {
        pattern: "/healthz",
        endpoints: &[ep("GET", Healthz, Public)],
    },
    Route {
        pattern: "/readyz",
        endpoints: &[ep("GET", Readyz, Public)],
    },
    Route {
        pattern: "/readyz/writes",
        endpoints: &[ep("GET", ReadyzWrites, Public)],
    },
];

/// One served (pattern, method) pair, for docs and tooling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteInfo {
    pub pattern: &'static str,
    pub method: &'static str,
    pub realm: &'static str,
}

/// Every served route.
pub fn routes() -> Vec<RouteInfo> {
    ROUTES
        .iter()
        .flat_map(|r| {
            r.endpoints.iter().map(|e| RouteInfo {
                pattern: r.pattern,
                method: e.method,
                realm: e.realm.as_str(),
            })
        })
        .collect()
}

/// The outcome of routing one request.
#[derive(Debug)]
pub enum Match<'a> {
    Found {
        route: &'static Route,
        endpoint: &'static Endpoint,
        params: Vec<&'a str>,
    },
    MethodNotAllowed {
        route: &'static Route,
    },
    NotFound,
}

fn matches<'a>(pattern: &str, path: &'a str) -> Option<Vec<&'a str>> {
    let mut params = Vec::new();
    let mut want = pattern.split('/');
    let mut have = path.split('/');
    loop {
        match (want.next(), have.next()) {
            (None, None) => return Some(params),
            (Some(w), Some(h)) if w.starts_with('{') => {
                if h.is_empty() {
                    return None;
                }
                params.push(h);
            }
            (Some(w), Some(h)) if w == h => {}
            _ => return None,
        }
    }
}

/// Finds the endpoint for `method` and `path`. `HEAD` is served wherever
/// `GET` is, by the `GET` endpoint (hyper sends the headers, never the body).
pub fn route<'a>(method: &Method, path: &'a str) -> Match<'a> {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    for r in ROUTES {
        if let Some(params) = matches(r.pattern, path) {
            return match r.endpoints.iter().find(|e| e.method == method) {
                Some(endpoint) => Match::Found {
                    route: r,
                    endpoint,
                    params,
                },
                None => Match::MethodNotAllowed { route: r },
            };
        }
    }
    Match::NotFound
}

impl Route {
    /// The `Allow` header value (with `HEAD` wherever `GET` is).
    pub fn allow(&self) -> String {
        let mut methods: Vec<&str> = self.endpoints.iter().map(|e| e.method).collect();
        if methods.contains(&"GET") {
            methods.push("HEAD");
        }
        methods.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_with_params() {
        match route(&Method::GET, "/v1/events/e1/queue/t1/stream") {
            Match::Found {
                endpoint, params, ..
            } => {
                assert_eq!(endpoint.id, RouteId::QueueStream);
                assert_eq!(params, vec!["e1", "t1"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            route(&Method::PATCH, "/v1/events/e1"),
            Match::MethodNotAllowed { .. }
        ));
        match route(&Method::HEAD, "/healthz") {
            Match::Found { endpoint, .. } => assert_eq!(endpoint.id, RouteId::Healthz),
            other => panic!("{other:?}"),
        }
        match route(&Method::PATCH, "/v1/events/e1") {
            Match::MethodNotAllowed { route } => {
                assert_eq!(route.allow(), "GET, PUT, DELETE, HEAD")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            route(&Method::HEAD, "/v1/events/e1/pause"),
            Match::MethodNotAllowed { .. }
        ));
        for p in [
            "/v1/events/",
            "/v1/events//pause",
            "/v1/events/e1/",
            "/x",
            "",
            "/v1",
        ] {
            assert!(matches!(route(&Method::GET, p), Match::NotFound), "{p}");
        }
    }

    #[test]
    fn patterns_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for r in routes() {
            assert!(seen.insert((r.pattern, r.method)), "{r:?}");
        }
    }
}
