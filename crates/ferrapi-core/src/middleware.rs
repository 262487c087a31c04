//! One middleware adapter: a middleware is a [`Hook`] (a request half
//! and a response half), and one generic tower service, [`HookService`],
//! serves any hook, alone or composed with others.
//!
//! Written by hand rather than with `axum::middleware::from_fn` or a boxed
//! future per layer, for speed: a hook's halves are plain method calls, so
//! a chain of hooks composed into one (a pair of hooks is a hook, and so
//! is an optional one: see the implementations of [`Hook`]) runs as one
//! service with one future, no boxing and no per-layer future. That is how the
//! facade's `Stack` runs its outer layers; each of them is also a tower
//! layer on its own ([`HookLayer`]), with the same behaviour.
//!
//! A hook's request half may answer at once ([`Flow::Answer`]: a refused
//! preflight, a 429, a 401) or wait for something asynchronous first
//! ([`Flow::Wait`]: a rate-limit store across the network, a key fetch).
//! Hooks that never wait say `type Wait = NoWait<Self::State>;` and pay
//! nothing for it.
//!
//! ```
//! use ferrapi_core::body::{Body, Response};
//! use ferrapi_core::middleware::{Flow, Hook, HookLayer, NoWait};
//! use http::{HeaderValue, Request, StatusCode};
//!
//! /// Refuses requests without `x-api-key`; marks the others' answers.
//! #[derive(Clone)]
//! struct ApiKey;
//!
//! impl Hook for ApiKey {
//!     type State = ();
//!     type Wait = NoWait<Self::State>;
//!     fn begin<B>(&self, req: &mut Request<B>) -> Flow<()> {
//!         if req.headers().contains_key("x-api-key") {
//!             Flow::Continue(())
//!         } else {
//!             let mut res = Response::new(Body::empty());
//!             *res.status_mut() = StatusCode::UNAUTHORIZED;
//!             Flow::Answer(res)
//!         }
//!     }
//!     fn finish((): (), mut res: Response) -> Response {
//!         res.headers_mut().insert("x-checked", HeaderValue::from_static("1"));
//!         res
//!     }
//! }
//!
//! // A tower layer, for `App::layer` or `tower::ServiceBuilder::layer`.
//! let app = ferrapi::App::new().layer(HookLayer::new(ApiKey));
//! # let _ = app;
//! ```

use crate::body::{Body, Response};
use http::Request;
use pin_project_lite::pin_project;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tower_layer::Layer;
use tower_service::Service;

/// What a hook's request half decided.
#[derive(Debug)]
pub enum Flow<S, W = NoWait<S>> {
    /// Go on inward with this state; the response half gets it back.
    Continue(S),
    /// Answer now, without calling the inner service (the response halves
    /// of the hooks outside this one still run).
    Answer(Response),
    /// Wait for this future first; it resolves to the state (go on) or to
    /// the answer.
    Wait(W),
}

/// The wait of a hook that never waits (with state `S`): a future that
/// cannot exist.
#[derive(Debug)]
pub enum NoWait<S> {
    #[doc(hidden)]
    Never(Infallible, std::marker::PhantomData<fn() -> S>),
}

impl<S> NoWait<S> {
    /// Whatever is needed: this is never called, there is no `NoWait`.
    pub fn never<T>(self) -> T {
        match self {
            Self::Never(never, _) => match never {},
        }
    }
}

impl<S> Future for NoWait<S> {
    type Output = Result<S, Response>;
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        match *self {
            Self::Never(never, _) => match never {},
        }
    }
}

/// A middleware as two halves: [`begin`](Self::begin) on the way in,
/// [`finish`](Self::finish) on the way out, with a per-request
/// [`State`](Self::State) between them. Served by [`HookService`] (see
/// the [module docs](self) for an example).
///
/// Only the request half sees the hook: the request's future keeps the
/// state alone, so a hook without a response half (a state of `()`) costs
/// its future nothing, and one that needs its configuration on the way out
/// puts what it needs in the state.
pub trait Hook: Clone + Send + Sync + 'static {
    /// What the request half keeps for the response half.
    type State: Send + 'static;
    /// What [`Flow::Wait`] waits for: [`NoWait`] for hooks that never
    /// wait. It resolves to the state (go on inward) or to the answer.
    type Wait: Future<Output = Result<Self::State, Response>> + Send + 'static;

    /// The request half: may change the request, answer at once, or wait.
    fn begin<B>(&self, req: &mut Request<B>) -> Flow<Self::State, Self::Wait>;

    /// After a [`Flow::Wait`] resolved to a state, before the inner
    /// service is called: what the wait found, put on the request (claims
    /// in its extensions, …). Nothing by default.
    fn resumed<B>(state: &mut Self::State, req: &mut Request<B>) {
        let _ = (state, req);
    }

    /// The response half: the inner service's response (or an inner
    /// hook's answer), changed.
    fn finish(state: Self::State, res: Response) -> Response;

    /// The tracing span the rest of the request runs in (inner hooks'
    /// request halves, the inner service's call and every poll of its
    /// future), if this hook made one. None by default.
    fn span(state: &Self::State) -> Option<&tracing::Span> {
        let _ = state;
        None
    }
}

/// Two hooks as one: `A` outside, `B` inside (`A`'s request half first,
/// its response half last). Nest pairs for longer chains:
/// `(A, (B, C))`. Both must be hooks that never wait.
impl<A, B> Hook for (A, B)
where
    A: Hook<Wait = NoWait<<A as Hook>::State>>,
    B: Hook<Wait = NoWait<<B as Hook>::State>>,
{
    type State = (A::State, B::State);
    type Wait = NoWait<Self::State>;

    #[inline]
    fn begin<Bd>(&self, req: &mut Request<Bd>) -> Flow<Self::State> {
        let a = match self.0.begin(req) {
            Flow::Continue(a) => a,
            Flow::Answer(res) => return Flow::Answer(res),
            Flow::Wait(never) => never.never(),
        };
        let b = {
            // The inner request halves run in the outer one's span.
            let _entered = A::span(&a).map(tracing::Span::enter);
            self.1.begin(req)
        };
        match b {
            Flow::Continue(b) => Flow::Continue((a, b)),
            Flow::Answer(res) => Flow::Answer(A::finish(a, res)),
            Flow::Wait(never) => never.never(),
        }
    }

    #[inline]
    fn finish((a, b): Self::State, res: Response) -> Response {
        A::finish(a, B::finish(b, res))
    }

    #[inline]
    fn span((a, b): &Self::State) -> Option<&tracing::Span> {
        B::span(b).or_else(|| A::span(a))
    }
}

/// A hook that may be absent (`None` passes the request and the response
/// through untouched).
impl<H> Hook for Option<H>
where
    H: Hook<Wait = NoWait<<H as Hook>::State>>,
{
    type State = Option<H::State>;
    type Wait = NoWait<Self::State>;

    #[inline]
    fn begin<B>(&self, req: &mut Request<B>) -> Flow<Self::State> {
        match self {
            Some(hook) => match hook.begin(req) {
                Flow::Continue(s) => Flow::Continue(Some(s)),
                Flow::Answer(res) => Flow::Answer(res),
                Flow::Wait(never) => never.never(),
            },
            None => Flow::Continue(None),
        }
    }

    #[inline]
    fn finish(state: Self::State, res: Response) -> Response {
        match state {
            Some(state) => H::finish(state, res),
            None => res,
        }
    }

    #[inline]
    fn span(state: &Self::State) -> Option<&tracing::Span> {
        state.as_ref().and_then(H::span)
    }
}

/// A shared hook (a composed stack, shared by the services it wraps).
/// Always inlined: a call boundary here would make the whole state one
/// more copy per request (the state is returned and taken by value).
impl<H: Hook> Hook for Arc<H> {
    type State = H::State;
    type Wait = H::Wait;

    #[inline(always)]
    fn begin<B>(&self, req: &mut Request<B>) -> Flow<Self::State, Self::Wait> {
        (**self).begin(req)
    }

    #[inline(always)]
    fn resumed<B>(state: &mut Self::State, req: &mut Request<B>) {
        H::resumed(state, req);
    }

    #[inline(always)]
    fn finish(state: Self::State, res: Response) -> Response {
        H::finish(state, res)
    }

    #[inline(always)]
    fn span(state: &Self::State) -> Option<&tracing::Span> {
        H::span(state)
    }
}

/// Any [`Hook`] as a tower layer.
#[derive(Debug, Clone, Copy, Default)]
pub struct HookLayer<H>(H);

impl<H> HookLayer<H> {
    /// `hook` as a tower layer.
    pub fn new(hook: H) -> Self {
        Self(hook)
    }
}

impl<H: Clone, S> Layer<S> for HookLayer<H> {
    type Service = HookService<H, S>;
    fn layer(&self, inner: S) -> Self::Service {
        HookService::new(self.0.clone(), inner)
    }
}

/// The tower service of a [`Hook`] around an inner service.
///
/// The inner service answers [`Response`]s and is `Clone`: a request
/// whose hook waits takes the service into its future, leaving a clone
/// (as tower's own layers do); other requests never clone it.
#[derive(Debug, Clone)]
pub struct HookService<H, S> {
    hook: H,
    inner: S,
}

impl<H, S> HookService<H, S> {
    /// `hook` around `inner`.
    pub fn new(hook: H, inner: S) -> Self {
        Self { hook, inner }
    }

    /// The hook.
    pub fn hook(&self) -> &H {
        &self.hook
    }

    /// The inner service.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<H, S> HookService<H, S>
where
    H: Hook,
{
    /// [`Service::call`] through a shared reference, for an inner service
    /// that can be called so (`call`) and is always ready: no `&mut`, and
    /// no clone of the service per request unless the hook waits.
    #[inline]
    pub fn call_with<B>(
        &self,
        req: Request<B>,
        call: impl FnOnce(&S, Request<B>) -> S::Future,
    ) -> HookFuture<H, S, B>
    where
        S: Service<Request<B>, Response = Response> + Clone,
    {
        start::<H, S, B, _>(
            &self.hook,
            req,
            &self.inner,
            |inner, req| call(inner, req),
            |inner| S::clone(inner),
        )
    }
}

impl<H, S> HookService<H, S>
where
    H: Hook,
{
    /// As [`call_with`](Self::call_with), with `inner` (a part of this
    /// service's inner one, or another service) as the inner service: the
    /// future is then that service's, not the whole inner one's.
    #[inline(always)]
    pub fn call_on<T, B>(
        &self,
        inner: &T,
        req: Request<B>,
        call: impl FnOnce(&T, Request<B>) -> T::Future,
    ) -> HookFuture<H, T, B>
    where
        T: Service<Request<B>, Response = Response> + Clone,
    {
        HookFuture::new(&self.hook, inner, req, call)
    }
}

impl<H, S, B> Service<Request<B>> for HookService<H, S>
where
    H: Hook,
    S: Service<Request<B>, Response = Response> + Clone,
{
    type Response = Response;
    type Error = S::Error;
    type Future = HookFuture<H, S, B>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, req: Request<B>) -> Self::Future {
        let Self { hook, inner } = self;
        // A waiting request keeps the service that was polled ready and
        // leaves a clone for the next one (tower's usual move).
        start::<H, S, B, _>(
            hook,
            req,
            inner,
            |inner, req| inner.call(req),
            |inner| {
                let clone = inner.clone();
                std::mem::replace(*inner, clone)
            },
        )
    }
}

/// The request halves, then the inner call (`call`), or the answer, or
/// the wait with the request and the service it needs after it (`park`).
/// `cx` is what both get: the inner service, by reference.
///
/// Always inlined, and the future built in one expression (no value
/// changed after it is built): the future is large (the inner future and
/// the state), and each intermediate value of it would be one more copy
/// per request.
#[inline(always)]
fn start<H, S, B, C>(
    hook: &H,
    mut req: Request<B>,
    mut cx: C,
    call: impl FnOnce(&mut C, Request<B>) -> S::Future,
    park: impl FnOnce(&mut C) -> S,
) -> HookFuture<H, S, B>
where
    H: Hook,
    S: Service<Request<B>>,
{
    HookFuture {
        phase: match hook.begin(&mut req) {
            Flow::Continue(state) => Phase::Running {
                fut: {
                    let _entered = H::span(&state).map(tracing::Span::enter);
                    call(&mut cx, req)
                },
                state: Some(state),
            },
            Flow::Answer(res) => Phase::Answered { res: Some(res) },
            Flow::Wait(wait) => Phase::Waiting {
                wait,
                req: Some(req),
                svc: Some(park(&mut cx)),
            },
        },
    }
}

pin_project! {
    /// The response future of [`HookService`]: the inner service's future
    /// and the hook's state, then the hook's response half; or the hook's
    /// wait, or its answer.
    pub struct HookFuture<H, S, B>
    where
        H: Hook,
        S: Service<Request<B>>,
    {
        #[pin]
        phase: Phase<H, S, B>,
    }

    impl<H, S, B> PinnedDrop for HookFuture<H, S, B>
    where
        H: Hook,
        S: Service<Request<B>>,
    {
        /// A request dropped before its answer (the client went) drops
        /// the inner future in the hook's span, as `tracing`'s
        /// `Instrumented` does: what it logs then stays in the request.
        fn drop(this: Pin<&mut Self>) {
            let mut phase = this.project().phase;
            let span = match phase.as_mut().project() {
                PhaseProj::Running { state: Some(state), .. } => H::span(state).cloned(),
                _ => None,
            };
            if let Some(span) = span {
                let _entered = span.enter();
                phase.set(Phase::Answered { res: None });
            }
        }
    }
}

pin_project! {
    #[project = PhaseProj]
    enum Phase<H, S, B>
    where
        H: Hook,
        S: Service<Request<B>>,
    {
        Running {
            #[pin]
            fut: S::Future,
            state: Option<H::State>,
        },
        Waiting {
            #[pin]
            wait: H::Wait,
            req: Option<Request<B>>,
            svc: Option<S>,
        },
        Answered {
            res: Option<Response>,
        },
    }
}

impl<H, S, B> HookFuture<H, S, B>
where
    H: Hook,
    S: Service<Request<B>, Response = Response> + Clone,
{
    /// `hook` served over `inner` for one request, without a
    /// [`HookService`]: what [`HookService::call_on`] does with its own
    /// hook, for a caller that holds the hook apart. The server does: its
    /// hook is optional, and without it the routes are called alone; with
    /// it, this future's hook is the present one, whose state is not
    /// wrapped in one more `Option` (which each request would copy).
    ///
    /// `inner` is called through a shared reference (`call`) and cloned
    /// only when the hook waits.
    ///
    /// ```
    /// use ferrapi_core::body::{Body, Response};
    /// use ferrapi_core::middleware::{Flow, Hook, HookFuture, NoWait};
    /// use http::{HeaderValue, Request};
    /// use std::convert::Infallible;
    /// use std::future::{Ready, ready};
    /// use std::task::{Context, Poll};
    /// use tower_service::Service;
    ///
    /// #[derive(Clone)]
    /// struct Mark;
    ///
    /// impl Hook for Mark {
    ///     type State = ();
    ///     type Wait = NoWait<Self::State>;
    ///     fn begin<B>(&self, _req: &mut Request<B>) -> Flow<()> {
    ///         Flow::Continue(())
    ///     }
    ///     fn finish((): (), mut res: Response) -> Response {
    ///         res.headers_mut().insert("x-marked", HeaderValue::from_static("1"));
    ///         res
    ///     }
    /// }
    ///
    /// #[derive(Clone)]
    /// struct Hello;
    ///
    /// impl Service<Request<Body>> for Hello {
    ///     type Response = Response;
    ///     type Error = Infallible;
    ///     type Future = Ready<Result<Response, Infallible>>;
    ///     fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
    ///         Poll::Ready(Ok(()))
    ///     }
    ///     fn call(&mut self, _req: Request<Body>) -> Self::Future {
    ///         ready(Ok(Response::new(Body::from("hello"))))
    ///     }
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let req = Request::new(Body::empty());
    /// let res = HookFuture::new(&Mark, &Hello, req, |hello, req| hello.clone().call(req)).await;
    /// assert_eq!(res.unwrap().headers()["x-marked"], "1");
    /// # });
    /// ```
    #[inline(always)]
    pub fn new(
        hook: &H,
        inner: &S,
        req: Request<B>,
        call: impl FnOnce(&S, Request<B>) -> S::Future,
    ) -> Self {
        start::<H, S, B, _>(
            hook,
            req,
            inner,
            |inner, req| call(inner, req),
            |inner| S::clone(inner),
        )
    }
}

impl<H, S, B> std::fmt::Debug for HookFuture<H, S, B>
where
    H: Hook,
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let phase = match &self.phase {
            Phase::Running { .. } => "running",
            Phase::Waiting { .. } => "waiting",
            Phase::Answered { .. } => "answered",
        };
        f.debug_struct("HookFuture").field("phase", &phase).finish()
    }
}

impl<H, S, B> Future for HookFuture<H, S, B>
where
    H: Hook,
    S: Service<Request<B>, Response = Response>,
{
    type Output = Result<Response, S::Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.phase.as_mut().project() {
                PhaseProj::Running { fut, state } => {
                    let entered = state.as_ref().and_then(H::span).map(tracing::Span::enter);
                    let res = ready!(fut.poll(cx))?;
                    drop(entered);
                    return Poll::Ready(Ok(match state.take() {
                        Some(state) => H::finish(state, res),
                        None => res,
                    }));
                }
                PhaseProj::Answered { res } => {
                    return Poll::Ready(Ok(res.take().unwrap_or_else(empty_response)));
                }
                PhaseProj::Waiting { wait, req, svc } => {
                    let mut state = match ready!(wait.poll(cx)) {
                        Ok(state) => state,
                        Err(res) => return Poll::Ready(Ok(res)),
                    };
                    // Polled again after it finished: nothing left to do.
                    let (Some(mut req), Some(mut svc)) = (req.take(), svc.take()) else {
                        return Poll::Ready(Ok(empty_response()));
                    };
                    H::resumed(&mut state, &mut req);
                    let fut = {
                        let _entered = H::span(&state).map(tracing::Span::enter);
                        svc.call(req)
                    };
                    this.phase.set(Phase::Running {
                        fut,
                        state: Some(state),
                    });
                }
            }
        }
    }
}

/// What a future polled after its end answers (tower forbids it; no panic).
fn empty_response() -> Response {
    Response::new(Body::empty())
}

#[cfg(test)]
mod tests;
