//! OpenTelemetry export (feature `otel`), checked by a real OTLP/HTTP
//! receiver: a hyper server on 127.0.0.1 that decodes the protobuf the
//! exporter posts to `/v1/traces`.

use crate::middleware::Logs;
use ferrapi::client::Client;
use ferrapi::middleware::Stack;
use ferrapi::prelude::*;
use ferrapi::telemetry::{OtlpConfig, Telemetry};
use ferrapi::testing::TestServer;
use http_body_util::BodyExt as _;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span as ProtoSpan;
use prost::Message as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use tracing_subscriber::layer::SubscriberExt as _;

/// One span as received, with its resource's `service.name`.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) span: ProtoSpan,
    pub(crate) service: Option<String>,
}

/// An OTLP/HTTP receiver on its own thread and runtime (the exporter's
/// flush may block the test's thread).
pub(crate) struct Receiver {
    pub(crate) addr: std::net::SocketAddr,
    spans: mpsc::Receiver<Received>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub(crate) seen: Vec<Received>,
}

fn string_attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(AnyValue::StringValue(s)) => Some(s.clone()),
            _ => None,
        }
    })
}

fn int_attr(attrs: &[KeyValue], key: &str) -> Option<i64> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(AnyValue::IntValue(i)) => Some(*i),
            _ => None,
        }
    })
}

pub(crate) fn attr(span: &ProtoSpan, key: &str) -> Option<String> {
    string_attr(&span.attributes, key)
}

impl Receiver {
    pub(crate) fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, spans) = mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let mut stopped = stopped;
                loop {
                    let stream = tokio::select! {
                        _ = &mut stopped => break,
                        accepted = listener.accept() => match accepted {
                            Ok((stream, _)) => stream,
                            Err(_) => continue,
                        },
                    };
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            let tx = tx.clone();
                            async move { Ok::<_, hyper::Error>(collect(req, tx).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        Self {
            addr,
            spans,
            stop: Some(stop),
            thread: Some(thread),
            seen: Vec::new(),
        }
    }

    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits (at most 10 s, without blocking the test's runtime) until a
    /// span received so far satisfies `pred`.
    pub(crate) async fn wait_for(&mut self, pred: impl Fn(&ProtoSpan) -> bool) -> Received {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            while let Ok(span) = self.spans.try_recv() {
                self.seen.push(span);
            }
            if let Some(found) = self.seen.iter().find(|r| pred(&r.span)) {
                return found.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no such span; received: {:?}",
                self.seen.iter().map(|r| &r.span.name).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Decodes one export; answers as a collector does.
async fn collect(
    req: http::Request<hyper::body::Incoming>,
    tx: mpsc::Sender<Received>,
) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    let answer = |status: u16| {
        http::Response::builder()
            .status(status)
            .header("content-type", "application/x-protobuf")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap()
    };
    let protobuf = req
        .headers()
        .get("content-type")
        .is_some_and(|v| v == "application/x-protobuf");
    if req.method() != http::Method::POST || req.uri().path() != "/v1/traces" || !protobuf {
        return answer(404);
    }
    let Ok(body) = req.into_body().collect().await else {
        return answer(400);
    };
    let Ok(export) = ExportTraceServiceRequest::decode(body.to_bytes()) else {
        return answer(400);
    };
    for resource_spans in export.resource_spans {
        let service = resource_spans
            .resource
            .as_ref()
            .and_then(|r| string_attr(&r.attributes, "service.name"));
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                let _ = tx.send(Received {
                    span,
                    service: service.clone(),
                });
            }
        }
    }
    answer(200)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[get("/api/v1/users/{user_id}")]
async fn read_user(Path(user_id): Path<u32>) -> String {
    tracing::info!("reading a user");
    let load = tracing::info_span!("load_user", user_id);
    let _entered = load.enter();
    format!("user {user_id}")
}

#[get("/api/v1/broken")]
async fn broken() -> Result<String, HttpError> {
    Err(HttpError::internal())
}

fn app() -> App {
    App::new()
        .route(read_user)
        .route(broken)
        .middleware(Stack::defaults())
}

pub(crate) fn telemetry_to(receiver: &Receiver, service: &str) -> Telemetry {
    OtlpConfig::new(receiver.endpoint())
        .service_name(service)
        .scheduled_delay(Duration::from_millis(50))
        .build()
        .unwrap()
}

const T: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const P: &str = "00f067aa0ba902b7";

#[tokio::test]
async fn the_server_span_joins_the_callers_trace_with_http_attributes() {
    let mut receiver = Receiver::start();
    let telemetry = telemetry_to(&receiver, "it-telemetry");
    let logs = Logs::default();
    let writer = logs.clone();
    let _default = tracing::subscriber::set_default(
        tracing_subscriber::registry().with(telemetry.layer()).with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(true)
                .with_writer(move || writer.clone()),
        ),
    );
    let server = TestServer::start(app()).await;
    let base = format!("http://{}", server.addr());
    let http = Client::new();

    let res = http
        .get(&format!("{base}/api/v1/users/42?token=secret"))
        .header("traceparent", format!("00-{T}-{P}-01"))
        .header("tracestate", "vendor=abc")
        .header("user-agent", "probe/2.0")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // The answered traceparent names the exported span.
    let answered = res.header("traceparent").unwrap().to_owned();
    let parts: Vec<&str> = answered.split('-').collect();
    assert_eq!(parts[1], T, "{answered}");
    let span_id = parts[2].to_owned();
    assert_ne!(span_id, P);

    let name = "GET /api/v1/users/{user_id}";
    let got = receiver.wait_for(|s| s.name == name).await;
    let span = &got.span;
    assert_eq!(got.service.as_deref(), Some("it-telemetry"));
    assert_eq!(hex(&span.trace_id), T);
    assert_eq!(hex(&span.parent_span_id), P);
    assert_eq!(hex(&span.span_id), span_id);
    assert_eq!(span.kind, 2, "SPAN_KIND_SERVER");
    assert_eq!(attr(span, "http.request.method").as_deref(), Some("GET"));
    assert_eq!(
        attr(span, "http.route").as_deref(),
        Some("/api/v1/users/{user_id}")
    );
    assert_eq!(attr(span, "url.path").as_deref(), Some("/api/v1/users/42"));
    assert_eq!(
        int_attr(&span.attributes, "http.response.status_code"),
        Some(200)
    );
    assert_eq!(attr(span, "client.address").as_deref(), Some("127.0.0.1"));
    assert_eq!(
        attr(span, "user_agent.original").as_deref(),
        Some("probe/2.0")
    );
    assert_eq!(attr(span, "server.address").as_deref(), Some("127.0.0.1"));
    assert_eq!(
        int_attr(&span.attributes, "server.port"),
        Some(i64::from(server.addr().port()))
    );
    assert_eq!(span.trace_state, "vendor=abc");
    // The query string is not exported.
    let all = format!("{:?}", span.attributes);
    assert!(!all.contains("secret"), "{all}");

    // The request's log lines carry the exported ids.
    let line = logs
        .lines()
        .into_iter()
        .find(|l| l["fields"]["message"] == "reading a user")
        .unwrap();
    assert_eq!(line["span"]["trace_id"], T, "{line}");
    assert_eq!(line["span"]["span_id"], span_id.as_str(), "{line}");

    // A span opened in the handler is its child.
    let child = receiver.wait_for(|s| s.name == "load_user").await.span;
    assert_eq!(hex(&child.trace_id), T);
    assert_eq!(hex(&child.parent_span_id), span_id);

    // Without a traceparent: a new trace, the same ids answered and exported.
    let res = http
        .get(&format!("{base}/api/v1/broken"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 500);
    let answered = res.header("traceparent").unwrap().to_owned();
    let parts: Vec<&str> = answered.split('-').collect();
    let got = receiver
        .wait_for(|s| s.name == "GET /api/v1/broken")
        .await
        .span;
    assert_eq!(hex(&got.trace_id), parts[1]);
    assert_ne!(parts[1], T);
    assert_eq!(hex(&got.span_id), parts[2]);
    assert!(got.parent_span_id.is_empty());
    assert_eq!(
        int_attr(&got.attributes, "http.response.status_code"),
        Some(500)
    );
    assert_eq!(attr(&got, "error.type").as_deref(), Some("500"));
    assert_eq!(
        got.status.as_ref().map(|s| s.code),
        Some(2),
        "STATUS_CODE_ERROR"
    );

    // A caller that does not sample: nothing exported, the flag answered.
    let unsampled = "11111111111111111111111111111111";
    let res = http
        .get(&format!("{base}/api/v1/users/7"))
        .header("traceparent", format!("00-{unsampled}-{P}-00"))
        .send()
        .await
        .unwrap();
    let answered = res.header("traceparent").unwrap().to_owned();
    assert!(
        answered.starts_with(&format!("00-{unsampled}-")),
        "{answered}"
    );
    assert!(answered.ends_with("-00"), "{answered}");

    // An unmatched path is named by its method alone (no unbounded names).
    let res = http.get(&format!("{base}/nowhere/7")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let got = receiver
        .wait_for(|s| attr(s, "url.path").as_deref() == Some("/nowhere/7"))
        .await
        .span;
    assert_eq!(got.name, "GET");
    assert_eq!(attr(&got, "http.route"), None);
    // By now the unsampled request's span would have been exported too.
    assert!(
        !receiver
            .seen
            .iter()
            .any(|r| hex(&r.span.trace_id) == unsampled),
        "an unsampled trace was exported"
    );

    server.stop().await.unwrap();
    telemetry.shutdown().unwrap();
}

/// Counts the warnings the SDK logs when its queue is full.
#[derive(Clone, Default)]
struct Drops(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Drops {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if *event.metadata().level() == tracing::Level::WARN {
            self.0
                .lock()
                .unwrap()
                .push(event.metadata().name().to_owned());
        }
    }
}

/// A collector that accepts connections and never answers.
struct Blackhole {
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Blackhole {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(60);
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                if let Ok((stream, _)) = listener.accept() {
                    held.push(stream);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[tokio::test]
async fn a_collector_that_never_answers_does_not_slow_requests() {
    let collector = Blackhole::start();
    let export_timeout = Duration::from_secs(2);
    let telemetry = OtlpConfig::new(format!("http://{}", collector.addr))
        .timeout(export_timeout)
        .max_queue_size(4)
        .max_export_batch_size(2)
        .scheduled_delay(Duration::from_millis(10))
        .shutdown_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let drops = Drops::default();
    let _default = tracing::subscriber::set_default(
        tracing_subscriber::registry()
            .with(telemetry.layer())
            .with(drops.clone()),
    );
    let server = TestServer::start(app()).await;
    let base = format!("http://{}", server.addr());
    let http = Client::new();

    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..60 {
        let t = Instant::now();
        let res = http
            .get(&format!("{base}/api/v1/users/{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        slowest = slowest.max(t.elapsed());
    }
    let total = start.elapsed();
    // Exports hang for 2 s each; no request waited for one.
    assert!(
        slowest < Duration::from_millis(500),
        "slowest request {slowest:?}"
    );
    assert!(total < Duration::from_secs(5), "60 requests took {total:?}");
    // The queue is bounded: spans beyond it were dropped, and that was said.
    let warned = drops.0.lock().unwrap().clone();
    assert!(
        warned.iter().any(|n| n.contains("SpanDropping")),
        "no drop warning: {warned:?}"
    );

    server.stop().await.unwrap();
    // Shutting down does not hang on the dead collector either.
    let t = Instant::now();
    let _ = telemetry.shutdown();
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "shutdown took {:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn without_the_layer_the_trace_context_layer_works_as_before() {
    // The feature is compiled in, but no telemetry layer is installed: the
    // request span has no OpenTelemetry fields and ids come from the
    // trace-context layer as before.
    let server = TestServer::start(app()).await;
    let res = Client::new()
        .get(&format!("http://{}/api/v1/users/1", server.addr()))
        .header("traceparent", format!("00-{T}-{P}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let answered = res.header("traceparent").unwrap();
    assert!(answered.starts_with(&format!("00-{T}-")), "{answered}");
    assert!(!answered.contains(P));
    server.stop().await.unwrap();
}

#[test]
fn https_endpoints_are_refused_with_the_reason() {
    assert!(OtlpConfig::new("http://127.0.0.1:4318").build().is_ok());
    let err = OtlpConfig::new("https://collector:4318")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("only plain http://"), "{err}");
}
