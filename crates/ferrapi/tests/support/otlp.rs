//! An OTLP test receiver, shared by ferrapi's telemetry tests and
//! ferrapi-storage's span tests (included with `#[path]`): a hyper server on
//! 127.0.0.1 that decodes the protobuf `ExportTraceServiceRequest` the
//! exporter sends, over HTTP/protobuf (`POST /v1/traces`) or gRPC (HTTP/2
//! with prior knowledge, `POST
//! /opentelemetry.proto.collector.trace.v1.TraceService/Export`, the
//! message in a length-prefixed frame, the status in the `grpc-status`
//! trailer).
#![allow(dead_code)]

use bytes::{BufMut as _, Bytes, BytesMut};
use ferrapi::telemetry::{OtlpConfig, OtlpProtocol, Telemetry};
use http_body_util::BodyExt as _;
use http_body_util::combinators::BoxBody;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span as ProtoSpan;
use prost::Message as _;
use std::convert::Infallible;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The gRPC method an OTLP trace exporter calls.
pub const GRPC_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// One span as received, with its resource's `service.name`.
#[derive(Debug, Clone)]
pub struct Received {
    pub span: ProtoSpan,
    pub service: Option<String>,
}

/// What one export looked like on the wire (gRPC receivers).
#[derive(Debug, Clone)]
pub struct Call {
    pub path: String,
    pub version: http::Version,
    pub content_type: Option<String>,
    pub te: Option<String>,
    pub grpc_timeout: Option<String>,
    pub headers: http::HeaderMap,
}

/// How the receiver speaks.
#[derive(Debug, Clone, Copy)]
enum Transport {
    Http,
    /// gRPC, answering every call with this status (0: OK).
    Grpc(u32),
}

/// An OTLP receiver on its own thread and runtime (the exporter's flush may
/// block the test's thread).
pub struct Receiver {
    pub addr: std::net::SocketAddr,
    spans: mpsc::Receiver<Received>,
    calls: mpsc::Receiver<Call>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub seen: Vec<Received>,
}

pub fn string_attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(AnyValue::StringValue(s)) => Some(s.clone()),
            _ => None,
        }
    })
}

pub fn int_attr(attrs: &[KeyValue], key: &str) -> Option<i64> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(AnyValue::IntValue(i)) => Some(*i),
            _ => None,
        }
    })
}

pub fn bool_attr(attrs: &[KeyValue], key: &str) -> Option<bool> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(AnyValue::BoolValue(b)) => Some(*b),
            _ => None,
        }
    })
}

/// A string attribute of `span`.
pub fn attr(span: &ProtoSpan, key: &str) -> Option<String> {
    string_attr(&span.attributes, key)
}

/// Ids as the W3C headers write them.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Receiver {
    /// An OTLP/HTTP (protobuf) receiver.
    pub fn start() -> Self {
        Self::start_with(Transport::Http)
    }

    /// An OTLP/gRPC receiver that accepts every export.
    pub fn start_grpc() -> Self {
        Self::start_with(Transport::Grpc(0))
    }

    /// An OTLP/gRPC receiver that answers every export with `status`
    /// (14: UNAVAILABLE, …), after decoding it.
    pub fn start_grpc_answering(status: u32) -> Self {
        Self::start_with(Transport::Grpc(status))
    }

    fn start_with(transport: Transport) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, spans) = mpsc::channel();
        let (calls_tx, calls) = mpsc::channel();
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
                    let calls_tx = calls_tx.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            let tx = tx.clone();
                            let calls_tx = calls_tx.clone();
                            async move {
                                let res = match transport {
                                    Transport::Http => collect_http(req, tx).await,
                                    Transport::Grpc(status) => {
                                        collect_grpc(req, tx, calls_tx, status).await
                                    }
                                };
                                Ok::<_, hyper::Error>(res)
                            }
                        });
                        let io = hyper_util::rt::TokioIo::new(stream);
                        let _ = match transport {
                            Transport::Http => {
                                hyper::server::conn::http1::Builder::new()
                                    .serve_connection(io, service)
                                    .await
                            }
                            Transport::Grpc(_) => {
                                hyper::server::conn::http2::Builder::new(
                                    hyper_util::rt::TokioExecutor::new(),
                                )
                                .serve_connection(io, service)
                                .await
                            }
                        };
                    });
                }
            });
        });
        Self {
            addr,
            spans,
            calls,
            stop: Some(stop),
            thread: Some(thread),
            seen: Vec::new(),
        }
    }

    /// The collector's base URL.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits (at most 10 s, without blocking the test's runtime) until a
    /// span received so far satisfies `pred`.
    pub async fn wait_for(&mut self, pred: impl Fn(&ProtoSpan) -> bool) -> Received {
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

    /// The gRPC calls received so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.try_iter().collect()
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

type Body = BoxBody<Bytes, Infallible>;

fn forward(export: ExportTraceServiceRequest, tx: &mpsc::Sender<Received>) {
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
}

/// Decodes one OTLP/HTTP export; answers as a collector does.
async fn collect_http(
    req: http::Request<hyper::body::Incoming>,
    tx: mpsc::Sender<Received>,
) -> http::Response<Body> {
    let answer = |status: u16| {
        http::Response::builder()
            .status(status)
            .header("content-type", "application/x-protobuf")
            .body(http_body_util::Full::new(Bytes::new()).boxed())
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
    forward(export, &tx);
    answer(200)
}

/// A gRPC answer: the message (if any) in one frame, then the status in
/// the trailers.
fn grpc_answer(status: u32, message: Option<&[u8]>) -> http::Response<Body> {
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", status.into());
    if status != 0 {
        trailers.insert(
            "grpc-message",
            http::HeaderValue::from_static("refused%20by%20the%20test"),
        );
    }
    let mut body = BytesMut::new();
    if let Some(message) = message {
        body.put_u8(0);
        body.put_u32(u32::try_from(message.len()).unwrap());
        body.put_slice(message);
    }
    let body = http_body_util::Full::new(body.freeze())
        .with_trailers(async move { Some(Ok(trailers)) })
        .boxed();
    http::Response::builder()
        .status(200)
        .header("content-type", "application/grpc")
        .body(body)
        .unwrap()
}

/// Decodes one OTLP/gRPC export: the 5-byte frame header (compressed flag,
/// big-endian length), then the protobuf.
async fn collect_grpc(
    req: http::Request<hyper::body::Incoming>,
    tx: mpsc::Sender<Received>,
    calls: mpsc::Sender<Call>,
    status: u32,
) -> http::Response<Body> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let _ = calls.send(Call {
        path: req.uri().path().to_owned(),
        version: req.version(),
        content_type: header("content-type"),
        te: header("te"),
        grpc_timeout: header("grpc-timeout"),
        headers: req.headers().clone(),
    });
    if req.method() != http::Method::POST || req.uri().path() != GRPC_PATH {
        return grpc_answer(12, None); // UNIMPLEMENTED
    }
    let Ok(body) = req.into_body().collect().await else {
        return grpc_answer(13, None);
    };
    let body = body.to_bytes();
    let framed = body.len() >= 5
        && body[0] == 0
        && u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize == body.len() - 5;
    if !framed {
        return grpc_answer(13, None); // INTERNAL: not one uncompressed frame
    }
    let Ok(export) = ExportTraceServiceRequest::decode(body.slice(5..)) else {
        return grpc_answer(13, None);
    };
    forward(export, &tx);
    if status != 0 {
        return grpc_answer(status, None);
    }
    grpc_answer(
        0,
        Some(&ExportTraceServiceResponse::default().encode_to_vec()),
    )
}

/// A telemetry exporter to `receiver` over HTTP/protobuf, sending batches
/// every 50 ms.
pub fn telemetry_to(receiver: &Receiver, service: &str) -> Telemetry {
    OtlpConfig::new(receiver.endpoint())
        .service_name(service)
        .scheduled_delay(Duration::from_millis(50))
        .build()
        .unwrap()
}

/// The same over gRPC.
pub fn grpc_telemetry_to(receiver: &Receiver, service: &str) -> Telemetry {
    OtlpConfig::new(receiver.endpoint())
        .protocol(OtlpProtocol::Grpc)
        .service_name(service)
        .scheduled_delay(Duration::from_millis(50))
        .build()
        .unwrap()
}
