//! Routes and routers: FastAPI's path operations and `APIRouter`.
//!
//! A [`Route`] is declared once — method, path template, handler, status,
//! tags, summary and description — either with a route attribute
//! (`#[get("/users/{user_id}")]`) or with [`Route::get`] and friends. The
//! same declaration feeds the router and the OpenAPI document.
//!
//! A [`Router`] groups routes under a path prefix and tags, and routers nest
//! with [`Router::include`] as FastAPI's `include_router`. Mistakes (a path
//! variable the handler does not take, two routes that clash, a malformed
//! template) are found when the [`App`](crate::App) is built and reported all
//! together, each naming its route.

mod dispatch;
mod handler;
mod route;
pub(crate) mod template;

pub(crate) use dispatch::{
    Dispatch, DispatchBuilder, DispatchFuture, PathParams, panic_response,
    supported as supported_method,
};
pub use handler::Extraction;
pub use handler::Handler;
pub(crate) use handler::internal_error;
pub use route::Route;
pub(crate) use route::push_new;

pub use ferrapi_core::extract::RouteDependency;
/// The route a request was dispatched to, and the slot through which a
/// layer outside the dispatcher learns it.
pub use ferrapi_core::extract::{MatchedRoute, MatchedRouteSlot, NoMatchedRoute, RouteId};

/// A value that declares a route: a [`Route`], or the type a route attribute
/// macro generates for a handler function.
pub trait IntoRoute {
    /// The route declaration.
    fn into_route(self) -> Route;
}

impl IntoRoute for Route {
    fn into_route(self) -> Route {
        self
    }
}

/// A function returning a route: what the route attribute macros generate
/// (`#[get("/")] async fn root()` becomes `fn root() -> Route`).
impl<F: FnOnce() -> Route> IntoRoute for F {
    fn into_route(self) -> Route {
        self()
    }
}

/// A group of routes sharing a path prefix and tags (FastAPI's `APIRouter`).
///
/// ```
/// use ferrapi::prelude::*;
///
/// #[get("/{user_id}")]
/// async fn read_user(Path(user_id): Path<i64>) -> Text {
///     Text(user_id.to_string())
/// }
///
/// let users = Router::new().prefix("/users").tags(["users"]).route(read_user);
/// let v1 = Router::new().prefix("/api/v1").include(users);
/// let app = App::new().include(v1); // GET /api/v1/users/{user_id}, tagged "users"
/// ```
#[derive(Debug, Default)]
pub struct Router {
    prefix: String,
    tags: Vec<String>,
    deprecated: bool,
    dependencies: Vec<RouteDependency>,
    routes: Vec<Route>,
}

impl Router {
    /// An empty router with no prefix.
    pub fn new() -> Self {
        Self::default()
    }

    /// The path prefix of every route in this router (`/api/v1`): starts
    /// with `/`, does not end with one.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Tags added (before the routes' own tags) to every route.
    #[must_use]
    pub fn tags<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tags.extend(tags.into_iter().map(Into::into));
        self
    }

    /// Marks every route of this router deprecated in the document.
    #[must_use]
    pub fn deprecated(mut self, deprecated: bool) -> Self {
        self.deprecated = deprecated;
        self
    }

    /// Runs dependency `T` for every route of this router (before the
    /// route's parameters), as FastAPI's `APIRouter(dependencies=[…])`.
    #[must_use]
    pub fn dependency<T: crate::extract::Dependency>(mut self) -> Self {
        self.dependencies.push(RouteDependency::of::<T>());
        self
    }

    /// Adds a route.
    #[must_use]
    pub fn route(mut self, route: impl IntoRoute) -> Self {
        self.routes.push(route.into_route());
        self
    }

    /// Nests another router: its routes get this router's prefix and tags.
    #[must_use]
    pub fn include(mut self, router: Router) -> Self {
        self.routes.extend(router.into_routes());
        self
    }

    /// The routes with this router's prefix and tags applied.
    pub(crate) fn into_routes(self) -> Vec<Route> {
        let Router {
            prefix,
            tags,
            deprecated,
            dependencies,
            routes,
        } = self;
        routes
            .into_iter()
            .map(|mut r| {
                r.prefixes.insert(0, prefix.clone());
                let mut deps = dependencies.clone();
                deps.extend(std::mem::take(&mut r.dependencies));
                r.dependencies = deps;
                let mut all = tags.clone();
                all.extend(std::mem::take(&mut r.tags));
                r.tags = all;
                r.deprecated |= deprecated;
                r
            })
            .collect()
    }
}
