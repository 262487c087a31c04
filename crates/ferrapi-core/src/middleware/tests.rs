//! The adapter's contract: order of the halves, early answers, waits, and
//! a chain of layers behaving as the same hooks composed.

use super::*;
use http::{HeaderValue, StatusCode};
use std::sync::Mutex;

type Log = Arc<Mutex<Vec<String>>>;

fn note(log: &Log, what: impl Into<String>) {
    if let Ok(mut log) = log.lock() {
        log.push(what.into());
    }
}

fn entries(log: &Log) -> Vec<String> {
    log.lock().map(|l| l.clone()).unwrap_or_default()
}

/// Logs its halves; answers 403 when the request has `x-refuse: <name>`.
#[derive(Clone)]
struct Named {
    name: &'static str,
    log: Log,
}

impl Hook for Named {
    type State = (&'static str, Log);
    type Wait = NoWait<Self::State>;
    fn begin<B>(&self, req: &mut Request<B>) -> Flow<Self::State> {
        note(&self.log, format!("begin {}", self.name));
        if req
            .headers()
            .get("x-refuse")
            .is_some_and(|v| v == self.name)
        {
            let mut res = Response::new(Body::empty());
            *res.status_mut() = StatusCode::FORBIDDEN;
            return Flow::Answer(res);
        }
        Flow::Continue((self.name, self.log.clone()))
    }
    fn finish((state, log): Self::State, mut res: Response) -> Response {
        note(&log, format!("finish {state}"));
        res.headers_mut()
            .append("x-through", HeaderValue::from_static(state));
        res
    }
}

/// Waits a turn of the executor, then lets the request on with
/// `x-waited` as an extension, or answers 429 when `x-limit` is sent.
#[derive(Clone)]
struct Waits;

#[derive(Clone, Debug)]
struct Waited;

impl Hook for Waits {
    type State = Option<Waited>;
    type Wait = Pin<Box<dyn Future<Output = Result<Option<Waited>, Response>> + Send>>;
    fn begin<B>(&self, req: &mut Request<B>) -> Flow<Self::State, Self::Wait> {
        let refuse = req.headers().contains_key("x-limit");
        Flow::Wait(Box::pin(async move {
            tokio::task::yield_now().await;
            if refuse {
                let mut res = Response::new(Body::empty());
                *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                Err(res)
            } else {
                Ok(Some(Waited))
            }
        }))
    }
    fn resumed<B>(state: &mut Self::State, req: &mut Request<B>) {
        if let Some(w) = state.take() {
            req.extensions_mut().insert(w);
        }
    }
    fn finish(_: Self::State, mut res: Response) -> Response {
        res.headers_mut()
            .insert("x-waited", HeaderValue::from_static("yes"));
        res
    }
}

/// The innermost service: logs its call, answers 200 and whether it saw
/// the [`Waited`] extension.
#[derive(Clone)]
struct Inner(Log);

impl<B> Service<Request<B>> for Inner {
    type Response = Response;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response, Infallible>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: Request<B>) -> Self::Future {
        note(&self.0, "inner");
        let saw = req.extensions().get::<Waited>().is_some();
        let mut res = Response::new(Body::empty());
        if saw {
            res.headers_mut()
                .insert("x-saw-wait", HeaderValue::from_static("1"));
        }
        std::future::ready(Ok(res))
    }
}

fn named(name: &'static str, log: &Log) -> Named {
    Named {
        name,
        log: log.clone(),
    }
}

fn request(headers: &[(&'static str, &'static str)]) -> Request<()> {
    let mut req = Request::new(());
    for (k, v) in headers {
        req.headers_mut().append(*k, HeaderValue::from_static(v));
    }
    req
}

fn through(res: &Response) -> Vec<&str> {
    res.headers()
        .get_all("x-through")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

async fn serve<S>(mut svc: S, req: Request<()>) -> Response
where
    S: Service<Request<()>, Response = Response, Error = Infallible>,
{
    match svc.call(req).await {
        Ok(res) => res,
        Err(never) => match never {},
    }
}

/// Hooks `a`, `b`, `c` composed, over [`Inner`], all logging to `log`.
fn fused_abc(log: &Log) -> HookService<(Named, (Named, Named)), Inner> {
    let hooks = (named("a", log), (named("b", log), named("c", log)));
    HookLayer::new(hooks).layer(Inner(log.clone()))
}

#[tokio::test]
async fn halves_run_outside_in_then_inside_out() {
    let log = Log::default();
    let res = serve(fused_abc(&log), request(&[])).await;
    assert_eq!(
        entries(&log),
        [
            "begin a", "begin b", "begin c", "inner", "finish c", "finish b", "finish a"
        ]
    );
    assert_eq!(through(&res), ["c", "b", "a"]);
}

#[tokio::test]
async fn an_early_answer_skips_the_inside_and_passes_the_outside() {
    let log = Log::default();
    let res = serve(fused_abc(&log), request(&[("x-refuse", "b")])).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(entries(&log), ["begin a", "begin b", "finish a"]);
    assert_eq!(through(&res), ["a"]);
}

#[tokio::test]
async fn a_layer_chain_equals_the_same_hooks_composed() {
    for refuse in ["", "a", "b", "c"] {
        let headers: &[(&str, &str)] = if refuse.is_empty() {
            &[]
        } else {
            &[("x-refuse", refuse)]
        };
        let (fused_log, chain_log) = (Log::default(), Log::default());
        let fused = fused_abc(&fused_log);
        let chain = HookLayer::new(named("a", &chain_log)).layer(
            HookLayer::new(named("b", &chain_log))
                .layer(HookLayer::new(named("c", &chain_log)).layer(Inner(chain_log.clone()))),
        );
        let fused_res = serve(fused, request(headers)).await;
        let chain_res = serve(chain, request(headers)).await;
        assert_eq!(entries(&fused_log), entries(&chain_log), "{refuse:?}");
        assert_eq!(fused_res.status(), chain_res.status(), "{refuse:?}");
        assert_eq!(through(&fused_res), through(&chain_res), "{refuse:?}");
    }
}

#[tokio::test]
async fn a_wait_resumes_into_the_inner_service_or_answers() {
    let log = Log::default();
    let svc = HookLayer::new(Waits).layer(Inner(log.clone()));
    let res = serve(svc.clone(), request(&[])).await;
    assert_eq!(entries(&log), ["inner"]);
    assert_eq!(
        res.headers().get("x-saw-wait").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    assert_eq!(
        res.headers().get("x-waited").map(|v| v.as_bytes()),
        Some(&b"yes"[..])
    );
    let res = serve(svc, request(&[("x-limit", "1")])).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(entries(&log), ["inner"], "the inner service is not called");
    assert!(res.headers().get("x-waited").is_none());
}

#[tokio::test]
async fn an_absent_hook_passes_through_and_a_shared_one_serves() {
    let log = Log::default();
    let hooks: (Option<Named>, Arc<Named>) = (None, Arc::new(named("b", &log)));
    let svc = HookService::new(hooks, Inner(log.clone()));
    let res = svc
        .call_with(request(&[]), |inner, req| inner.clone().call(req))
        .await;
    let res = match res {
        Ok(res) => res,
        Err(never) => match never {},
    };
    assert_eq!(entries(&log), ["begin b", "inner", "finish b"]);
    assert_eq!(through(&res), ["b"]);
}

/// Makes a span (a real one: the test installs a subscriber) that the rest
/// of the request runs in.
#[derive(Clone)]
struct Spanned;

impl Hook for Spanned {
    type State = tracing::Span;
    type Wait = NoWait<Self::State>;
    fn begin<B>(&self, _req: &mut Request<B>) -> Flow<tracing::Span> {
        Flow::Continue(tracing::info_span!("request"))
    }
    fn finish(_: tracing::Span, res: Response) -> Response {
        res
    }
    fn span(state: &tracing::Span) -> Option<&tracing::Span> {
        Some(state)
    }
}

/// Never answers; on drop, notes the current span's name.
#[derive(Clone)]
struct Pending(Log);

struct NotesDrop(Log);

impl Drop for NotesDrop {
    fn drop(&mut self) {
        let name = tracing_subscriber_like::current();
        note(&self.0, format!("dropped in {name}"));
    }
}

impl<B> Service<Request<B>> for Pending {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, _req: Request<B>) -> Self::Future {
        let guard = NotesDrop(self.0.clone());
        let current = tracing_subscriber_like::current();
        note(&self.0, format!("called in {current}"));
        Box::pin(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
            Ok(Response::new(Body::empty()))
        })
    }
}

#[test]
fn the_inner_call_and_a_cancelled_future_run_in_the_hooks_span() {
    let subscriber = tracing_subscriber_like::Recorder;
    tracing::subscriber::with_default(subscriber, || {
        let log = Log::default();
        let fut = HookLayer::new(Spanned)
            .layer(Pending(log.clone()))
            .call(request(&[]));
        drop(fut);
        assert_eq!(entries(&log), ["called in request", "dropped in request"]);
    });
}

/// The smallest subscriber that keeps spans: ids handed out in order, the
/// entered ones on a stack, the last one's name given by `current`.
mod tracing_subscriber_like {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, subscriber::Subscriber};

    pub(super) struct Recorder;

    static NEXT: AtomicU64 = AtomicU64::new(1);
    static SPANS: Mutex<Vec<(u64, &'static Metadata<'static>)>> = Mutex::new(Vec::new());
    static STACK: Mutex<Vec<u64>> = Mutex::new(Vec::new());

    impl Subscriber for Recorder {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, span: &Attributes<'_>) -> Id {
            let id = NEXT.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut spans) = SPANS.lock() {
                spans.push((id, span.metadata()));
            }
            Id::from_u64(id)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, _: &Event<'_>) {}
        fn enter(&self, span: &Id) {
            if let Ok(mut stack) = STACK.lock() {
                stack.push(span.into_u64());
            }
        }
        fn exit(&self, _: &Id) {
            if let Ok(mut stack) = STACK.lock() {
                stack.pop();
            }
        }
    }

    /// The name of the span entered last on this subscriber, or `none`.
    pub(super) fn current() -> &'static str {
        let top = STACK.lock().ok().and_then(|s| s.last().copied());
        top.and_then(|id| {
            SPANS
                .lock()
                .ok()
                .and_then(|s| s.iter().find(|(i, _)| *i == id).map(|(_, m)| m.name()))
        })
        .unwrap_or("none")
    }
}

#[tokio::test]
async fn call_on_serves_the_hook_over_the_service_given() {
    let (held, given) = (Log::default(), Log::default());
    let svc = HookService::new(named("a", &given), Inner(held.clone()));
    let res = svc
        .call_on(&Inner(given.clone()), request(&[]), |inner, req| {
            inner.clone().call(req)
        })
        .await;
    let res = match res {
        Ok(res) => res,
        Err(never) => match never {},
    };
    assert_eq!(entries(&given), ["begin a", "inner", "finish a"]);
    assert!(entries(&held).is_empty(), "the held service is not called");
    assert_eq!(through(&res), ["a"]);
}

#[tokio::test]
async fn a_hook_future_made_alone_goes_on_answers_or_waits() {
    let log = Log::default();
    let inner = Inner(log.clone());
    let call = |inner: &Inner, req| inner.clone().call(req);
    let unwrap = |res: Result<Response, Infallible>| match res {
        Ok(res) => res,
        Err(never) => match never {},
    };
    // Goes on: the request half, the given service, the response half.
    let hook = named("a", &log);
    let res = unwrap(HookFuture::new(&hook, &inner, request(&[]), call).await);
    assert_eq!(entries(&log), ["begin a", "inner", "finish a"]);
    assert_eq!(through(&res), ["a"]);
    // Answers: the service is not called.
    let res = unwrap(HookFuture::new(&hook, &inner, request(&[("x-refuse", "a")]), call).await);
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(entries(&log), ["begin a", "inner", "finish a", "begin a"]);
    // Waits: the service (a clone of the one given) is called after the
    // wait, on the request the wait resumed into.
    let res = unwrap(HookFuture::new(&Waits, &inner, request(&[]), call).await);
    assert_eq!(entries(&log).last().map(String::as_str), Some("inner"));
    assert_eq!(
        res.headers().get("x-saw-wait").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    let res = unwrap(HookFuture::new(&Waits, &inner, request(&[("x-limit", "1")]), call).await);
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(entries(&log).len(), 5, "a refused wait calls nothing");
}
