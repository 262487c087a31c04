//! Extractors: the typed inputs a handler asks for in its signature.
//!
//! Each extractor implements one trait for behaviour ([`FromRequestParts`] or
//! [`FromRequest`]) and one that describes it for OpenAPI
//! ([`crate::openapi::DescribeInput`]).
//!
//! Unlike axum, a failing extractor does not stop the request: every
//! extractor of the handler runs, their validation errors are gathered
//! ([`Rejection::Invalid`]) and answered once as a 422 in FastAPI's shape.
//! Other failures ([`Rejection::Error`], e.g. 401 or 413) answer at once.

mod background;
mod body;
mod cookie;
mod header;
mod json;
#[cfg(feature = "multipart")]
pub mod multipart;
mod path;
mod query;
mod session;

pub(crate) use background::with_background_queue;
pub use background::{BackgroundTasks, TaskOutput};
pub use body::Form;
pub use cookie::Cookie;
pub(crate) use cookie::cookie_pairs;
#[doc(hidden)]
pub use ferrapi_core::extract::__via;
pub use ferrapi_core::extract::{
    AppContext, AppState, Bytes, Cleanup, Dependency, Depends, FromRequest, FromRequestParts,
    Outcome, OverrideFn, RawBody, Rejection, Request, RequestContext, RoutePlan, State, defer,
};
pub(crate) use ferrapi_core::extract::{RequestScope, read_body_for, run_cleanups};
pub use header::Header;
pub use json::Json;
#[cfg(feature = "multipart")]
pub use multipart::{AnyParts, Field, Multipart, MultipartError, MultipartForm, Part, PartKind};
pub use path::Path;
pub use query::Query;
pub(crate) use session::Sessions;
pub use session::{Session, SessionDependency, SessionStore};
