//! [`MatchedRoute`]: the route a request was dispatched to, as the
//! dispatcher publishes it to whoever observes requests (metrics, the
//! OpenTelemetry server span, the access log, a layer of the application)
//! and as a handler extracts it.
//!
//! Written by hand, not borrowed from axum's `MatchedPath`: the value also
//! carries the route's method and a dense [`RouteId`] (`0..n` over the
//! app's routes, fixed when the app is built), so that an observer resolves
//! its per-route data once, into a `Vec` it indexes per request, instead of
//! hashing the template on every request.
//!
//! How it travels, and what that costs per request:
//!
//! - to an extractor: from the route's [`RequestContext`], where the
//!   dispatcher put it when the app was built (nothing per request but the
//!   clone the handler asks for);
//! - to the observers the application installed (metrics, OpenTelemetry):
//!   handed by reference by the dispatcher, once, after the match;
//! - to a tower layer outside the dispatcher: through a [`MatchedRouteSlot`]
//!   the layer puts in the request extensions before calling inward, and
//!   which the dispatcher fills. A request without a slot costs one failed
//!   extension look-up and nothing else.

use super::{FromRequestParts, Rejection, RequestContext};
use crate::describe::DescribeInput;
use crate::error::Error;
use http::Method;
use http::request::Parts;
use std::sync::{Arc, OnceLock};

/// A route's number among the routes of its application: dense, from 0, in
/// the order the routes were given to the dispatcher. Stable for the life
/// of one built app (not across builds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteId(u32);

impl RouteId {
    /// The id `index` (the dispatcher numbers routes with it).
    pub fn new(index: u32) -> Self {
        Self(index)
    }

    /// The id as an index into a `Vec` of per-route data.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// The route a request was dispatched to: its path template, the method it
/// was declared for and its [`RouteId`].
///
/// A `GET` route also answers `HEAD`: such a request's `MatchedRoute` says
/// `GET` (the route's method), and the request's own method says `HEAD`.
///
/// As an extractor (as axum's `MatchedPath`):
///
/// ```
/// use ferrapi::prelude::*;
/// use ferrapi::routing::MatchedRoute;
///
/// #[get("/users/{user_id}")]
/// async fn read_user(route: MatchedRoute, Path(_id): Path<i64>) -> Text {
///     Text(format!("{} {}", route.method(), route.template())) // GET /users/{user_id}
/// }
///
/// let app = App::new().route(read_user);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedRoute {
    template: Arc<str>,
    method: Method,
    id: RouteId,
}

impl MatchedRoute {
    /// The route `id`, declared for `method` on `template`.
    pub fn new(template: Arc<str>, method: Method, id: RouteId) -> Self {
        Self {
            template,
            method,
            id,
        }
    }

    /// The path template (`/api/v1/users/{user_id}`).
    pub fn template(&self) -> &str {
        &self.template
    }

    /// The path template, shared.
    pub fn template_arc(&self) -> &Arc<str> {
        &self.template
    }

    /// The method the route was declared for.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The route's number (see [`RouteId`]).
    pub fn id(&self) -> RouteId {
        self.id
    }
}

/// A handler asked for its [`MatchedRoute`] outside the dispatcher (a
/// [`RequestContext`] built by hand, without a route): answered 500.
#[derive(Debug, thiserror::Error)]
#[error("MatchedRoute was requested but the request was not dispatched to a route")]
pub struct NoMatchedRoute;

impl FromRequestParts for MatchedRoute {
    async fn from_request_parts(
        _parts: &mut Parts,
        cx: &RequestContext,
    ) -> Result<Self, Rejection> {
        match cx.matched_route() {
            Some(route) => Ok(route.clone()),
            None => Err(Rejection::Error(Error::new(NoMatchedRoute))),
        }
    }
}

/// Nothing in the document: the route is the operation itself.
impl DescribeInput for MatchedRoute {}

/// Where a layer outside the dispatcher is told the [`MatchedRoute`]: put
/// one (a clone) in the request's extensions before calling inward, read it
/// once the response is back. Empty when no route matched (a 404, the
/// OpenAPI document, an answer given by a layer further in, such as a 429).
///
/// ```
/// use ferrapi::axum::response::Response;
/// use ferrapi::middleware::{Next, from_fn};
/// use ferrapi::prelude::*;
/// use ferrapi::routing::MatchedRouteSlot;
///
/// async fn log_route(mut req: ferrapi::extract::Request, next: Next) -> Response {
///     let slot = MatchedRouteSlot::default();
///     req.extensions_mut().insert(slot.clone());
///     let res = next.run(req).await;
///     if let Some(route) = slot.get() {
///         tracing::info!(route = route.template(), status = res.status().as_u16());
///     }
///     res
/// }
///
/// let app = App::new().layer(from_fn(log_route));
/// ```
#[derive(Debug, Clone, Default)]
pub struct MatchedRouteSlot(Arc<OnceLock<MatchedRoute>>);

impl MatchedRouteSlot {
    /// The route, once the dispatcher matched one.
    pub fn get(&self) -> Option<&MatchedRoute> {
        self.0.get()
    }

    /// Fills the slot of `extensions`, if a layer put one there (the first
    /// route set stays).
    pub fn publish(extensions: &http::Extensions, route: &MatchedRoute) {
        if let Some(slot) = extensions.get::<MatchedRouteSlot>() {
            let _ = slot.0.set(route.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_filled_once_and_only_when_present() {
        let route = MatchedRoute::new(Arc::from("/a/{id}"), Method::GET, RouteId::new(3));
        let mut extensions = http::Extensions::new();
        // No slot: nothing is inserted.
        MatchedRouteSlot::publish(&extensions, &route);
        assert!(extensions.is_empty());
        let slot = MatchedRouteSlot::default();
        extensions.insert(slot.clone());
        assert!(slot.get().is_none());
        MatchedRouteSlot::publish(&extensions, &route);
        let other = MatchedRoute::new(Arc::from("/b"), Method::POST, RouteId::new(4));
        MatchedRouteSlot::publish(&extensions, &other);
        assert_eq!(slot.get(), Some(&route));
        assert_eq!(slot.get().map(|r| r.id().index()), Some(3));
        assert_eq!(slot.get().map(MatchedRoute::template), Some("/a/{id}"));
    }
}
