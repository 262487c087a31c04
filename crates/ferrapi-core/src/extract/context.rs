//! [`RequestContext`]: what an extractor knows besides the request — the
//! application behind it ([`AppContext`], a trait object, so that these
//! contracts do not depend on the application type) and the route it
//! matched ([`RoutePlan`]).

use super::route::MatchedRoute;
use super::{Rejection, RouteDependency};
use crate::HttpError;
use crate::body::Response;
use crate::error::Error;
use http::StatusCode;
use http::request::Parts;
use std::any::{Any, TypeId};
use std::fmt;
use std::sync::{Arc, OnceLock};

/// A replacement provider of a dependency, installed by the application's
/// `override_dependency` (tests).
pub type OverrideFn = Arc<
    dyn for<'a> Fn(
            &'a mut Parts,
            &'a RequestContext,
        )
            -> futures_util::future::BoxFuture<'a, Result<Box<dyn Any + Send>, Rejection>>
        + Send
        + Sync,
>;

/// What the application serving a request offers the extractors: its
/// state, its dependency overrides, its error rendering. The facade's
/// application implements it; an extractor reaches it through
/// [`RequestContext`].
pub trait AppContext: Send + Sync + fmt::Debug + 'static {
    /// The state value of type `id` (registered with `App::state`).
    fn state(&self, id: TypeId) -> Option<&(dyn Any + Send + Sync)>;
    /// Answers an error: the application's exception handlers, else the
    /// default answer.
    fn render_error(&self, e: Error) -> Response;
    /// Whether any dependency override is installed (none in production:
    /// then no lookup is made).
    fn has_overrides(&self) -> bool;
    /// The override of the dependency `id`, if one is installed.
    fn dependency_override(&self, id: TypeId) -> Option<&OverrideFn>;
    /// An application-wide value the framework keeps for an extractor
    /// (the session stores), by type.
    fn extension(&self, id: TypeId) -> Option<&(dyn Any + Send + Sync)>;
    /// The answer to a body that could not be read because a layer of the
    /// application refused it (a server read timeout, a refused compressed
    /// body): `None` when the failure is not one of those.
    fn body_failure(&self, e: &(dyn std::error::Error + 'static)) -> Option<HttpError>;
}

/// What the router decided about a route when the application was built,
/// read by the dispatcher on every request: its path template, declared
/// status, body limit, path variables, and how its handler runs.
#[derive(Debug, Clone)]
pub struct RoutePlan {
    /// The path template (`/api/v1/users/{user_id}`).
    pub path: Arc<str>,
    /// The declared success status.
    pub status: StatusCode,
    /// The largest body the route accepts, in bytes.
    pub body_limit: usize,
    /// The template's variables, in order.
    pub path_vars: Arc<[String]>,
    /// Whether a parameter or a route dependency uses the request's
    /// dependency scope (then one is set up before the extractors run).
    pub uses_dependencies: bool,
    /// Whether the body is read before the other extractors run.
    pub buffers_body: bool,
    /// The dependencies run for every request of the route (declared on
    /// the route, its routers or the application).
    pub dependencies: Arc<[RouteDependency]>,
}

/// The route and application a request is being served by: extractors read
/// application state, limits and the route's declaration from it.
pub struct RequestContext {
    app: Arc<dyn AppContext>,
    plan: RoutePlan,
    /// Set once by the dispatcher when the app is built (read by the
    /// [`MatchedRoute`] extractor).
    route: OnceLock<MatchedRoute>,
}

impl fmt::Debug for RequestContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestContext")
            .field("app", &self.app)
            .field("plan", &self.plan)
            .field("route", &self.route.get())
            .finish()
    }
}

impl RequestContext {
    /// The context of a route of `app`.
    pub fn new(app: Arc<dyn AppContext>, plan: RoutePlan) -> Self {
        Self {
            app,
            plan,
            route: OnceLock::new(),
        }
    }
    /// The route this context serves, as the dispatcher numbered it (set
    /// when the app is built; `None` for a context made by hand).
    pub fn matched_route(&self) -> Option<&MatchedRoute> {
        self.route.get()
    }
    /// Records the route this context serves (the dispatcher does, once;
    /// a later call is ignored).
    #[doc(hidden)]
    pub fn set_matched_route(&self, route: MatchedRoute) {
        let _ = self.route.set(route);
    }
    /// Application state registered with `App::state`.
    pub fn state<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.app.state(TypeId::of::<T>())?.downcast_ref::<T>()
    }
    /// The route's path template (`/api/v1/users/{user_id}`).
    pub fn route_path(&self) -> &str {
        &self.plan.path
    }
    /// The route's declared success status.
    pub fn status(&self) -> StatusCode {
        self.plan.status
    }
    /// The largest request body this route accepts, in bytes.
    pub fn body_limit(&self) -> usize {
        self.plan.body_limit
    }
    /// The route's path template variables, in order.
    pub fn path_variables(&self) -> &[String] {
        &self.plan.path_vars
    }
    /// The route's plan.
    pub fn plan(&self) -> &RoutePlan {
        &self.plan
    }
    /// The application serving the request.
    pub fn app(&self) -> &dyn AppContext {
        &*self.app
    }
    /// Answers `e` as the application does (its exception handlers first).
    pub fn render_error(&self, e: Error) -> Response {
        self.app.render_error(e)
    }
    /// The application-wide value of type `T` kept for an extractor.
    pub fn extension<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.app.extension(TypeId::of::<T>())?.downcast_ref::<T>()
    }
}
