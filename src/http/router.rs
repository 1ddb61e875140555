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

/// How many routes [`ROUTES`] has (the metrics keep a slot for each).
pub const ROUTE_COUNT: usize = ROUTES.len();

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

/// Path parameters of one match (at most [`Params::MAX`]), borrowed from
/// the path: routing allocates nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Params<'a> {
    vals: [&'a str; Params::MAX],
    len: usize,
}

impl<'a> Params<'a> {
    /// The most parameters any pattern has.
    pub const MAX: usize = 2;

    pub fn as_slice(&self) -> &[&'a str] {
        &self.vals[..self.len]
    }

    fn push(&mut self, v: &'a str) -> Option<()> {
        *self.vals.get_mut(self.len)? = v;
        self.len += 1;
        Some(())
    }
}

impl Route {
    /// This route's index in [`ROUTES`] (its metrics slot); `ROUTE_COUNT`
    /// for a route outside the table (none is built elsewhere).
    pub fn slot(&'static self) -> usize {
        let at = (self as *const Route as usize).wrapping_sub(ROUTES.as_ptr() as usize);
        let i = at / std::mem::size_of::<Route>();
        match ROUTES.get(i) {
            Some(r) if std::ptr::eq(r, self) => i,
            _ => ROUTE_COUNT,
        }
    }
}

/// The outcome of routing one request.
#[derive(Debug)]
pub enum Match<'a> {
    Found {
        route: &'static Route,
        endpoint: &'static Endpoint,
        params: Params<'a>,
    },
    MethodNotAllowed {
        route: &'static Route,
    },
    NotFound,
}

/// The most segments any pattern has (`/v1/events/{event}/queue/{ticket}/stream`).
const MAX_SEGMENTS: usize = 7;

/// A path split at `/` once, into at most [`MAX_SEGMENTS`] pieces (`None`
/// when it has more: no pattern is that long).
fn segments(path: &str) -> Option<([&str; MAX_SEGMENTS], usize)> {
    let mut segs = [""; MAX_SEGMENTS];
    let mut n = 0;
    for s in path.split('/') {
        *segs.get_mut(n)? = s;
        n += 1;
    }
    Some((segs, n))
}

/// Every pattern, split once (the table is static, so this is built once).
fn split_patterns() -> &'static [([&'static str; MAX_SEGMENTS], usize)] {
    static SPLIT: std::sync::OnceLock<Vec<([&'static str; MAX_SEGMENTS], usize)>> =
        std::sync::OnceLock::new();
    SPLIT.get_or_init(|| {
        ROUTES
            .iter()
            .map(|r| {
                // The patterns are constants within the bound (a unit test
                // checks it); a longer one would match no path.
                segments(r.pattern).unwrap_or(([""; MAX_SEGMENTS], usize::MAX))
            })
            .collect()
    })
}

fn matches<'a>(pattern: &[&str], path: &[&'a str]) -> Option<Params<'a>> {
    if pattern.len() != path.len() {
        return None;
    }
    let mut params = Params::default();
    for (w, h) in pattern.iter().zip(path) {
        if w.starts_with('{') {
            if h.is_empty() {
                return None;
            }
            params.push(h)?;
        } else if w != h {
            return None;
        }
    }
    Some(params)
}

/// Finds the endpoint for `method` and `path`. `HEAD` is served wherever
/// `GET` is, by the `GET` endpoint (hyper sends the headers, never the body).
pub fn route<'a>(method: &Method, path: &'a str) -> Match<'a> {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    let Some((segs, n)) = segments(path) else {
        return Match::NotFound;
    };
    let path = &segs[..n];
    for (r, (pat, len)) in ROUTES.iter().zip(split_patterns()) {
        let Some(pat) = pat.get(..*len) else {
            continue;
        };
        if let Some(params) = matches(pat, path) {
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
                assert_eq!(params.as_slice(), ["e1", "t1"]);
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
    fn slots_are_table_positions() {
        for (i, r) in ROUTES.iter().enumerate() {
            assert_eq!(r.slot(), i, "{}", r.pattern);
        }
    }

    #[test]
    fn every_pattern_fits_the_bounds() {
        for r in ROUTES {
            let (_, n) = segments(r.pattern).expect("within MAX_SEGMENTS");
            let params = r.pattern.matches('{').count();
            assert!(params <= Params::MAX, "{}", r.pattern);
            assert!(n <= MAX_SEGMENTS);
        }
        // A path longer than any pattern is simply not found.
        assert!(matches!(
            route(&Method::GET, "/v1/events/e/queue/t/stream/x/y/z"),
            Match::NotFound
        ));
    }

    #[test]
    fn patterns_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for r in routes() {
            assert!(seen.insert((r.pattern, r.method)), "{r:?}");
        }
    }
}
