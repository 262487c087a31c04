//! The exception handlers that turn errors into responses (FastAPI's
//! `exception_handler`); [`Error`] and the default answers are in
//! `ferrapi-core`.

use super::{Error, Response};
use ferrapi_core::HttpError;
use ferrapi_core::response::{http_error_response, validation_response};
use ferrapi_core::validation::ValidationErrors;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

type Handler = Arc<dyn Fn(&Error) -> Option<Response> + Send + Sync>;

/// The application's exception handlers, tried in registration order
/// (the first whose type matches answers).
#[derive(Clone, Default)]
pub struct ExceptionHandlers(Vec<Handler>);

impl fmt::Debug for ExceptionHandlers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExceptionHandlers({})", self.0.len())
    }
}

impl ExceptionHandlers {
    pub(crate) fn add<E, F>(&mut self, handler: F)
    where
        E: StdError + 'static,
        F: Fn(&E) -> Response + Send + Sync + 'static,
    {
        self.0.push(Arc::new(move |e: &Error| {
            e.downcast_ref::<E>().map(&handler)
        }));
    }

    /// Answers an error: a registered handler, else the default.
    pub fn render(&self, e: Error) -> Response {
        for h in &self.0 {
            if let Some(res) = h(&e) {
                return res;
            }
        }
        if let Some(http) = e.downcast_ref::<HttpError>() {
            return http_error_response(http);
        }
        if let Some(v) = e.downcast_ref::<ValidationErrors>() {
            return validation_response(v);
        }
        let mut chain = String::new();
        let mut source = e.inner().source();
        while let Some(s) = source {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            source = s.source();
        }
        tracing::error!(error = %e, cause = %chain, "unhandled error in handler");
        http_error_response(&HttpError::internal())
    }
}
