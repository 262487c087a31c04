//! The inner panic catcher.

use crate::response::Response;
use futures_util::FutureExt as _;
use futures_util::future::{CatchUnwind, Either, Map, Ready};
use http::Request;
use http_body::Body as HttpBody;
use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// A handler's panic answered 500 `{"detail": "Internal Server Error"}`
/// from *inside* the middleware stack.
///
/// [`App::build`](crate::App::build) already catches panics at the very
/// outside; this layer, placed innermost, catches them earlier so that the
/// panic is logged within the request's span (with its `request_id`) and
/// the 500 still passes through the other layers (request id, timing,
/// security and CORS headers).
///
/// ```
/// use ferrapi::middleware::{catch_panic, RequestIdLayer};
/// use ferrapi::prelude::*;
///
/// // Innermost first: the panic is caught inside the request-id span.
/// let app = App::new().layer(catch_panic()).layer(RequestIdLayer::new());
/// ```
pub fn catch_panic() -> CatchPanicLayer {
    CatchPanicLayer
}

/// The layer made by [`catch_panic`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CatchPanicLayer;

impl<S> Layer<S> for CatchPanicLayer {
    type Service = CatchPanicService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CatchPanicService { inner }
    }
}

/// The service of [`CatchPanicLayer`].
#[derive(Debug, Clone)]
pub struct CatchPanicService<S> {
    inner: S,
}

type Caught<F, B, E> = Map<
    CatchUnwind<AssertUnwindSafe<F>>,
    fn(Result<Result<http::Response<B>, E>, Box<dyn Any + Send>>) -> Result<Response, E>,
>;

impl<S, ReqBody, B> Service<Request<ReqBody>> for CatchPanicService<S>
where
    S: Service<Request<ReqBody>, Response = http::Response<B>>,
    B: HttpBody<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<Caught<S::Future, B, S::Error>, Ready<Result<Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        match std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(req))) {
            Ok(fut) => Either::Left(
                AssertUnwindSafe(fut)
                    .catch_unwind()
                    .map(caught::<B, S::Error> as fn(_) -> _),
            ),
            Err(panic) => Either::Right(futures_util::future::ready(Ok(panic_response(panic)))),
        }
    }
}

fn caught<B, E>(
    result: Result<Result<http::Response<B>, E>, Box<dyn Any + Send>>,
) -> Result<Response, E>
where
    B: HttpBody<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    match result {
        Ok(res) => res.map(|r| r.map(axum::body::Body::new)),
        Err(panic) => Ok(panic_response(panic)),
    }
}

fn panic_response(err: Box<dyn Any + Send + 'static>) -> Response {
    let message = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("(non-string panic payload)");
    tracing::error!(panic = %message, "handler panicked");
    crate::response::error_response(&ferrapi_core::HttpError::internal())
}
