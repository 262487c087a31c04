//! OpenTelemetry export (feature `otel`), checked by a real OTLP receiver
//! (`tests/support/otlp.rs`): a hyper server on 127.0.0.1 that decodes the
//! protobuf the exporter sends, over HTTP/protobuf or gRPC.

use crate::middleware::Logs;
use ferrapi::client::Client;
use ferrapi::middleware::Stack;
use ferrapi::prelude::*;
use ferrapi::telemetry::{OtlpConfig, OtlpProtocol};
use ferrapi::testing::TestServer;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing_subscriber::layer::SubscriberExt as _;

#[path = "../support/otlp.rs"]
mod otlp;
pub(crate) use otlp::{Receiver, attr, telemetry_to};
use otlp::{grpc_telemetry_to, hex, int_attr};

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
    never_answering_collector(OtlpProtocol::HttpProtobuf).await;
}

#[tokio::test]
async fn a_grpc_collector_that_never_answers_does_not_slow_requests() {
    never_answering_collector(OtlpProtocol::Grpc).await;
}

async fn never_answering_collector(protocol: OtlpProtocol) {
    let collector = Blackhole::start();
    let export_timeout = Duration::from_secs(2);
    let telemetry = OtlpConfig::new(format!("http://{}", collector.addr))
        .protocol(protocol)
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
    // Exports hang for 2 s each; no request waited for one (the bounds
    // leave room for a loaded 2-core machine, and stay below one export).
    assert!(
        slowest < Duration::from_millis(1500),
        "slowest request {slowest:?}"
    );
    assert!(
        total < Duration::from_secs(10),
        "60 requests took {total:?}"
    );
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
async fn spans_are_exported_over_grpc() {
    let mut receiver = Receiver::start_grpc();
    let telemetry = OtlpConfig::new(receiver.endpoint())
        .protocol(OtlpProtocol::Grpc)
        .service_name("it-grpc")
        .header("x-collector-key", "k1")
        .timeout(Duration::from_secs(3))
        .scheduled_delay(Duration::from_millis(50))
        .build()
        .unwrap();
    let _default =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(telemetry.layer()));
    let server = TestServer::start(app()).await;
    let res = Client::new()
        .get(&format!("http://{}/api/v1/users/42", server.addr()))
        .header("traceparent", format!("00-{T}-{P}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let answered = res.header("traceparent").unwrap().to_owned();
    let span_id = answered.split('-').nth(2).unwrap().to_owned();

    let got = receiver
        .wait_for(|s| s.name == "GET /api/v1/users/{user_id}")
        .await;
    assert_eq!(got.service.as_deref(), Some("it-grpc"));
    assert_eq!(hex(&got.span.trace_id), T);
    assert_eq!(hex(&got.span.parent_span_id), P);
    assert_eq!(hex(&got.span.span_id), span_id);
    assert_eq!(
        attr(&got.span, "http.route").as_deref(),
        Some("/api/v1/users/{user_id}")
    );
    let child = receiver.wait_for(|s| s.name == "load_user").await.span;
    assert_eq!(hex(&child.parent_span_id), span_id);

    // On the wire: a gRPC call over HTTP/2 (the receiver checked the
    // frame before decoding it).
    let calls = receiver.calls();
    let call = calls.first().expect("a gRPC call");
    assert_eq!(call.path, otlp::GRPC_PATH);
    assert_eq!(call.version, http::Version::HTTP_2);
    assert_eq!(call.content_type.as_deref(), Some("application/grpc"));
    assert_eq!(call.te.as_deref(), Some("trailers"));
    assert_eq!(call.grpc_timeout.as_deref(), Some("3000m"));
    assert_eq!(
        call.headers.get("x-collector-key").map(|v| v.as_bytes()),
        Some(&b"k1"[..])
    );
    // The OK status in the trailers counted as a success.
    assert_eq!(telemetry.failed_exports(), 0);

    server.stop().await.unwrap();
    telemetry.shutdown().unwrap();
}

#[tokio::test]
async fn a_grpc_error_status_fails_the_export() {
    // INVALID_ARGUMENT: not retryable, so the failure is counted at once.
    let mut receiver = Receiver::start_grpc_answering(3);
    let telemetry = grpc_telemetry_to(&receiver, "it-grpc-refused");
    let _default =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(telemetry.layer()));
    let server = TestServer::start(app()).await;
    let res = Client::new()
        .get(&format!("http://{}/api/v1/users/1", server.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // The receiver decoded the export, then refused it.
    receiver
        .wait_for(|s| s.name == "GET /api/v1/users/{user_id}")
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while telemetry.failed_exports() == 0 {
        assert!(
            Instant::now() < deadline,
            "the refused export was not counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await.unwrap();
    let _ = telemetry.shutdown();
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
