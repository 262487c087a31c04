//! Extractors: the typed inputs a handler asks for in its signature.
//!
//! Each extractor implements one trait for behaviour ([`FromRequestParts`] or
//! [`FromRequest`]) and one that describes it for OpenAPI
//! (`crate::openapi::DescribeInput`).
//!
//! Unlike axum, a failing extractor does not stop the request: every
//! extractor of the handler runs, their validation errors are gathered
//! ([`Rejection::Invalid`]) and answered once as a 422 in FastAPI's shape.
//! Other failures ([`Rejection::Error`], e.g. 401 or 413) answer at once.

mod body;
mod context;
mod cookie;
mod depends;
mod parts;
mod route;
mod state;

pub use body::{
    Bytes, RawBody, body_failure, find_in, read_body, read_body_for, timed_out, too_large,
};
pub use context::{AppContext, OverrideFn, RequestContext, RoutePlan};
pub use cookie::{InvalidHeader, SameSite, SetCookie};
pub use depends::{AppState, Cleanup, Dependency, Depends, Outcome, RouteDependency, defer};
#[doc(hidden)]
pub use depends::{CleanupFn, RequestScope, run_cleanups};
#[doc(hidden)]
pub use parts::PendingParts;
pub use parts::ResponseParts;
pub(crate) use parts::header_pair;
pub use route::{MatchedRoute, MatchedRouteSlot, NoMatchedRoute, RouteId};
pub use state::{MissingState, State};

use crate::describe::DescribeInput;
use crate::error::Error;
use crate::validation::ErrorItem;
use http::request::Parts;
use std::future::Future;

/// The request type handlers and extractors see.
pub type Request = http::Request<axum_core::body::Body>;

/// Why an extractor did not produce a value.
#[derive(Debug)]
pub enum Rejection {
    /// Validation errors: gathered with those of the other extractors into one 422.
    Invalid(Vec<ErrorItem>),
    /// Any other failure: answered at once (through the exception handlers).
    Error(Error),
}

impl<E: Into<Error>> From<E> for Rejection {
    fn from(e: E) -> Self {
        Rejection::Error(e.into())
    }
}

/// An extractor that reads the request head (method, URI, headers, path
/// parameters, extensions) but not the body. A handler may take any number.
///
/// ```
/// use ferrapi::extract::{FromRequestParts, Rejection, RequestContext};
/// use ferrapi::openapi::DescribeInput;
/// use ferrapi::HttpError;
/// use http::request::Parts;
///
/// /// The caller's API key, required.
/// struct ApiKey(String);
///
/// impl FromRequestParts for ApiKey {
///     async fn from_request_parts(parts: &mut Parts, _cx: &RequestContext) -> Result<Self, Rejection> {
///         match parts.headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
///             Some(key) => Ok(ApiKey(key.to_owned())),
///             None => Err(HttpError::unauthorized("Not authenticated").into()),
///         }
///     }
/// }
/// impl DescribeInput for ApiKey {}
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a handler parameter in this position",
    label = "not an extractor of the request head (`FromRequestParts`)",
    note = "only the last parameter may read the body (`Json<T>`, `Form<T>`, `Bytes`, `String`, `Request`)",
    note = "parameters are extractors such as `Path<T>`, `Query<T>`, `Header<T>`, `Cookie<T>`, `State<T>`, or types implementing `ferrapi::FromRequestParts`"
)]
pub trait FromRequestParts: DescribeInput + Sized + Send {
    /// Extracts the value from the request head.
    fn from_request_parts(
        parts: &mut Parts,
        cx: &RequestContext,
    ) -> impl Future<Output = Result<Self, Rejection>> + Send;
}

mod private {
    #[derive(Debug, Clone, Copy)]
    pub enum ViaParts {}
    /// Extracts from the whole request (the body included).
    #[derive(Debug, Clone, Copy)]
    pub enum ViaRequest {}
}

/// For the route macros: the marker of extractors that read the body.
#[doc(hidden)]
pub mod __via {
    pub use super::private::ViaRequest;
}

/// An extractor that consumes the whole request, body included. Only a
/// handler's last parameter may be one. Every [`FromRequestParts`] is also a
/// `FromRequest` (the `M` parameter tells the two implementations apart).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a handler parameter: it is not an extractor",
    label = "this parameter's type implements neither `FromRequestParts` nor `FromRequest`",
    note = "handler parameters must be extractors such as `Path<T>`, `Query<T>`, `Header<T>`, `Json<T>`, `State<T>`, or a type implementing `ferrapi::FromRequest`"
)]
pub trait FromRequest<M = private::ViaRequest>: DescribeInput + Sized + Send {
    /// Extracts the value from the request.
    fn from_request(
        req: Request,
        cx: &RequestContext,
    ) -> impl Future<Output = Result<Self, Rejection>> + Send;
}

impl<T: FromRequestParts> FromRequest<private::ViaParts> for T {
    async fn from_request(req: Request, cx: &RequestContext) -> Result<Self, Rejection> {
        let (mut parts, _) = req.into_parts();
        T::from_request_parts(&mut parts, cx).await
    }
}

/// The whole request, for handlers that want raw access.
impl FromRequest for Request {
    async fn from_request(req: Request, _cx: &RequestContext) -> Result<Self, Rejection> {
        Ok(req)
    }
}
impl DescribeInput for Request {}

macro_rules! parts_extractor {
    ($($(#[$doc:meta])* $ty:ty => |$parts:ident| $e:expr;)*) => {$(
        $(#[$doc])*
        impl FromRequestParts for $ty {
            async fn from_request_parts(
                $parts: &mut Parts,
                _cx: &RequestContext,
            ) -> Result<Self, Rejection> {
                Ok($e)
            }
        }
        impl DescribeInput for $ty {}
    )*};
}

parts_extractor! {
    /// The request method.
    http::Method => |parts| parts.method.clone();
    /// The request URI.
    http::Uri => |parts| parts.uri.clone();
    /// All request headers.
    http::HeaderMap => |parts| parts.headers.clone();
    /// The HTTP version.
    http::Version => |parts| parts.version;
}
