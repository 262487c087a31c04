//! Multipart uploads: a 50 MiB part streamed to a file with bounded memory,
//! per-part size (413) and content-type (415) limits with nothing stored,
//! missing parts (422), limits independent of the app's body limit, and the
//! OpenAPI description.

use ferrapi::extract::{Multipart, MultipartForm, Part};
use ferrapi::prelude::*;
use ferrapi::testing::{TestClient, TestServer};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MIB: u64 = 1024 * 1024;
const BOUNDARY: &str = "ferrapi-test-boundary-7d1c";

/// A directory of its own under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "ferrapi-uploads-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An avatar upload: png or jpeg, at most 5 MiB.
struct AvatarUpload;
impl MultipartForm for AvatarUpload {
    const NAME: &'static str = "AvatarUpload";
    const PARTS: &'static [Part] = &[Part::file("file")
        .accept(&["image/png", "image/jpeg"])
        .max_size(5 * MIB)
        .description("The new avatar.")];
}

/// A large upload: one part of at most 64 MiB, and an optional caption.
struct BigUpload;
impl MultipartForm for BigUpload {
    const NAME: &'static str = "BigUpload";
    const PARTS: &'static [Part] = &[
        Part::file("file").max_size(64 * MIB),
        Part::text("caption").optional().max_size(1024),
    ];
}

/// Where handlers store files: the test's own directory.
#[derive(Clone)]
struct Store(PathBuf);

#[put("/avatars/{name}", status = 204)]
async fn put_avatar(
    State(store): State<Store>,
    Path(name): Path<String>,
    mut form: Multipart<AvatarUpload>,
) -> Result<NoContent, ferrapi::Error> {
    let field = form.field("file").await?;
    field.save(store.0.join(name)).await?;
    Ok(NoContent)
}

#[put("/big/{name}")]
async fn put_big(
    State(store): State<Store>,
    Path(name): Path<String>,
    mut form: Multipart<BigUpload>,
) -> Result<Json<Value>, ferrapi::Error> {
    let mut size = 0;
    let mut caption = None;
    while let Some(field) = form.next_field().await? {
        match field.name() {
            Some("file") => size = field.save(store.0.join(&name)).await?,
            Some("caption") => caption = Some(field.text().await?),
            _ => continue,
        }
    }
    Ok(Json(json!({"size": size, "caption": caption})))
}

/// Any parts: each part's name, file name, content type and size.
#[post("/parts")]
async fn list_parts(mut form: Multipart) -> Result<Json<Value>, ferrapi::Error> {
    let mut out = Vec::new();
    while let Some(mut field) = form.next_field().await? {
        let name = field.name().map(str::to_owned);
        let file_name = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(str::to_owned);
        let mut sink = Vec::new();
        let size = field.copy_to(&mut sink).await?;
        assert_eq!(size as usize, sink.len());
        out.push(json!({"name": name, "file_name": file_name, "content_type": content_type, "size": size}));
    }
    Ok(Json(Value::Array(out)))
}

fn app(dir: &TempDir) -> App {
    App::new()
        .state(Store(dir.0.clone()))
        .route(put_avatar)
        .route(put_big)
        .route(list_parts().body_limit(4096))
}

/// One part of a test body: name, file name, content type, content.
struct TestPart<'a>(&'a str, Option<&'a str>, Option<&'a str>, &'a [u8]);

fn part_head(p: &TestPart<'_>) -> Vec<u8> {
    let mut head = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{}\"",
        p.0
    );
    if let Some(f) = p.1 {
        head.push_str(&format!("; filename=\"{f}\""));
    }
    head.push_str("\r\n");
    if let Some(ct) = p.2 {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

fn multipart_body(parts: &[TestPart<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for p in parts {
        body.extend(part_head(p));
        body.extend_from_slice(p.3);
        body.extend_from_slice(b"\r\n");
    }
    body.extend(format!("--{BOUNDARY}--\r\n").into_bytes());
    body
}

fn content_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

async fn send(
    client: &TestClient,
    uri: &str,
    parts: &[TestPart<'_>],
) -> ferrapi::testing::TestResponse {
    client
        .put(uri)
        .header("content-type", &content_type())
        .body(multipart_body(parts))
        .send()
        .await
}

#[tokio::test]
async fn an_accepted_avatar_is_stored() {
    let dir = TempDir::new();
    let client = TestClient::new(app(&dir));
    let png = b"\x89PNG\r\n\x1a\nnot really a png";
    let res = send(
        &client,
        "/avatars/a.png",
        &[TestPart("file", Some("me.png"), Some("image/png"), png)],
    )
    .await;
    assert_eq!(res.status(), 204, "{}", res.text());
    assert_eq!(std::fs::read(dir.0.join("a.png")).unwrap(), png);
    assert_eq!(dir.entries(), ["a.png"]);
}

#[tokio::test]
async fn a_wrong_part_type_is_415_and_nothing_is_stored() {
    let dir = TempDir::new();
    let client = TestClient::new(app(&dir));
    for ct in [Some("text/plain"), Some("image/gif"), None] {
        let res = send(
            &client,
            "/avatars/a.png",
            &[TestPart("file", Some("me.png"), ct, b"GIF89a....")],
        )
        .await;
        assert_eq!(res.status(), 415, "{ct:?}: {}", res.text());
        let shown = ct.unwrap_or("none");
        assert_eq!(
            res.json::<Value>(),
            json!({"detail": format!("Unsupported media type `{shown}` for part `file`: expected image/png or image/jpeg")})
        );
    }
    assert!(dir.entries().is_empty(), "{:?}", dir.entries());
}

#[tokio::test]
async fn a_part_over_its_limit_is_413_whatever_the_app_limit_and_nothing_is_stored() {
    let dir = TempDir::new();
    // The app-wide limit (1 MiB by default) does not bound a part declared
    // with 5 MiB: 5 MiB pass, one byte more is refused.
    let client = TestClient::new(app(&dir));
    let exact = vec![7u8; 5 * MIB as usize];
    let res = send(
        &client,
        "/avatars/big.png",
        &[TestPart("file", Some("x.png"), Some("image/png"), &exact)],
    )
    .await;
    assert_eq!(res.status(), 204, "{}", res.text());
    assert_eq!(
        std::fs::metadata(dir.0.join("big.png")).unwrap().len(),
        5 * MIB
    );

    let over = vec![7u8; 5 * MIB as usize + 1];
    let res = send(
        &client,
        "/avatars/over.png",
        &[TestPart("file", Some("x.png"), Some("image/png"), &over)],
    )
    .await;
    assert_eq!(res.status(), 413, "{}", res.text());
    assert_eq!(
        res.json::<Value>(),
        json!({"detail": "Part `file` is larger than 5242880 bytes"})
    );
    // The earlier file is intact and no partial file is left behind.
    assert_eq!(dir.entries(), ["big.png"]);
}

#[tokio::test]
async fn a_body_over_the_route_limit_is_413() {
    let dir = TempDir::new();
    let client = TestClient::new(app(&dir));
    let data = vec![1u8; 8192];
    // Declared up front by Content-Length.
    let res = client
        .post("/parts")
        .header("content-type", &content_type())
        .body(multipart_body(&[TestPart("a", None, None, &data)]))
        .send()
        .await;
    assert_eq!(res.status(), 413, "{}", res.text());
    assert_eq!(
        res.json::<Value>(),
        json!({"detail": "Request body too large"})
    );
    // Streamed without a length: noticed while reading.
    let body = multipart_body(&[TestPart("a", None, None, &data)]);
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = body
        .chunks(1000)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    let res = client
        .post("/parts")
        .header("content-type", &content_type())
        .body(ferrapi::axum::body::Body::from_stream(
            futures_util::stream::iter(chunks),
        ))
        .send()
        .await;
    assert_eq!(res.status(), 413, "{}", res.text());
    assert_eq!(
        res.json::<Value>(),
        json!({"detail": "Request body too large"})
    );
}

#[tokio::test]
async fn a_missing_part_is_422_in_fastapis_shape() {
    let dir = TempDir::new();
    let client = TestClient::new(app(&dir));
    let expected = json!({"detail": [{
        "type": "missing", "loc": ["body", "file"], "msg": "Field required", "input": null
    }]});
    // Other parts only.
    let res = send(
        &client,
        "/avatars/a.png",
        &[TestPart("avatar", Some("me.png"), Some("image/png"), b"x")],
    )
    .await;
    assert_eq!(res.status(), 422, "{}", res.text());
    assert_eq!(res.json::<Value>(), expected);
    // No part at all.
    let res = send(&client, "/avatars/a.png", &[]).await;
    assert_eq!(res.status(), 422, "{}", res.text());
    assert_eq!(res.json::<Value>(), expected);
    // Not multipart: FastAPI reports the form's fields missing, gathered
    // with the other parameters' errors.
    let res = client
        .put("/avatars/a.png")
        .json(&json!({"file": "x"}))
        .send()
        .await;
    assert_eq!(res.status(), 422, "{}", res.text());
    assert_eq!(res.json::<Value>(), expected);
    assert!(dir.entries().is_empty());
}

#[tokio::test]
async fn parts_are_handed_over_in_order_with_their_metadata() {
    let dir = TempDir::new();
    let client = TestClient::new(app(&dir));
    let res = client
        .post("/parts")
        .header("content-type", &content_type())
        .body(multipart_body(&[
            TestPart("note", None, None, b"hello"),
            TestPart(
                "doc",
                Some("r.pdf"),
                Some("application/pdf; x=1"),
                &[0u8; 300],
            ),
        ]))
        .send()
        .await;
    assert_eq!(res.status(), 200, "{}", res.text());
    assert_eq!(
        res.json::<Value>(),
        json!([
            {"name": "note", "file_name": null, "content_type": null, "size": 5},
            {"name": "doc", "file_name": "r.pdf", "content_type": "application/pdf", "size": 300}
        ])
    );
    // A bare `Multipart` refuses a body that is not multipart with 415.
    let res = client.post("/parts").json(&json!({})).send().await;
    assert_eq!(res.status(), 415, "{}", res.text());
    // A truncated body is a 400.
    let mut body = multipart_body(&[TestPart("a", None, None, b"abc")]);
    body.truncate(body.len() - 10);
    let res = client
        .post("/parts")
        .header("content-type", &content_type())
        .body(body)
        .send()
        .await;
    assert_eq!(res.status(), 400, "{}", res.text());
    assert_eq!(
        res.json::<Value>(),
        json!({"detail": "There was an error parsing the body"})
    );
}

#[tokio::test]
async fn text_parts_and_their_limits() {
    let dir = TempDir::new();
    let client = TestClient::new(app(&dir));
    let res = send(
        &client,
        "/big/f.bin",
        &[
            TestPart("caption", None, None, "ünïcode".as_bytes()),
            TestPart("file", Some("f.bin"), None, b"0123456789"),
        ],
    )
    .await;
    assert_eq!(res.status(), 200, "{}", res.text());
    assert_eq!(
        res.json::<Value>(),
        json!({"size": 10, "caption": "ünïcode"})
    );
    let res = send(
        &client,
        "/big/g.bin",
        &[
            TestPart("file", Some("g.bin"), None, b"x"),
            TestPart("caption", None, None, b"\xff\xfe"),
        ],
    )
    .await;
    assert_eq!(res.status(), 422, "{}", res.text());
    assert_eq!(res.json::<Value>()["detail"][0]["type"], "string_unicode");
    assert_eq!(
        res.json::<Value>()["detail"][0]["loc"],
        json!(["body", "caption"])
    );
    let long = vec![b'a'; 1025];
    let res = send(
        &client,
        "/big/h.bin",
        &[
            TestPart("file", None, None, b"x"),
            TestPart("caption", None, None, &long),
        ],
    )
    .await;
    assert_eq!(res.status(), 413, "{}", res.text());
}

#[test]
fn the_openapi_document_describes_a_multipart_body_with_binary_parts() {
    let dir = TempDir::new();
    let built = app(&dir).build().unwrap();
    let doc = serde_json::to_value(built.openapi()).unwrap();
    let op = &doc["paths"]["/avatars/{name}"]["put"];
    assert_eq!(
        op["requestBody"],
        json!({
            "content": {"multipart/form-data": {"schema": {"$ref": "#/components/schemas/AvatarUpload"}}},
            "required": true
        })
    );
    assert_eq!(
        doc["components"]["schemas"]["AvatarUpload"],
        json!({
            "type": "object",
            "title": "AvatarUpload",
            "properties": {"file": {
                "type": "string", "format": "binary", "contentMediaType": "application/octet-stream",
                "title": "File",
                "description": "The new avatar. Accepted content types: image/png, image/jpeg. At most 5242880 bytes."
            }},
            "required": ["file"]
        })
    );
    for status in ["413", "415", "422"] {
        assert!(
            op["responses"].get(status).is_some(),
            "{status}: {}",
            op["responses"]
        );
    }
    assert_eq!(
        doc["components"]["schemas"]["BigUpload"]["properties"]["caption"],
        json!({"type": "string", "title": "Caption", "description": "At most 1024 bytes."})
    );
    assert_eq!(
        doc["components"]["schemas"]["BigUpload"]["required"],
        json!(["file"])
    );
    assert_eq!(
        doc["paths"]["/parts"]["post"]["requestBody"],
        json!({
            "content": {"multipart/form-data": {"schema": {
                "type": "object",
                "additionalProperties": {
                    "type": "string", "format": "binary",
                    "contentMediaType": "application/octet-stream"
                }
            }}},
            "required": false
        })
    );
}

/// The resident set size of this process, in bytes.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    kib * 1024
}

/// The test content's byte at offset `i` (not constant, so that a
/// misplaced chunk shows).
fn content_byte(i: u64) -> u8 {
    (i % 251) as u8
}

const CHILD_ENV: &str = "FERRAPI_UPLOAD_RSS_CHILD";

/// Memory is measured in a process of its own: the other tests of this
/// binary run in parallel and would move the RSS.
#[test]
fn a_50_mib_upload_streams_to_a_file_with_rss_growing_less_than_10_mib() {
    if std::env::var_os(CHILD_ENV).is_none() {
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args([
                "--exact",
                "uploads::a_50_mib_upload_streams_to_a_file_with_rss_growing_less_than_10_mib",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
        assert!(
            stdout.contains("rss growth"),
            "the child did not measure:\n{stdout}"
        );
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(upload_50_mib());
}

async fn upload_50_mib() {
    const SIZE: u64 = 50 * MIB;
    const CHUNK: usize = 64 * 1024;
    let dir = TempDir::new();
    let server = TestServer::start(app(&dir)).await;
    // Warm up: the first request allocates the server's and runtime's
    // buffers, which are not the upload's cost.
    upload(server.addr(), "warm.bin", 4 * MIB, CHUNK).await;
    let before = rss_bytes();
    let peak = std::sync::Arc::new(AtomicU64::new(before));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_bytes(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let response = upload(server.addr(), "big.bin", SIZE, CHUNK).await;
    sampler.abort();
    let after = rss_bytes();
    peak.fetch_max(after, Ordering::Relaxed);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains(&format!("{{\"size\":{SIZE},\"caption\":\"big\"}}")),
        "{response}"
    );
    // The file holds exactly what was sent.
    let path = dir.0.join("big.bin");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), SIZE);
    let mut file = tokio::fs::File::open(&path).await.unwrap();
    let mut buf = vec![0u8; CHUNK];
    let mut offset = 0u64;
    loop {
        let n = file.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        for (i, b) in buf[..n].iter().enumerate() {
            assert_eq!(
                *b,
                content_byte(offset + i as u64),
                "byte {}",
                offset + i as u64
            );
        }
        offset += n as u64;
    }
    assert_eq!(offset, SIZE);
    let growth = peak.load(Ordering::Relaxed).saturating_sub(before);
    println!(
        "rss growth: {:.1} MiB (before {:.1} MiB, peak {:.1} MiB, after {:.1} MiB)",
        growth as f64 / MIB as f64,
        before as f64 / MIB as f64,
        peak.load(Ordering::Relaxed) as f64 / MIB as f64,
        after as f64 / MIB as f64
    );
    assert!(growth < 10 * MIB, "RSS grew by {growth} bytes");
    server.stop().await.unwrap();
}

/// Sends a multipart upload of `size` generated bytes over a real socket,
/// `chunk` bytes per write (the body is never in memory), and returns the
/// response's head and body.
async fn upload(addr: std::net::SocketAddr, name: &str, size: u64, chunk: usize) -> String {
    let caption = TestPart("caption", None, None, b"big");
    let file_head = part_head(&TestPart(
        "file",
        Some(name),
        Some("application/octet-stream"),
        b"",
    ));
    let mut first = Vec::new();
    first.extend(part_head(&caption));
    first.extend_from_slice(caption.3);
    first.extend_from_slice(b"\r\n");
    first.extend(file_head);
    let tail = format!("\r\n--{BOUNDARY}--\r\n").into_bytes();
    let length = first.len() as u64 + size + tail.len() as u64;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PUT /big/{name} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n",
        content_type()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&first).await.unwrap();
    let mut buf = vec![0u8; chunk];
    let mut sent = 0u64;
    while sent < size {
        let n = chunk.min((size - sent) as usize);
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = content_byte(sent + i as u64);
        }
        stream.write_all(&buf[..n]).await.unwrap();
        sent += n as u64;
    }
    stream.write_all(&tail).await.unwrap();
    let mut response = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    tokio::time::timeout_at(deadline.into(), stream.read_to_end(&mut response))
        .await
        .expect("no response within 60 s")
        .unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

/// A storage API of the usual shape: any fallible byte stream, its error
/// boxed (as ferrapi-storage's `FileStore::put` and object stores take it).
async fn store_stream<S, E>(mut body: S) -> Result<usize, Box<dyn std::error::Error + Send + Sync>>
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use futures_util::StreamExt as _;
    let mut size = 0;
    while let Some(chunk) = body.next().await {
        size += chunk.map_err(Into::into)?.len();
    }
    Ok(size)
}

/// The part streamed into a storage API; its failure is found again in the
/// storage error and answered with its own status.
#[put("/stored", status = 201)]
async fn put_stored(mut form: Multipart<AvatarUpload>) -> Result<Text, HttpError> {
    let field = form.field("file").await?;
    match store_stream(Box::pin(field.into_stream())).await {
        Ok(size) => Ok(Text(size.to_string())),
        Err(e) => match e.downcast::<ferrapi::extract::MultipartError>() {
            Ok(multipart) => Err((*multipart).into()),
            Err(other) => Err(HttpError::new(
                ferrapi::http::StatusCode::BAD_GATEWAY,
                other.to_string(),
            )),
        },
    }
}

/// A handler whose error type is `MultipartError` itself.
#[put("/direct", status = 204)]
async fn put_direct(
    mut form: Multipart<AvatarUpload>,
) -> Result<NoContent, ferrapi::extract::MultipartError> {
    let field = form.field("file").await?;
    field.bytes().await?;
    Ok(NoContent)
}

#[tokio::test]
async fn multipart_errors_keep_their_status_through_storage_apis_and_exception_handlers() {
    let over = vec![1u8; 5 * MIB as usize + 10];
    let png = [TestPart("file", Some("a.png"), Some("image/png"), b"png!")];
    let big = [TestPart("file", Some("a.png"), Some("image/png"), &over)];
    let gif = [TestPart("file", Some("a.gif"), Some("image/gif"), b"gif")];
    let client = TestClient::new(App::new().route(put_stored).route(put_direct));
    let res = send(&client, "/stored", &png).await;
    assert_eq!((res.status().as_u16(), res.text()), (201, "4".to_owned()));
    let res = send(&client, "/stored", &big).await;
    assert_eq!(res.status(), 413, "{}", res.text());
    assert_eq!(
        res.json::<Value>(),
        json!({"detail": "Part `file` is larger than 5242880 bytes"})
    );
    let res = send(&client, "/direct", &png).await;
    assert_eq!(res.status(), 204, "{}", res.text());
    let res = send(&client, "/direct", &gif).await;
    assert_eq!(res.status(), 415, "{}", res.text());
    let res = send(&client, "/direct", &[]).await;
    assert_eq!(res.status(), 422, "{}", res.text());

    // An exception handler for `HttpError` shapes multipart errors too.
    let dir = TempDir::new();
    let app = app(&dir).exception_handler(|e: &HttpError| {
        ferrapi::axum::response::IntoResponse::into_response((
            e.status(),
            format!("custom: {}", e.detail()),
        ))
    });
    let client = TestClient::new(app);
    let res = send(&client, "/avatars/x.png", &gif).await;
    assert_eq!(res.status(), 415);
    assert!(res.text().starts_with("custom: "), "{}", res.text());
}

/// Over a real socket, a client that sends a too-large upload in full
/// before reading still gets the 413: refused up front (`Content-Length`)
/// and mid-stream (chunked, the part's limit crossed while reading). The
/// server answers and closes; the client's remaining writes fail, the
/// answer is still there to read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_upload_is_answered_over_a_socket() {
    let dir = TempDir::new();
    let server = TestServer::start(app(&dir)).await;
    let over = vec![7u8; 6 * MIB as usize];
    let body = multipart_body(&[TestPart("file", Some("x.png"), Some("image/png"), &over)]);
    for chunked in [false, true] {
        let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
        let framing = if chunked {
            "Transfer-Encoding: chunked".to_owned()
        } else {
            format!("Content-Length: {}", body.len())
        };
        let head = format!(
            "PUT /avatars/x.png HTTP/1.1\r\nHost: t\r\nContent-Type: {}\r\n{framing}\r\n\r\n",
            content_type()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        // The client sends everything before reading; writes fail once
        // the server has answered and closed.
        let mut write_error = None;
        for piece in body.chunks(64 * 1024) {
            let result = if chunked {
                let mut framed = format!("{:x}\r\n", piece.len()).into_bytes();
                framed.extend_from_slice(piece);
                framed.extend_from_slice(b"\r\n");
                stream.write_all(&framed).await
            } else {
                stream.write_all(piece).await
            };
            if let Err(e) = result {
                write_error = Some(e);
                break;
            }
        }
        if write_error.is_none() && chunked {
            let _ = stream.write_all(b"0\r\n\r\n").await;
        }
        let mut response = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await;
        let text = String::from_utf8_lossy(&response);
        assert!(
            text.starts_with("HTTP/1.1 413"),
            "chunked={chunked} write={write_error:?} read={read:?}: {text}"
        );
    }
    assert!(dir.entries().is_empty(), "{:?}", dir.entries());
}

/// A request dropped mid-upload (the connection closed, the server drops
/// the handler's future) leaves no temporary file behind.
#[tokio::test]
async fn a_cancelled_upload_leaves_nothing_behind() {
    let dir = TempDir::new();
    let client = TestClient::new(app(&dir));
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
    let head = part_head(&TestPart("file", Some("x.png"), Some("image/png"), b""));
    tx.send(Ok(head.into())).await.unwrap();
    tx.send(Ok(vec![1u8; 100_000].into())).await.unwrap();
    let body = ferrapi::axum::body::Body::from_stream(tokio_stream_from(rx));
    let request = client
        .put("/avatars/x.png")
        .header("content-type", &content_type())
        .body(body);
    let sending = tokio::spawn(request.send());
    // Wait until the part is being written to its temporary file.
    let deadline = Instant::now() + Duration::from_secs(10);
    while dir.entries().is_empty() {
        assert!(Instant::now() < deadline, "the upload never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        dir.entries()[0].starts_with(".x.png.upload-"),
        "{:?}",
        dir.entries()
    );
    sending.abort();
    let _ = sending.await;
    assert!(dir.entries().is_empty(), "left behind: {:?}", dir.entries());
    drop(tx);
}

/// A body stream fed from a channel (the client still "sending").
fn tokio_stream_from(
    rx: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}
