//! What the dispatcher hands the matched route to: the observers of routed
//! requests, assembled once when the app is built. The one place of the
//! request path where observability's cargo features (`metrics`, `otel`)
//! are tested, so that `routing::dispatch` has neither features nor calls
//! into observability: it publishes the [`MatchedRoute`] here once per
//! routed request ([`Observers::matched`]) and gives the response back
//! when the handler is done ([`Observation::finish`]).
//!
//! Written by hand, as plain functions over a struct fixed at build rather
//! than a list of trait objects or a tower layer around the dispatcher:
//!
//! - the metrics' per-route series stay resolved when the app is built
//!   (`RouteMetrics`, indexed by the route's [`RouteId`](ferrapi_core::extract::RouteId)),
//!   and their in-flight measure starts after the match and ends with the
//!   handler's response, as it did inside the dispatcher;
//! - a layer outside the dispatcher cannot read a request extension once
//!   the request is consumed, and carrying the route out on the response's
//!   extensions would cost a map and a box per request; these calls cost
//!   what the dispatcher's own calls cost before (with neither feature: one
//!   extension look-up, for the access log's slot);
//! - the served service type stays `routing::Dispatch`.
//!
//! Observers outside the dispatcher (the access log, an application's
//! layer) read the route from a [`MatchedRouteSlot`] they put in the
//! request.

use crate::extract::Request;
use crate::response::Response;
use ferrapi_core::extract::{MatchedRoute, MatchedRouteSlot};

/// The observers of an app's routed requests.
#[derive(Default)]
pub(crate) struct Observers {
    /// The HTTP metrics (`App::metrics`), series resolved per route.
    #[cfg(feature = "metrics")]
    metrics: Option<ferrapi_telemetry::metrics::RouteMetrics>,
}

/// One routed request being observed, finished with its response (a
/// zero-sized value without the `metrics` feature). Dropped unfinished (a
/// panic), the metrics count a 500.
pub(crate) struct Observation {
    #[cfg(feature = "metrics")]
    measure: Option<ferrapi_telemetry::metrics::InFlight>,
}

impl Observers {
    /// The observers of `routes` (the dispatcher's, numbered by id).
    pub(crate) fn new(
        routes: &[MatchedRoute],
        #[cfg(feature = "metrics")] metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
    ) -> Self {
        let _ = routes;
        Self {
            #[cfg(feature = "metrics")]
            metrics: metrics.map(|m| ferrapi_telemetry::metrics::RouteMetrics::new(m, routes)),
        }
    }

    /// `req` was matched to `route`, and its handler is about to be called:
    /// the metrics start measuring it, the access log's (or another
    /// layer's) [`MatchedRouteSlot`] is filled, and the exported server
    /// span (feature `otel`) is named by the route's template.
    #[inline]
    pub(crate) fn matched(&self, route: &MatchedRoute, req: &Request) -> Observation {
        #[cfg(feature = "metrics")]
        let measure = self.metrics.as_ref().map(|m| m.start(route, req.method()));
        MatchedRouteSlot::publish(req.extensions(), route);
        #[cfg(feature = "otel")]
        crate::telemetry::route_matched(
            req,
            route.template(),
            req.extensions()
                .get::<crate::middleware::ClientIp>()
                .map(|c| c.0),
        );
        Observation {
            #[cfg(feature = "metrics")]
            measure,
        }
    }
}

impl Observation {
    /// The handler answered `res` (before a `HEAD`'s body is stripped).
    #[inline]
    pub(crate) fn finish(self, res: &Response) {
        #[cfg(feature = "metrics")]
        if let Some(measure) = self.measure {
            measure.finish(
                res.status().as_u16(),
                http_body::Body::size_hint(res.body()).exact(),
            );
        }
        #[cfg(not(feature = "metrics"))]
        let _ = res;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrapi_core::extract::RouteId;
    use std::sync::Arc;

    fn route() -> MatchedRoute {
        MatchedRoute::new(Arc::from("/items/{id}"), http::Method::GET, RouteId::new(0))
    }

    #[test]
    fn without_observers_nothing_is_published() {
        let observers = Observers::default();
        let req = Request::new(axum::body::Body::empty());
        let seen = observers.matched(&route(), &req);
        assert!(req.extensions().is_empty());
        #[cfg(feature = "metrics")]
        assert!(seen.measure.is_none());
        seen.finish(&Response::new(axum::body::Body::empty()));
    }

    #[test]
    fn a_slot_in_the_request_is_filled() {
        let observers = Observers::default();
        let mut req = Request::new(axum::body::Body::empty());
        let slot = MatchedRouteSlot::default();
        req.extensions_mut().insert(slot.clone());
        observers.matched(&route(), &req);
        assert_eq!(slot.get(), Some(&route()));
    }

    #[cfg(feature = "metrics")]
    #[test]
    fn with_metrics_a_routed_request_is_measured() {
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let observers = Observers::new(&[route()], Some(metrics.clone()));
        let req = Request::new(axum::body::Body::empty());
        let seen = observers.matched(&route(), &req);
        assert!(metrics.render().contains("http_requests_in_flight 1\n"));
        let mut res = Response::new(axum::body::Body::from("four"));
        *res.status_mut() = http::StatusCode::CREATED;
        seen.finish(&res);
        let text = metrics.render();
        assert!(
            text.contains(
                r#"http_requests_total{method="GET",route="/items/{id}",status="201"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"http_response_size_bytes_sum{method="GET",route="/items/{id}"} 4"#)
        );
        assert!(text.contains("http_requests_in_flight 0\n"));
    }
}
