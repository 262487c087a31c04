//! Headers, cookies and a status on a typed response, with the response
//! model kept in the OpenAPI document.
//!
//! Two ways, as axum and FastAPI offer them:
//!
//! - return a tuple: `(HeaderMap, T)`, `([(name, value); N], T)`, or with a
//!   status first, `(StatusCode, HeaderMap, T)` / `(StatusCode, [(name,
//!   value); N], T)` — `T` (e.g. `Json<User>`) documents the response;
//! - take [`ResponseParts`] as a parameter (FastAPI's `response: Response`)
//!   and write to it from the handler or from any dependency: its headers,
//!   cookies and status are applied to whatever the handler returns.
//!
//! `ResponseParts` lives in the request's dependency scope, which only
//! routes that use it (or dependencies) create: other routes pay nothing.

use super::cookie::{InvalidHeader, SetCookie};
use super::{FromRequestParts, Rejection, RequestContext, RequestScope};
use crate::HttpError;
use crate::body::Response;
use crate::describe::DescribeInput;
use crate::describe::OperationBuilder;
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use std::sync::{Arc, Mutex, OnceLock};

/// What handlers and dependencies wrote through [`ResponseParts`].
#[derive(Debug, Default)]
struct Pending {
    status: Option<StatusCode>,
    headers: HeaderMap,
}

/// The slot in a request's dependency scope: empty (one atomic load to
/// check) until a `ResponseParts` writes.
#[derive(Debug, Default)]
#[doc(hidden)]
pub struct PendingParts(OnceLock<Mutex<Pending>>);

impl PendingParts {
    fn with<R>(&self, f: impl FnOnce(&mut Pending) -> R) -> R {
        let cell = self.0.get_or_init(Default::default);
        f(&mut cell.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Applies what was written to the handler's response: headers and
    /// cookies always, the status only over a success (an error the
    /// handler returned keeps its status).
    #[doc(hidden)]
    pub fn apply(&self, res: &mut Response) {
        let Some(cell) = self.0.get() else {
            return;
        };
        let mut pending = cell.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(status) = pending.status
            && res.status().as_u16() < 400
        {
            *res.status_mut() = status;
        }
        let headers = std::mem::take(&mut pending.headers);
        let mut last = None;
        for (name, value) in headers {
            // `None`: another value of the previous name.
            let name = match name {
                Some(n) => {
                    // Set-Cookie accumulates; other names replace what
                    // the response had.
                    if n != header::SET_COOKIE {
                        res.headers_mut().remove(&n);
                    }
                    last = Some(n.clone());
                    n
                }
                None => match &last {
                    Some(n) => n.clone(),
                    None => continue,
                },
            };
            res.headers_mut().append(name, value);
        }
    }
}

/// The headers, cookies and status of the response to come, written by the
/// handler or its dependencies — FastAPI's `response: Response` parameter.
///
/// The handler still returns its typed value (`Json<T>`, `Created<T>`, …),
/// so the operation keeps its response schema. What was written is applied
/// to the handler's response, errors it returns included (the status only
/// over a success); not to a 422 or another rejection answered before the
/// handler ran.
///
/// ```
/// use ferrapi::prelude::*;
/// use ferrapi::response::{ResponseParts, SetCookie};
/// use std::time::Duration;
///
/// #[derive(Serialize, JsonSchema)]
/// struct Session { user: String }
///
/// #[post("/login")]
/// async fn login(response: ResponseParts) -> Result<Json<Session>, HttpError> {
///     response.set_cookie(SetCookie::new("session", "abc123")
///         .max_age(Duration::from_secs(3600))
///         .http_only()
///         .secure())?;
///     response.insert_header("x-login", "ok")?;
///     Ok(Json(Session { user: "ada".into() }))
/// }
/// ```
#[derive(Clone)]
pub struct ResponseParts(Arc<RequestScope>);

impl std::fmt::Debug for ResponseParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResponseParts")
    }
}

impl ResponseParts {
    /// Sets header `name` (replacing any value the response would have had).
    pub fn insert_header<K, V>(&self, name: K, value: V) -> Result<(), InvalidHeader>
    where
        K: TryInto<HeaderName>,
        V: TryInto<HeaderValue>,
    {
        let (name, value) = header_pair(name, value)?;
        self.0.response.with(|p| {
            p.headers.insert(name, value);
        });
        Ok(())
    }

    /// Adds a value to header `name` (keeping the others).
    pub fn append_header<K, V>(&self, name: K, value: V) -> Result<(), InvalidHeader>
    where
        K: TryInto<HeaderName>,
        V: TryInto<HeaderValue>,
    {
        let (name, value) = header_pair(name, value)?;
        self.0.response.with(|p| {
            p.headers.append(name, value);
        });
        Ok(())
    }

    /// Adds a `Set-Cookie` header (FastAPI's `response.set_cookie`).
    pub fn set_cookie(&self, cookie: SetCookie) -> Result<(), InvalidHeader> {
        let value = cookie.header_value()?;
        self.0.response.with(|p| {
            p.headers.append(header::SET_COOKIE, value);
        });
        Ok(())
    }

    /// Removes cookie `name` from the browser (FastAPI's
    /// `response.delete_cookie`), for a cookie set with the default path.
    pub fn delete_cookie(&self, name: &str) -> Result<(), InvalidHeader> {
        self.set_cookie(SetCookie::removal(name))
    }

    /// Answers with `status` instead of the route's (FastAPI's
    /// `response.status_code = …`), unless the handler returns an error.
    pub fn set_status(&self, status: StatusCode) {
        self.0.response.with(|p| p.status = Some(status));
    }
}

pub(crate) fn header_pair<K, V>(
    name: K,
    value: V,
) -> Result<(HeaderName, HeaderValue), InvalidHeader>
where
    K: TryInto<HeaderName>,
    V: TryInto<HeaderValue>,
{
    let name = name.try_into().map_err(|_| InvalidHeader::Name)?;
    let value = value
        .try_into()
        .map_err(|_| InvalidHeader::Value(name.as_str().to_owned()))?;
    Ok((name, value))
}

/// A header the application itself got wrong is a server error: 500,
/// logged, as the other response helpers answer their own mistakes.
impl From<InvalidHeader> for HttpError {
    fn from(e: InvalidHeader) -> Self {
        tracing::error!(error = %e, "invalid response header");
        HttpError::internal()
    }
}

impl FromRequestParts for ResponseParts {
    async fn from_request_parts(
        parts: &mut Parts,
        _cx: &RequestContext,
    ) -> Result<Self, Rejection> {
        Ok(ResponseParts(RequestScope::of(parts)))
    }
}

impl DescribeInput for ResponseParts {
    fn describe(op: &mut OperationBuilder<'_>) {
        // The route gets a dependency scope, where the parts are kept and
        // from which `Extraction::respond` applies them.
        op.plan.uses_dependencies = true;
    }
}
