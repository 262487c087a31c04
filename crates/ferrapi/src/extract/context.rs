//! [`RequestContext`]: what an extractor knows besides the request.

use crate::app::AppShared;
use http::StatusCode;
use std::sync::Arc;

/// The route and application a request is being served by: extractors read
/// application state, limits and the route's declaration from it.
#[derive(Debug)]
pub struct RequestContext {
    pub(crate) app: Arc<AppShared>,
    pub(crate) path: Arc<str>,
    pub(crate) status: StatusCode,
    pub(crate) body_limit: usize,
    pub(crate) path_vars: Arc<[String]>,
    pub(crate) uses_dependencies: bool,
    pub(crate) buffers_body: bool,
    pub(crate) route_dependencies: Arc<[crate::routing::RouteDependency]>,
}

impl RequestContext {
    /// Application state registered with [`App::state`](crate::App::state).
    pub fn state<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.app.state.get::<T>()
    }
    /// The route's path template (`/api/v1/users/{user_id}`).
    pub fn route_path(&self) -> &str {
        &self.path
    }
    /// The route's declared success status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
    /// The largest request body this route accepts, in bytes.
    pub fn body_limit(&self) -> usize {
        self.body_limit
    }
    /// The route's path template variables, in order.
    pub fn path_variables(&self) -> &[String] {
        &self.path_vars
    }
}
