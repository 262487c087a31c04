//! Resource bounds the server and the extractors add to hyper's (issue 11,
//! issue 5): request bodies that stall or trickle are cut by the body
//! timeouts (408 JSON, connection closed); compressed request bodies are
//! decoded, decompression bombs refused 413 without being inflated,
//! unknown encodings 415; configurable header count and size limits (431).
//!
//! The measured figures are printed: run with
//! `cargo test -p ferrapi --test it resource_bounds:: -- --nocapture`.

use ferrapi::extract::{Multipart, RawBody};
use ferrapi::http::StatusCode;
use ferrapi::middleware::{DecompressionError, DecompressionLayer, RATIO_FLOOR};
use ferrapi::prelude::*;
use ferrapi::testing::{TestClient, TestServer};
use ferrapi::{BodyTimeout, ServeConfig};
use serde_json::{Value, json};
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MIB: usize = 1024 * 1024;

/// How many times the handlers ran.
#[derive(Clone, Default)]
struct Calls(Arc<AtomicUsize>);

impl Calls {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

#[post("/bytes")]
async fn bytes_route(State(calls): State<Calls>, body: bytes::Bytes) -> Text {
    calls.0.fetch_add(1, Ordering::SeqCst);
    Text(body.len().to_string())
}

#[derive(Debug, Deserialize, JsonSchema, Validate)]
struct Doc {
    #[garde(skip)]
    data: Value,
}

#[post("/json")]
async fn json_route(State(calls): State<Calls>, Json(doc): Json<Doc>) -> Json<Value> {
    calls.0.fetch_add(1, Ordering::SeqCst);
    Json(json!({ "data": doc.data }))
}

#[post("/multipart")]
async fn multipart_route(
    State(calls): State<Calls>,
    mut form: Multipart,
) -> Result<Text, ferrapi::Error> {
    calls.0.fetch_add(1, Ordering::SeqCst);
    let mut total = 0;
    while let Some(mut field) = form.next_field().await? {
        while let Some(chunk) = field.chunk().await? {
            total += chunk.len();
        }
    }
    Ok(Text(total.to_string()))
}

/// The bytes a streaming handler saw before its body ended.
#[derive(Clone, Default)]
struct Streamed {
    bytes: Arc<AtomicU64>,
}

/// Streams the body itself and reports the typed error it ended with.
#[post("/raw")]
async fn raw_route(
    State(seen): State<Streamed>,
    RawBody(body): RawBody,
) -> Result<Text, HttpError> {
    use std::error::Error as _;
    let mut stream = body.into_data_stream();
    let outcome = loop {
        match futures_util::StreamExt::next(&mut stream).await {
            None => break Ok(()),
            Some(Ok(chunk)) => {
                seen.bytes.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            }
            Some(Err(e)) => break Err(e),
        }
    };
    let Err(e) = outcome else {
        return Ok(Text(seen.bytes.load(Ordering::SeqCst).to_string()));
    };
    let source = e.source();
    let (label, status) = if let Some(t) = source.and_then(|s| s.downcast_ref::<BodyTimeout>()) {
        (format!("timeout: {t}"), StatusCode::REQUEST_TIMEOUT)
    } else if let Some(d) = source.and_then(|s| s.downcast_ref::<DecompressionError>()) {
        (format!("refused: {d:?}"), d.status())
    } else {
        (format!("other: {e}"), StatusCode::BAD_REQUEST)
    };
    Err(HttpError::new(status, label))
}

fn app(calls: &Calls, seen: &Streamed) -> App {
    App::new()
        .state(calls.clone())
        .state(seen.clone())
        .route(bytes_route)
        .route(json_route)
        .route(multipart_route)
        .route(raw_route)
}

/// An answer read off a raw socket until the server closed it.
struct Answer {
    status: u16,
    head: String,
    body: String,
    /// From the end of the request to the first byte of the answer.
    after: Duration,
    /// The server closed the connection after the answer.
    closed: bool,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// Reads what the server sends until it closes the connection (or `limit`
/// passes): the answer, when it came, and whether the server closed.
async fn answer_of(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
    sent_at: Instant,
    limit: Duration,
) -> Answer {
    let deadline = sent_at + limit;
    let mut buf = Vec::new();
    let mut first = None;
    let mut chunk = [0u8; 4096];
    let closed = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut chunk)).await {
            Err(_) => break false,
            Ok(Ok(0) | Err(_)) => break true,
            Ok(Ok(n)) => {
                first.get_or_insert_with(|| sent_at.elapsed());
                buf.extend_from_slice(&chunk[..n]);
            }
        }
    };
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Answer {
        status: head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0),
        head: head.to_owned(),
        body: body.to_owned(),
        after: first.unwrap_or(limit),
        closed,
    }
}

/// Sends a request head and the first bytes of its body, then nothing.
async fn stall(
    addr: SocketAddr,
    path: &str,
    headers: &str,
    declared: usize,
    sent: &[u8],
) -> Answer {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head =
        format!("POST {path} HTTP/1.1\r\nhost: x\r\n{headers}content-length: {declared}\r\n\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(sent).await.unwrap();
    answer_of(&mut s, Instant::now(), Duration::from_secs(10)).await
}

fn body_timeouts(read: Duration, total: Duration) -> ServeConfig {
    ServeConfig {
        body_read_timeout: read,
        body_total_timeout: total,
        ..ServeConfig::default()
    }
}

fn assert_timed_out(answer: &Answer, what: &str) {
    assert_eq!(answer.status, 408, "{what}: {}{}", answer.head, answer.body);
    assert_eq!(
        answer.json(),
        json!({ "detail": "Timed out reading the request body" }),
        "{what}"
    );
    assert_eq!(answer.header("connection"), Some("close"), "{what}");
    assert!(answer.closed, "{what}: the connection stays open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_is_answered_408_and_its_connection_closed() {
    let (calls, seen) = (Calls::default(), Streamed::default());
    let timeout = Duration::from_millis(500);
    let server =
        TestServer::start_with(app(&calls, &seen), body_timeouts(timeout, Duration::ZERO)).await;
    let addr = server.addr();
    let multipart = "content-type: multipart/form-data; boundary=b\r\n";
    let cases = [
        ("/bytes", "", &b"0123456789"[..]),
        (
            "/json",
            "content-type: application/json\r\n",
            &b"{\"data\": [1,"[..],
        ),
        (
            "/multipart",
            multipart,
            &b"--b\r\ncontent-disposition: form-data; name=\"f\"\r\n\r\nab"[..],
        ),
    ];
    for (path, headers, sent) in cases {
        let answer = stall(addr, path, headers, 100, sent).await;
        assert_timed_out(&answer, path);
        // Answered after the timeout, well before twice it.
        assert!(
            answer.after >= timeout && answer.after < timeout + Duration::from_millis(1500),
            "{path}: answered after {:?}",
            answer.after
        );
        println!(
            "stalled body on {path}: 408 after {:?} (timeout {timeout:?})",
            answer.after
        );
    }
    // The handlers that read the body first never ran; the multipart one
    // did (it streams) and got the 408 from its `?`.
    assert_eq!(calls.count(), 1);
    // A handler streaming the body itself finds the typed error; the
    // server still closes the connection.
    let answer = stall(addr, "/raw", "", 100, b"0123456789").await;
    assert_eq!(answer.status, 408, "{}", answer.body);
    assert_eq!(
        answer.json()["detail"],
        "timeout: no request body data received for 500ms"
    );
    assert_eq!(seen.bytes.load(Ordering::SeqCst), 10);
    assert_eq!(answer.header("connection"), Some("close"));
    assert!(answer.closed);
    server.stop().await.unwrap();
}

/// Sends `body` one byte every `every` while reading the answer (the
/// server may answer before the body is all sent); the answer's timing is
/// from the request head.
async fn trickle(addr: SocketAddr, path: &str, body: &[u8], every: Duration) -> Answer {
    let (mut rd, mut wr) = TcpStream::connect(addr).await.unwrap().into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let body = body.to_vec();
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        wr.write_all(head.as_bytes()).await.unwrap();
        for b in body {
            tokio::time::sleep(every).await;
            // Once the server answered and closed, writes fail: stop.
            if wr.write_all(&[b]).await.is_err() {
                break;
            }
        }
        wr
    });
    let answer = answer_of(&mut rd, started, Duration::from_secs(20)).await;
    drop(writer.await);
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_body_is_cut_only_by_the_total_timeout() {
    let (calls, seen) = (Calls::default(), Streamed::default());
    // No total (the default, as nginx): a byte every 100 ms keeps a body
    // with a 400 ms read timeout alive, however long it takes in all.
    let read = Duration::from_millis(400);
    let server =
        TestServer::start_with(app(&calls, &seen), body_timeouts(read, Duration::ZERO)).await;
    let answer = trickle(
        server.addr(),
        "/bytes",
        &[b'x'; 15],
        Duration::from_millis(100),
    )
    .await;
    let took = answer.after;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, "15"),
        "{}",
        answer.head
    );
    assert!(took > read * 3, "the trickle took {took:?}");
    println!(
        "trickled body (1 byte / 100 ms, read timeout {read:?}, no total): 200 after {took:?}"
    );
    server.stop().await.unwrap();

    // With a total of 1 s, the same trickle of 100 bytes is cut at 1 s.
    let total = Duration::from_secs(1);
    let server = TestServer::start_with(app(&calls, &seen), body_timeouts(read, total)).await;
    let answer = trickle(
        server.addr(),
        "/bytes",
        &[b'x'; 100],
        Duration::from_millis(100),
    )
    .await;
    let took = answer.after;
    assert_timed_out(&answer, "trickle with a total");
    assert!(
        took >= total && took < total + Duration::from_millis(1500),
        "cut after {took:?}"
    );
    println!("trickled body with total timeout {total:?}: 408 after {took:?}");
    // Which deadline passed is in the typed error.
    let answer = trickle(
        server.addr(),
        "/raw",
        &[b'x'; 100],
        Duration::from_millis(100),
    )
    .await;
    assert_eq!(
        answer.json()["detail"],
        "timeout: request body not complete within 1s of the request head"
    );
    // A body sent at once is not affected.
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    s.write_all(
        b"POST /bytes HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 3\r\n\r\nabc",
    )
    .await
    .unwrap();
    let answer = answer_of(&mut s, Instant::now(), Duration::from_secs(5)).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "3"));
    server.stop().await.unwrap();
    assert_eq!(
        calls.count(),
        2,
        "only the complete bodies reached the handler"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_disables_the_body_timeout() {
    let (calls, seen) = (Calls::default(), Streamed::default());
    let config = ServeConfig {
        grace_period: Duration::from_millis(200),
        ..body_timeouts(Duration::ZERO, Duration::ZERO)
    };
    let server = TestServer::start_with(app(&calls, &seen), config).await;
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    s.write_all(b"POST /bytes HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n0123")
        .await
        .unwrap();
    // Nothing is answered while the client stalls (the header timeout does
    // not apply to a request whose body is being read).
    let answer = answer_of(&mut s, Instant::now(), Duration::from_millis(1200)).await;
    assert_eq!((answer.status, answer.closed), (0, false));
    server.stop().await.unwrap();
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn brotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 9, 22);
        w.write_all(data).unwrap();
    }
    out
}

fn decompressing(calls: &Calls, seen: &Streamed, layer: DecompressionLayer) -> TestClient {
    TestClient::new(app(calls, seen).layer(layer))
}

#[tokio::test]
async fn compressed_bodies_are_decoded_for_every_extractor() {
    let (calls, seen) = (Calls::default(), Streamed::default());
    let client = decompressing(&calls, &seen, DecompressionLayer::new());
    let doc = json!({ "data": { "name": "ada", "tags": vec!["x"; 50] } });
    let plain = serde_json::to_vec(&doc).unwrap();
    for (encoding, body) in [
        ("gzip", gzip(&plain)),
        ("x-gzip", gzip(&plain)),
        ("deflate", deflate(&plain)),
        ("br", brotli(&plain)),
        ("identity", plain.clone()),
    ] {
        let res = client
            .post("/json")
            .header("content-type", "application/json")
            .header("content-encoding", encoding)
            .body(body)
            .send()
            .await;
        assert_eq!(res.status(), 200, "{encoding}: {}", res.text());
        assert_eq!(res.json::<Value>(), doc, "{encoding}");
    }
    // Bytes see the decoded length; no Content-Encoding is left alone.
    let res = client
        .post("/bytes")
        .header("content-encoding", "gzip")
        .body(gzip(&[7u8; 5000]))
        .send()
        .await;
    assert_eq!(res.text(), "5000");
    let res = client.post("/bytes").body(gzip(b"abc")).send().await;
    assert_eq!(res.text(), gzip(b"abc").len().to_string());
    // Multipart.
    let form = b"--b\r\ncontent-disposition: form-data; name=\"f\"; filename=\"a\"\r\n\r\nhello\r\n--b--\r\n";
    let res = client
        .post("/multipart")
        .header("content-type", "multipart/form-data; boundary=b")
        .header("content-encoding", "gzip")
        .body(gzip(form))
        .send()
        .await;
    assert_eq!((res.status().as_u16(), res.text()), (200, "5".to_string()));
}

#[tokio::test]
async fn unknown_encodings_are_415_and_corrupt_data_400() {
    let (calls, seen) = (Calls::default(), Streamed::default());
    let client = decompressing(&calls, &seen, DecompressionLayer::new().br(false));
    for encoding in ["zstd", "compress", "gzip, gzip", "br"] {
        let res = client
            .post("/bytes")
            .header("content-encoding", encoding)
            .body(gzip(b"abc"))
            .send()
            .await;
        assert_eq!(res.status(), 415, "{encoding}");
        assert_eq!(res.header("accept-encoding"), Some("gzip, deflate"));
        assert_eq!(
            res.json::<Value>(),
            json!({ "detail": format!("Unsupported Content-Encoding: {encoding}") })
        );
    }
    for (encoding, body) in [
        ("gzip", b"not gzip at all".to_vec()),
        ("deflate", gzip(b"abc")),
    ] {
        let res = client
            .post("/json")
            .header("content-encoding", encoding)
            .body(body)
            .send()
            .await;
        assert_eq!(res.status(), 400, "{encoding}");
        assert_eq!(
            res.json::<Value>(),
            json!({ "detail": format!("Request body is not valid {encoding} data") })
        );
    }
    assert_eq!(calls.count(), 0);
}

/// 10 MiB of zeros, gzipped: about 10 KiB.
fn gzip_bomb() -> Vec<u8> {
    gzip(&vec![0u8; 10 * MIB])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decompression_bomb_is_refused_413_without_inflating_it() {
    let (calls, seen) = (Calls::default(), Streamed::default());
    let bomb = gzip_bomb();
    let br_bomb = brotli(&vec![0u8; 10 * MIB]);
    println!(
        "bombs: 10 MiB of zeros = {} bytes gzipped, {} bytes brotli",
        bomb.len(),
        br_bomb.len()
    );
    // The route's body limit (1 MiB by default) applies to the decoded
    // bytes: Bytes, Json and Multipart stop at it.
    let client = decompressing(&calls, &seen, DecompressionLayer::new().max_ratio(None));
    let form_head = b"--b\r\ncontent-disposition: form-data; name=\"f\"; filename=\"a\"\r\n\r\n";
    let form = [&form_head[..], &vec![0u8; 10 * MIB], b"\r\n--b--\r\n"].concat();
    for (path, content_type, body) in [
        ("/bytes", "application/octet-stream", bomb.clone()),
        ("/json", "application/json", bomb.clone()),
        ("/multipart", "multipart/form-data; boundary=b", gzip(&form)),
    ] {
        let started = Instant::now();
        let res = client
            .post(path)
            .header("content-type", content_type)
            .header("content-encoding", "gzip")
            .body(body)
            .send()
            .await;
        let took = started.elapsed();
        assert_eq!(res.status(), 413, "{path}: {}", res.text());
        assert_eq!(
            res.json::<Value>(),
            json!({ "detail": "Request body too large" })
        );
        assert!(took < Duration::from_secs(2), "{path}: {took:?}");
        println!("gzip bomb to {path} (1 MiB body limit): 413 in {took:?}");
    }
    assert_eq!(calls.count(), 1, "only the streaming multipart handler ran");

    // The ratio cap stops it for a handler streaming the body itself (no
    // body limit applies there) soon after 64 KiB came out.
    let client = decompressing(&calls, &seen, DecompressionLayer::new());
    for (encoding, body) in [("gzip", &bomb), ("br", &br_bomb)] {
        seen.bytes.store(0, Ordering::SeqCst);
        let started = Instant::now();
        let res = client
            .post("/raw")
            .header("content-encoding", encoding)
            .body(body.clone())
            .send()
            .await;
        let took = started.elapsed();
        assert_eq!(res.status(), 413, "{encoding}: {}", res.text());
        assert_eq!(
            res.json::<Value>()["detail"],
            "refused: Ratio { ratio: 200 }",
            "{encoding}"
        );
        let inflated = seen.bytes.load(Ordering::SeqCst);
        // Never more than 200 times the compressed bytes (here all of them
        // came in one piece) or the floor, plus one decoder buffer (4 KiB).
        let bound = RATIO_FLOOR.max(200 * body.len() as u64) + 4096;
        assert!(
            inflated <= bound,
            "{encoding}: {inflated} bytes inflated (bound {bound})"
        );
        println!(
            "{encoding} bomb ({} bytes) to a streaming handler: 413 (ratio 200) in {took:?}, {inflated} bytes inflated of 10 MiB",
            body.len()
        );
    }

    // A hard cap for every route, a large body limit notwithstanding.
    let big = App::new()
        .state(calls.clone())
        .route(bytes_route().body_limit(64 * MIB))
        .layer(
            DecompressionLayer::new()
                .max_ratio(None)
                .max_size(2 * MIB as u64),
        );
    let client = TestClient::new(big);
    let res = client
        .post("/bytes")
        .header("content-encoding", "gzip")
        .body(bomb.clone())
        .send()
        .await;
    assert_eq!(res.status(), 413);
    assert_eq!(
        res.json::<Value>(),
        json!({ "detail": "Request body too large" })
    );
    let res = client
        .post("/bytes")
        .header("content-encoding", "gzip")
        .body(gzip(&vec![1u8; MIB]))
        .send()
        .await;
    assert_eq!(res.text(), MIB.to_string(), "under the cap");
    // A small, very repetitive body is not a bomb: 60 KiB of one letter
    // (ratio about 500) is under the 64 KiB floor.
    let client = decompressing(&calls, &seen, DecompressionLayer::new());
    let res = client
        .post("/bytes")
        .header("content-encoding", "gzip")
        .body(gzip(&[b'a'; 60 * 1024]))
        .send()
        .await;
    assert_eq!(res.text(), (60 * 1024).to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_json_inside_a_compressed_body_is_json_invalid() {
    let (calls, seen) = (Calls::default(), Streamed::default());
    // 1 MiB less a byte of `[` (the body limit), gzipped to about 1 KiB (a
    // ratio the default cap refuses: off here).
    let client = decompressing(&calls, &seen, DecompressionLayer::new().max_ratio(None));
    let deep = [&b"{\"data\":"[..], &vec![b'['; MIB - 9]].concat();
    let res = client
        .post("/json")
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gzip(&deep))
        .send()
        .await;
    assert_eq!(res.status(), 422, "{}", res.text());
    let detail = res.json::<Value>()["detail"].clone();
    assert_eq!(detail[0]["type"], "json_invalid");
    assert_eq!(calls.count(), 0);
}

/// A GET with `n` extra headers of `size` bytes each; the answer's status.
async fn get_with_headers(addr: SocketAddr, n: usize, size: usize) -> u16 {
    let mut head = String::from("POST /bytes HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n");
    let value = "v".repeat(size);
    for i in 0..n {
        head.push_str(&format!("x-h-{i}: {value}\r\n"));
    }
    head.push_str("connection: close\r\n\r\n");
    let mut s = TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before reading all of a large head.
    let _ = s.write_all(head.as_bytes()).await;
    answer_of(&mut s, Instant::now(), Duration::from_secs(10))
        .await
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_count_and_size_limits_are_configurable() {
    let (calls, seen) = (Calls::default(), Streamed::default());
    let config = ServeConfig {
        max_headers: 20,
        max_header_bytes: 16 * 1024,
        ..ServeConfig::default()
    };
    let server = TestServer::start_with(app(&calls, &seen), config).await;
    let addr = server.addr();
    // host, content-length and connection count too.
    assert_eq!(get_with_headers(addr, 17, 8).await, 200);
    assert_eq!(get_with_headers(addr, 18, 8).await, 431);
    assert_eq!(get_with_headers(addr, 1, 12 * 1024).await, 200);
    assert_eq!(get_with_headers(addr, 1, 20 * 1024).await, 431);
    server.stop().await.unwrap();

    // The defaults: hyper's 100 fields and ~408 KiB.
    let server = TestServer::start(app(&calls, &seen)).await;
    let addr = server.addr();
    assert_eq!(get_with_headers(addr, 97, 8).await, 200);
    assert_eq!(get_with_headers(addr, 98, 8).await, 431);
    assert_eq!(get_with_headers(addr, 4, 64 * 1024).await, 200);
    assert_eq!(get_with_headers(addr, 8, 64 * 1024).await, 431);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http2_a_stalled_stream_is_answered_408_and_the_connection_kept() {
    let (calls, seen) = (Calls::default(), Streamed::default());
    let timeout = Duration::from_millis(300);
    let server =
        TestServer::start_with(app(&calls, &seen), body_timeouts(timeout, Duration::ZERO)).await;
    let stream = TcpStream::connect(server.addr()).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    // A body that sends one chunk and then nothing (the sender is kept).
    let (tx, rx) = tokio::sync::mpsc::channel::<
        Result<http_body::Frame<bytes::Bytes>, std::convert::Infallible>,
    >(1);
    tx.send(Ok(http_body::Frame::data(bytes::Bytes::from_static(
        b"0123456789",
    ))))
    .await
    .unwrap();
    let body = http_body_util::StreamBody::new(channel_stream(rx));
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("http://{}/bytes", server.addr()))
        .header("content-length", "100")
        .body(http_body_util::combinators::UnsyncBoxBody::new(body))
        .unwrap();
    let started = Instant::now();
    let res = sender.send_request(req).await.unwrap();
    let took = started.elapsed();
    assert_eq!(res.status(), 408);
    assert_eq!(res.version(), http::Version::HTTP_2);
    assert!(res.headers().get("connection").is_none());
    assert!(
        took >= timeout && took < timeout + Duration::from_millis(1500),
        "{took:?}"
    );
    let text = http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(
        &text[..],
        br#"{"detail":"Timed out reading the request body"}"#
    );
    // The connection still serves other streams.
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("http://{}/bytes", server.addr()))
        .body(http_body_util::combinators::UnsyncBoxBody::new(
            http_body_util::Full::new(bytes::Bytes::from_static(b"abc")),
        ))
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    drop(tx);
    println!("HTTP/2 stalled stream: 408 after {took:?} (timeout {timeout:?}), connection kept");
    server.stop().await.unwrap();
}

/// An mpsc receiver as a `Stream`.
fn channel_stream<T: Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
}
