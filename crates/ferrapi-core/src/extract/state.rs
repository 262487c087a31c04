//! [`State`]: application state registered on the [`App`](crate::App).

use super::{FromRequestParts, Rejection, RequestContext};
use crate::describe::DescribeInput;
use crate::error::Error;
use http::request::Parts;

/// A clone of the application state of type `T`, registered with
/// `App::state`. Wrap large or shared state in `Arc`
/// (pools and clients usually are already).
///
/// ```
/// use ferrapi::prelude::*;
///
/// #[derive(Clone)]
/// struct Config { greeting: String }
///
/// #[get("/hello")]
/// async fn hello(State(config): State<Config>) -> Text {
///     Text(config.greeting)
/// }
///
/// let app = App::new().state(Config { greeting: "hi".into() }).route(hello);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct State<T>(pub T);

/// A handler asked for state that was never registered: a programming
/// error, answered 500 and logged. `App::build` reports
/// it first (`RouteErrorKind::MissingState`), so a
/// request meets it only through state read outside `State<T>`'s own
/// description (a dependency override's provider).
#[derive(Debug, thiserror::Error)]
#[error("State<{0}> was requested but App::state was never given a value of that type")]
pub struct MissingState(pub &'static str);

impl<T: Clone + Send + Sync + 'static> FromRequestParts for State<T> {
    async fn from_request_parts(
        _parts: &mut Parts,
        cx: &RequestContext,
    ) -> Result<Self, Rejection> {
        match cx.state::<T>() {
            Some(value) => Ok(State(value.clone())),
            None => Err(Rejection::Error(Error::new(MissingState(
                std::any::type_name::<T>(),
            )))),
        }
    }
}

// Recorded for the build-time check: a route reading state no `App::state`
// gave fails `App::build` (the 500 above is then only reachable through an
// override that reads state itself).
impl<T: 'static> DescribeInput for State<T> {
    fn describe(op: &mut crate::describe::OperationBuilder<'_>) {
        op.require_state::<T>();
    }
}
