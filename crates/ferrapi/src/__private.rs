//! What the route attribute macros expand to. Not public API.

pub use crate::extract::__via::ViaRequest;
pub use crate::extract::{Request, RequestContext};
pub use crate::routing::Extraction;

use crate::extract::{FromRequest, FromRequestParts};

/// Extracts a handler's non-last parameter. Called as
/// `<T as ExtractPart>::part(&mut ex)`, so that a type that is no extractor
/// (or whose model lacks a trait) is one compile error, named once: the
/// failed bound makes the call's type an error, and its `.await` adds none.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a handler parameter in this position",
    label = "not an extractor of the request head (`FromRequestParts`)",
    note = "only the last parameter may read the body (`Json<T>`, `Form<T>`, `Bytes`, `String`, `Request`)",
    note = "parameters are extractors such as `Path<T>`, `Query<T>`, `Header<T>`, `Cookie<T>`, `State<T>`, or types implementing `ferrapi::FromRequestParts`"
)]
pub trait ExtractPart: Sized {
    /// [`Extraction::part`].
    fn part(ex: &mut Extraction) -> impl Future<Output = Result<Option<Self>, Response>> + Send;
}

impl<T: FromRequestParts> ExtractPart for T {
    fn part(ex: &mut Extraction) -> impl Future<Output = Result<Option<Self>, Response>> + Send {
        ex.part::<T>()
    }
}

/// Extracts a handler's last parameter (see [`ExtractPart`]).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a handler parameter: it is not an extractor",
    label = "this parameter's type implements neither `FromRequestParts` nor `FromRequest`",
    note = "handler parameters must be extractors such as `Path<T>`, `Query<T>`, `Header<T>`, `Json<T>`, `State<T>`, or a type implementing `ferrapi::FromRequest`"
)]
pub trait ExtractLast<M>: Sized {
    /// [`Extraction::last`].
    fn last(ex: &mut Extraction) -> impl Future<Output = Result<Option<Self>, Response>> + Send;
}

impl<M, T: FromRequest<M>> ExtractLast<M> for T {
    fn last(ex: &mut Extraction) -> impl Future<Output = Result<Option<Self>, Response>> + Send {
        ex.last::<M, T>()
    }
}
pub use futures_util::future::BoxFuture;
pub use std::sync::Arc;

use crate::openapi::OperationBuilder;
use crate::response::Responder;
use crate::response::Response;
use crate::routing::Route;
use http::{Method, StatusCode};

/// Builds a route from macro-generated glue.
#[track_caller]
pub fn route<F>(
    method: Method,
    path: &str,
    name: &str,
    handler: F,
    describe: fn(&mut OperationBuilder<'_>, StatusCode),
) -> Route
where
    F: Fn(Request, Arc<RequestContext>) -> BoxFuture<'static, Response> + Send + Sync + 'static,
{
    Route::from_parts(
        method,
        path.to_owned(),
        name.to_owned(),
        Arc::new(handler),
        describe,
        std::panic::Location::caller(),
    )
}

/// Describes a handler's return type (bound on `Responder`, not only
/// `DescribeOutput`, so that a wrong return type gets one clear error).
pub fn describe_output<R: Responder>(op: &mut OperationBuilder<'_>, status: StatusCode) {
    R::describe(op, status);
}

/// A handler's `Result<T, E>` return type, for routes declaring
/// `errors(...)`: `T` is described as usual, `E` by the named variants.
#[diagnostic::on_unimplemented(
    message = "`errors(...)` needs a handler returning `Result<T, E>`, not `{Self}`",
    note = "`errors(NotFound, …)` names variants of the `#[derive(ApiError)]` type `E`"
)]
pub trait ReturnsErrors {
    /// `E`.
    type Error: ResponseError;
    /// Describes `T`.
    fn describe_ok(op: &mut OperationBuilder<'_>, status: StatusCode);
}

impl<T: crate::openapi::DescribeOutput, E: ResponseError> ReturnsErrors for Result<T, E> {
    type Error = E;
    fn describe_ok(op: &mut OperationBuilder<'_>, status: StatusCode) {
        T::describe(op, status);
    }
}

/// Describes a handler's `Result<T, E>`, documenting only the named
/// variants of `E`.
pub fn describe_output_with_errors<R: Responder + ReturnsErrors>(
    op: &mut OperationBuilder<'_>,
    status: StatusCode,
    variants: &[&str],
) {
    R::describe_ok(op, status);
    <R::Error as ResponseError>::describe_only(op, variants);
}

/// Answers 500 (never reached: see `routing::handler::internal_error`).
pub fn internal_error() -> Response {
    crate::routing::internal_error()
}

/// Asserts that a handler's future can move between threads; a handler that
/// holds a non-`Send` value across an `.await` fails here, at its call.
pub fn assert_send<T: Send>(future: T) -> T {
    future
}

/// A variant of an `ApiError` without a status: logged, answered 500.
pub fn internal_error_logged(error: &dyn std::fmt::Display) -> crate::Error {
    tracing::error!(error = %error, "handler error");
    ferrapi_core::HttpError::internal().into()
}

/// An `ApiError` variant with a status: answered with its message as detail.
pub fn http_error(status: u16, detail: String) -> crate::Error {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    ferrapi_core::HttpError::new(status, detail).into()
}

pub use crate::response::ResponseError;

/// What `#[derive(Validate)]` and `#[derive(JsonSchema)]` expand to.
pub mod model {
    pub use ferrapi_core::validation::{
        FieldRules, Rule, Validate, constrain, nested, push, rules,
    };
    pub use garde::{Path, Report};
    pub use regex::Regex;
    pub use serde::Deserialize;
    pub use serde_json::Value;
    use std::marker::PhantomData;

    /// A pattern checked by the derive macro at compile time.
    pub fn regex(pattern: &str) -> Regex {
        match Regex::new(pattern) {
            Ok(re) => re,
            // The macro compiled the pattern with the same parser.
            Err(e) => panic!("pattern {pattern:?} does not compile: {e}"),
        }
    }

    /// A rule's bound as JSON, for the schema.
    pub fn to_json<T: serde::Serialize + ?Sized>(v: &T) -> Value {
        serde_json::to_value(v).unwrap_or(Value::Null)
    }

    /// A field's value, checked with its type's `Validate` when it has one
    /// (autoref specialization: [`DiveValidate`] before [`DiveNone`]).
    pub struct Dive<'a, T: ?Sized>(pub &'a T);

    /// A field's type, for [`DiveFields`].
    pub struct DiveType<T>(PhantomData<T>);

    impl<T> DiveType<T> {
        /// The marker.
        pub fn new() -> Self {
            DiveType(PhantomData)
        }
    }

    impl<T> Default for DiveType<T> {
        fn default() -> Self {
            Self::new()
        }
    }

    /// A field's type, for [`ParseOwned`].
    pub struct Parse<T>(PhantomData<T>);

    impl<T> Parse<T> {
        /// The marker.
        pub fn new() -> Self {
            Parse(PhantomData)
        }
    }

    impl<T> Default for Parse<T> {
        fn default() -> Self {
            Self::new()
        }
    }

    /// Checks a field whose type implements `Validate`.
    pub trait DiveValidate {
        /// Checks the value.
        fn dive(&self, parent: &mut dyn FnMut() -> Path, report: &mut Report);
    }

    impl<T: Validate + ?Sized> DiveValidate for &Dive<'_, T> {
        fn dive(&self, parent: &mut dyn FnMut() -> Path, report: &mut Report) {
            self.0.validate_into(parent, report);
        }
    }

    /// Checks the fields of a value that did not parse, by its type.
    pub trait DiveFields {
        /// Checks the value's fields.
        fn dive_fields(&self, value: &Value, parent: &mut dyn FnMut() -> Path, report: &mut Report);
    }

    impl<T: Validate> DiveFields for &DiveType<T> {
        fn dive_fields(
            &self,
            value: &Value,
            parent: &mut dyn FnMut() -> Path,
            report: &mut Report,
        ) {
            T::validate_fields(value, parent, report);
        }
    }

    /// Parses a field on its own when its type can be.
    pub trait ParseOwned<T> {
        /// The field, if it parses.
        fn parse(&self, value: &Value) -> Option<T>;
    }

    impl<T: serde::de::DeserializeOwned> ParseOwned<T> for &Parse<T> {
        fn parse(&self, value: &Value) -> Option<T> {
            T::deserialize(value).ok()
        }
    }

    /// The fallbacks: a type without `Validate` (or that cannot be parsed
    /// alone) has nothing to check.
    pub trait DiveNone {
        /// Nothing to check.
        fn dive(&self, _: &mut dyn FnMut() -> Path, _: &mut Report) {}
        /// Nothing to check.
        fn dive_fields(&self, _: &Value, _: &mut dyn FnMut() -> Path, _: &mut Report) {}
    }

    /// The fallback of [`ParseOwned`]: a field type that does not parse
    /// alone (it borrows) is not checked on its own.
    pub trait ParseNone<T> {
        /// Does not parse alone.
        fn parse(&self, _: &Value) -> Option<T> {
            None
        }
    }

    impl<T: ?Sized> DiveNone for Dive<'_, T> {}
    impl<T> DiveNone for DiveType<T> {}
    impl<T> ParseNone<T> for Parse<T> {}
}
