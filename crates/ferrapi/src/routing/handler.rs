//! Handlers: running every extractor, gathering their errors, calling the
//! function, and turning its result into a response.
//!
//! [`Extraction`] is the one place that runs extractors; both the generic
//! [`Handler`] implementations (for `Route::get(path, f)`) and the code the
//! route attribute macros generate call it, so both behave alike.

use crate::extract::{
    FromRequest, FromRequestParts, Outcome, Rejection, Request, RequestContext, RequestScope,
    run_cleanups,
};
use crate::openapi::DescribeInput;
use crate::openapi::OperationBuilder;
use crate::response::{Responder, Response};
use ferrapi_core::validation::{ErrorItem, ValidationErrors};
use futures_util::future::BoxFuture;
use http::StatusCode;
use http::request::Parts;
use std::future::Future;
use std::sync::Arc;

/// A handler with its types erased: what the router calls per request.
pub(crate) type BoxedHandler =
    Arc<dyn Fn(Request, Arc<RequestContext>) -> BoxFuture<'static, Response> + Send + Sync>;

/// The extraction of one request's handler arguments.
///
/// Runs each extractor in parameter order. Validation errors are gathered
/// (every extractor still runs); any other rejection answers at once.
/// [`finish`](Extraction::finish) answers the gathered errors as one 422.
pub struct Extraction {
    parts: Parts,
    body: Option<axum::body::Body>,
    errors: Vec<ErrorItem>,
    cx: Arc<RequestContext>,
    /// The dependency scope, when the route uses dependencies; `None` once
    /// its cleanups have run.
    scope: Option<Arc<RequestScope>>,
}

impl std::fmt::Debug for Extraction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extraction")
            .field("errors", &self.errors)
            .finish_non_exhaustive()
    }
}

// The `Err` of these results is the response to send, moved once on the way
// out: boxing it would add an allocation to every rejected request for nothing.
#[allow(clippy::result_large_err)]
impl Extraction {
    /// Starts extracting from `req` for the route described by `cx`.
    pub fn new(req: Request, cx: Arc<RequestContext>) -> Self {
        let (mut parts, body) = req.into_parts();
        let scope = cx
            .plan()
            .uses_dependencies
            .then(|| RequestScope::of(&mut parts));
        Self {
            parts,
            body: Some(body),
            errors: Vec::new(),
            cx,
            scope,
        }
    }

    /// Runs the route's own dependencies (declared on its routers or the
    /// app, not taken as parameters), before any parameter is extracted.
    ///
    /// A body the handler buffers anyway (JSON, form, bytes) is read first,
    /// as FastAPI does: nothing the dependencies acquire (a pooled
    /// connection, a transaction) is held while a slow client uploads, and
    /// an oversized body is refused before any work is done.
    pub async fn begin(&mut self) -> Result<(), Response> {
        let cx = self.cx.clone();
        if cx.plan().buffers_body
            && let Some(body) = self.body.take()
        {
            let req = Request::from_parts(Request::default().into_parts().0, body);
            match crate::extract::read_body_for(req, &self.parts, &cx).await {
                Ok(bytes) => self.body = Some(axum::body::Body::from(bytes)),
                Err(r) => {
                    self.body = Some(axum::body::Body::empty());
                    self.reject(r)?;
                }
            }
        }
        for dependency in cx.plan().dependencies.iter() {
            if let Err(r) = dependency.resolve(&mut self.parts, &cx).await {
                self.reject(r)?;
            }
        }
        Ok(())
    }

    /// Answers `res` (an early failure), after the cleanups of the
    /// dependencies resolved so far ran with [`Outcome::Error`].
    pub async fn fail(mut self, res: Response) -> Response {
        if let Some(scope) = self.scope.take() {
            run_cleanups(scope.take_cleanups(), Outcome::Error).await;
        }
        res
    }

    fn reject(&mut self, rejection: Rejection) -> Result<(), Response> {
        match rejection {
            Rejection::Invalid(errors) => {
                self.errors.extend(errors);
                Ok(())
            }
            Rejection::Error(e) => Err(self.cx.render_error(e)),
        }
    }

    /// Runs a request-head extractor. `Ok(None)`: it failed validation (the
    /// errors are kept for [`finish`](Self::finish)); `Err`: answer this now.
    pub async fn part<T: FromRequestParts>(&mut self) -> Result<Option<T>, Response> {
        match T::from_request_parts(&mut self.parts, &self.cx).await {
            Ok(v) => Ok(Some(v)),
            Err(r) => self.reject(r).map(|()| None),
        }
    }

    /// Runs the last extractor, which may consume the body.
    pub async fn last<M, T: FromRequest<M>>(&mut self) -> Result<Option<T>, Response> {
        let parts = std::mem::replace(&mut self.parts, Request::default().into_parts().0);
        let body = self.body.take().unwrap_or_default();
        match T::from_request(Request::from_parts(parts, body), &self.cx).await {
            Ok(v) => Ok(Some(v)),
            Err(r) => self.reject(r).map(|()| None),
        }
    }

    /// `Err(422)` with every gathered validation error, if any.
    pub fn finish(&mut self) -> Result<(), Response> {
        if self.errors.is_empty() {
            return Ok(());
        }
        let errors = std::mem::take(&mut self.errors);
        Err(self.cx.render_error(ValidationErrors(errors).into()))
    }

    /// Turns the handler's result into the response, then runs the
    /// dependencies' cleanups with the outcome (a status of 400 or more is
    /// an error). A cleanup that fails after a success answers its error.
    pub async fn respond<R: Responder>(mut self, result: R) -> Response {
        let mut res = result.respond(&self.cx);
        let Some(scope) = self.scope.take() else {
            return res;
        };
        // What the handler and its dependencies wrote through
        // `ResponseParts` (nothing to do when none did).
        scope.response.apply(&mut res);
        let outcome = if res.status().as_u16() < 400 {
            Outcome::Success
        } else {
            Outcome::Error
        };
        match run_cleanups(scope.take_cleanups(), outcome).await {
            Some(e) if outcome.is_success() => self.cx.render_error(e),
            _ => res,
        }
    }
}

impl Drop for Extraction {
    /// The handler panicked or the client went away: the cleanups still
    /// run, on a task of their own.
    fn drop(&mut self) {
        let Some(scope) = self.scope.take() else {
            return;
        };
        let cleanups = scope.take_cleanups();
        if cleanups.is_empty() {
            return;
        }
        let outcome = if std::thread::panicking() {
            Outcome::Panicked
        } else {
            Outcome::Cancelled
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(run_cleanups(cleanups, outcome));
            }
            Err(_) => tracing::error!("no runtime to run dependency cleanups on"),
        }
    }
}

/// An `async fn` usable as a handler: every parameter is an extractor (only
/// the last may read the body) and the result is a [`Responder`].
///
/// Implemented for functions of up to 12 parameters. The route attribute
/// macros do not go through this trait: they generate the same calls to
/// [`Extraction`] with each parameter's own type, so that a parameter that is
/// not an extractor is named in the compile error.
pub trait Handler<T>: Clone + Send + Sync + Sized + 'static {
    /// Extracts the arguments, calls the function, answers.
    fn call(self, ex: Extraction) -> impl Future<Output = Response> + Send;
    /// Describes the handler's inputs and outputs.
    fn describe(op: &mut OperationBuilder<'_>, status: StatusCode);
}

pub(crate) fn into_boxed<H: Handler<T>, T: 'static>(handler: H) -> BoxedHandler {
    Arc::new(move |req, cx| {
        let h = handler.clone();
        Box::pin(async move { h.call(Extraction::new(req, cx)).await })
    })
}

impl<F, Fut, R> Handler<((),)> for F
where
    F: FnOnce() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = R> + Send,
    R: Responder,
{
    async fn call(self, mut ex: Extraction) -> Response {
        if let Err(res) = ex.begin().await {
            return ex.fail(res).await;
        }
        ex.respond(self().await).await
    }
    fn describe(op: &mut OperationBuilder<'_>, status: StatusCode) {
        R::describe(op, status);
    }
}

macro_rules! impl_handler {
    ($($t:ident),*; $last:ident) => {
        #[allow(non_snake_case, unused_mut)]
        impl<F, Fut, R, M, $($t,)* $last> Handler<(M, $($t,)* $last)> for F
        where
            F: FnOnce($($t,)* $last) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = R> + Send,
            R: Responder,
            M: Send + 'static,
            $($t: FromRequestParts,)*
            $last: FromRequest<M>,
        {
            async fn call(self, mut ex: Extraction) -> Response {
                if let Err(res) = ex.begin().await {
                    return ex.fail(res).await;
                }
                $(
                    let $t = match ex.part::<$t>().await {
                        Ok(v) => v,
                        Err(res) => return ex.fail(res).await,
                    };
                )*
                let $last = match ex.last::<M, $last>().await {
                    Ok(v) => v,
                    Err(res) => return ex.fail(res).await,
                };
                if let Err(res) = ex.finish() {
                    return ex.fail(res).await;
                }
                match ($($t,)* $last,) {
                    ($(Some($t),)* Some($last),) => ex.respond(self($($t,)* $last).await).await,
                    _ => ex.fail(internal_error()).await,
                }
            }
            fn describe(op: &mut OperationBuilder<'_>, status: StatusCode) {
                $(<$t as DescribeInput>::describe(op);)*
                <$last as DescribeInput>::describe(op);
                R::describe(op, status);
            }
        }
    };
}

/// Every extractor either produced a value or recorded an error, so this is
/// unreachable; answered 500 rather than trusted.
pub(crate) fn internal_error() -> Response {
    crate::response::error_response(&ferrapi_core::HttpError::internal())
}

impl_handler!(; T1);
impl_handler!(T1; T2);
impl_handler!(T1, T2; T3);
impl_handler!(T1, T2, T3; T4);
impl_handler!(T1, T2, T3, T4; T5);
impl_handler!(T1, T2, T3, T4, T5; T6);
impl_handler!(T1, T2, T3, T4, T5, T6; T7);
impl_handler!(T1, T2, T3, T4, T5, T6, T7; T8);
impl_handler!(T1, T2, T3, T4, T5, T6, T7, T8; T9);
impl_handler!(T1, T2, T3, T4, T5, T6, T7, T8, T9; T10);
impl_handler!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10; T11);
impl_handler!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11; T12);
