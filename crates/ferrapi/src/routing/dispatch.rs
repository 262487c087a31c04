//! The request dispatcher: one path lookup, one method lookup, one call.
//!
//! Every route of an [`App`](crate::App) is served by [`Dispatch`], a tower
//! service built once by `App::build`. Per request it looks the path up in
//! one `matchit` tree, picks the route's handler by method from a fixed
//! table, records the matched path parameters (as offsets into the path,
//! without copying them) and calls the handler: its future is the only
//! allocation the dispatch adds. axum's `Router` costs more per request
//! (a boxed, cloned service per route, a second boxed future per handler, a
//! map of parameters): the dispatcher does what ferrapi needs of it and no
//! more, and hands every other path (the OpenAPI document, the docs pages,
//! 404) to an axum router kept as the fallback.
//!
//! Behaviour, as axum's router: a `GET` route also answers `HEAD` (with its
//! headers and `Content-Length`, without the body); a path that exists with
//! another method is a 405 whose `Allow` header lists the methods it has; a
//! panic in a handler is logged and answered 500, and the server keeps
//! serving.
//!
//! Observability is not here: once a request is matched, the dispatcher
//! hands its [`MatchedRoute`] (built once per route, numbered by a dense
//! [`RouteId`]) to the app's observers (`crate::observe`: metrics, the
//! OpenTelemetry span, the slot of the access log or of another layer),
//! and gives them the handler's response when it is ready.

use super::handler::BoxedHandler;
use crate::app::AppShared;
use crate::extract::{Request, RequestContext};
use crate::observe::{Observation, Observers};
use crate::response::Response;
use ferrapi_core::HttpError;
use ferrapi_core::extract::{MatchedRoute, RouteId};
use futures_util::future::BoxFuture;
use http::{HeaderValue, Method, StatusCode, header};
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// The methods a route can be declared for, in the order of the table.
const METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
    Method::TRACE,
    Method::CONNECT,
];

fn method_index(method: &Method) -> Option<usize> {
    Some(match *method {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::PATCH => 4,
        Method::DELETE => 5,
        Method::OPTIONS => 6,
        Method::TRACE => 7,
        Method::CONNECT => 8,
        _ => return None,
    })
}

/// Whether a route may be declared for `method`.
pub(crate) fn supported(method: &Method) -> bool {
    method_index(method).is_some()
}

/// One route's handler and its context.
struct Endpoint {
    handler: BoxedHandler,
    cx: Arc<RequestContext>,
    /// What the observers are told of the route.
    route: MatchedRoute,
}

/// Every route of one path template.
struct PathEntry {
    endpoints: [Option<Endpoint>; 9],
    /// `GET,HEAD,POST`: the `Allow` header of a 405.
    allow: HeaderValue,
    /// Whether the template has variables.
    has_params: bool,
}

// Built once, one per path: the size of the variants does not matter, and
// keeping the routes inline saves a pointer chase per request.
#[allow(clippy::large_enum_variant)]
enum Target {
    Routes(PathEntry),
    /// A path the fallback router serves (the document, the docs pages):
    /// in the tree so that a route's catch-all does not shadow it.
    Fallback,
}

/// The matched path parameters of a request, in template order, as byte
/// ranges of its path (percent-encoded, as received). Read by
/// [`Path`](crate::Path).
#[derive(Debug, Clone, Default)]
pub(crate) struct PathParams {
    inline: [(u32, u32); 4],
    len: u8,
    spill: Vec<(u32, u32)>,
}

impl PathParams {
    fn push(&mut self, range: (u32, u32)) {
        match self.inline.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = range;
                self.len += 1;
            }
            None => self.spill.push(range),
        }
    }

    /// The raw values, sliced from `path` (the request's path).
    pub(crate) fn values<'p>(&'p self, path: &'p str) -> impl Iterator<Item = &'p str> + 'p {
        self.inline[..usize::from(self.len)]
            .iter()
            .chain(self.spill.iter())
            .map(move |&(start, end)| path.get(start as usize..end as usize).unwrap_or(""))
    }
}

/// Builds a [`Dispatch`].
pub(crate) struct DispatchBuilder {
    matcher: matchit::Router<usize>,
    targets: Vec<Target>,
    index: std::collections::HashMap<String, usize>,
    /// Every route, by id.
    routes: Vec<MatchedRoute>,
}

impl DispatchBuilder {
    pub(crate) fn new() -> Self {
        Self {
            matcher: matchit::Router::new(),
            targets: Vec::new(),
            index: std::collections::HashMap::new(),
            routes: Vec::new(),
        }
    }

    /// Adds the handler of `method` on `path` (already checked: a supported
    /// method, a template the tree accepts, no clash).
    pub(crate) fn route(
        &mut self,
        path: &str,
        method: &Method,
        has_params: bool,
        handler: BoxedHandler,
        cx: Arc<RequestContext>,
    ) {
        let Some(slot) = method_index(method) else {
            return;
        };
        let i = match self.index.get(path) {
            Some(&i) => i,
            None => {
                let i = self.targets.len();
                if self.matcher.insert(path, i).is_err() {
                    return;
                }
                self.targets.push(Target::Routes(PathEntry {
                    endpoints: Default::default(),
                    allow: HeaderValue::from_static(""),
                    has_params,
                }));
                self.index.insert(path.to_owned(), i);
                i
            }
        };
        if let Some(Target::Routes(entry)) = self.targets.get_mut(i) {
            let id = RouteId::new(u32::try_from(self.routes.len()).unwrap_or(u32::MAX));
            let route = MatchedRoute::new(cx.plan().path.clone(), method.clone(), id);
            cx.set_matched_route(route.clone());
            self.routes.push(route.clone());
            entry.endpoints[slot] = Some(Endpoint { handler, cx, route });
        }
    }

    /// Marks `path` as served by the fallback router. A path a route
    /// already has is left to the route (the build refuses such clashes).
    pub(crate) fn fallback_path(&mut self, path: &str) {
        if self.index.contains_key(path) {
            return;
        }
        let i = self.targets.len();
        if self.matcher.insert(path, i).is_ok() {
            self.targets.push(Target::Fallback);
            self.index.insert(path.to_owned(), i);
        }
    }

    /// The dispatcher; `observers` makes the app's observers of its routes
    /// (every route, by id).
    pub(crate) fn finish(
        mut self,
        app: Arc<AppShared>,
        fallback: axum::Router,
        observers: impl FnOnce(&[MatchedRoute]) -> Observers,
    ) -> Dispatch {
        let observers = observers(&self.routes);
        for target in &mut self.targets {
            if let Target::Routes(entry) = target {
                let mut allow: Vec<&str> = Vec::new();
                for (i, method) in METHODS.iter().enumerate() {
                    // A GET route answers HEAD too.
                    if entry.endpoints[i].is_some() || (i == 1 && entry.endpoints[0].is_some()) {
                        allow.push(method.as_str());
                    }
                }
                entry.allow = HeaderValue::from_str(&allow.join(","))
                    .unwrap_or_else(|_| HeaderValue::from_static(""));
            }
        }
        Dispatch(Arc::new(Inner {
            matcher: self.matcher,
            targets: self.targets,
            fallback,
            app,
            observers,
        }))
    }
}

/// The application's routes as one tower service (see the module docs).
#[derive(Clone)]
pub(crate) struct Dispatch(Arc<Inner>);

struct Inner {
    matcher: matchit::Router<usize>,
    targets: Vec<Target>,
    fallback: axum::Router,
    app: Arc<AppShared>,
    observers: Observers,
}

impl std::fmt::Debug for Dispatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatch")
            .field("paths", &self.0.targets.len())
            .finish_non_exhaustive()
    }
}

impl Dispatch {
    /// Serves one request.
    pub(crate) fn call(&self, mut req: Request) -> DispatchFuture {
        let inner = &*self.0;
        let (target, params) = {
            let path = req.uri().path();
            match inner.matcher.at(path) {
                Ok(m) => {
                    let mut params = PathParams::default();
                    for (_, value) in m.params.iter() {
                        params.push(range_in(path, value));
                    }
                    (Some(*m.value), params)
                }
                Err(_) => (None, PathParams::default()),
            }
        };
        let entry = match target.and_then(|i| inner.targets.get(i)) {
            Some(Target::Routes(entry)) => entry,
            _ => return DispatchFuture::fallback(inner.fallback.clone(), req),
        };
        let method = req.method();
        let head = *method == Method::HEAD;
        let endpoint = match method_index(method) {
            Some(1) => entry.endpoints[1].as_ref().or(entry.endpoints[0].as_ref()),
            Some(i) => entry.endpoints[i].as_ref(),
            None => None,
        };
        let Some(endpoint) = endpoint else {
            let mut res = inner.app.render_error(
                HttpError::new(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed").into(),
            );
            if !res.headers().contains_key(header::ALLOW) {
                res.headers_mut().insert(header::ALLOW, entry.allow.clone());
            }
            return DispatchFuture::ready(res);
        };
        if entry.has_params {
            req.extensions_mut().insert(params);
        }
        // Published once, to the observers the app was built with.
        let observation = inner.observers.matched(&endpoint.route, &req);
        let cx = endpoint.cx.clone();
        match std::panic::catch_unwind(AssertUnwindSafe(|| (endpoint.handler)(req, cx))) {
            Ok(fut) => DispatchFuture(State::Handler {
                fut,
                head,
                observation,
            }),
            Err(panic) => DispatchFuture::ready(panic_response(panic)),
        }
    }
}

/// The byte range of `value` (a slice of `path`) in `path`.
fn range_in(path: &str, value: &str) -> (u32, u32) {
    let start = (value.as_ptr() as usize).wrapping_sub(path.as_ptr() as usize);
    match start.checked_add(value.len()) {
        Some(end) if end <= path.len() && !value.is_empty() => (
            u32::try_from(start).unwrap_or(0),
            u32::try_from(end).unwrap_or(0),
        ),
        _ => (0, 0),
    }
}

impl tower::Service<Request> for Dispatch {
    type Response = Response;
    type Error = Infallible;
    type Future = DispatchFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> DispatchFuture {
        Dispatch::call(self, req)
    }
}

/// A handler panicked: log it, answer FastAPI's 500. The connection and the
/// process keep serving.
pub(crate) fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("(non-string panic payload)");
    tracing::error!(panic = %message, "handler panicked");
    crate::response::error_response(&HttpError::internal())
}

/// The future of [`Dispatch`]: the handler's (polled inside
/// `catch_unwind`), the fallback router's, or a ready response.
pub struct DispatchFuture(State);

enum State {
    Handler {
        fut: BoxFuture<'static, Response>,
        head: bool,
        observation: Observation,
    },
    Fallback(Pin<Box<axum::routing::future::RouteFuture<Infallible>>>),
    Ready(Option<Response>),
}

impl std::fmt::Debug for DispatchFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DispatchFuture")
    }
}

impl DispatchFuture {
    fn ready(res: Response) -> Self {
        DispatchFuture(State::Ready(Some(res)))
    }

    fn fallback(mut router: axum::Router, req: Request) -> Self {
        let fut = tower::Service::call(&mut router, req);
        DispatchFuture(State::Fallback(Box::pin(fut)))
    }
}

impl Future for DispatchFuture {
    type Output = Result<Response, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            State::Handler { fut, .. } => {
                let res = match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx)))
                {
                    Ok(Poll::Pending) => return Poll::Pending,
                    Ok(Poll::Ready(res)) => res,
                    Err(panic) => panic_response(panic),
                };
                let State::Handler {
                    head, observation, ..
                } = std::mem::replace(&mut self.0, State::Ready(None))
                else {
                    return Poll::Ready(Ok(res));
                };
                observation.finish(&res);
                Poll::Ready(Ok(if head { strip_body(res) } else { res }))
            }
            State::Fallback(fut) => fut.as_mut().poll(cx),
            State::Ready(res) => match res.take() {
                Some(res) => Poll::Ready(Ok(res)),
                None => Poll::Ready(Ok(crate::routing::internal_error())),
            },
        }
    }
}

/// A `HEAD` answered by a `GET` route: its `Content-Length`, no body.
fn strip_body(mut res: Response) -> Response {
    if !res.headers().contains_key(header::CONTENT_LENGTH)
        && let Some(n) = http_body::Body::size_hint(res.body()).exact()
    {
        res.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    *res.body_mut() = axum::body::Body::empty();
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_of_parameters() {
        let path = "/users/42/items/abc";
        assert_eq!(range_in(path, &path[7..9]), (7, 9));
        assert_eq!(range_in(path, ""), (0, 0));
        assert_eq!(range_in(path, "elsewhere"), (0, 0));
        let mut p = PathParams::default();
        for r in [(1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12)] {
            p.push(r);
        }
        let got: Vec<&str> = p.values("abcdefghijklmnop").collect();
        assert_eq!(got, ["b", "d", "f", "h", "j", "l"]);
    }

    #[test]
    fn every_method_has_a_slot() {
        for (i, m) in METHODS.iter().enumerate() {
            assert_eq!(method_index(m), Some(i));
        }
        assert!(!supported(
            &Method::from_bytes(b"PROPFIND").unwrap_or_default()
        ));
    }
}
