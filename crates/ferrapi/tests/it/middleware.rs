//! The middleware layers: request id, timing, security headers, CORS,
//! compression, rate limiting, client address, custom `async fn`
//! middleware, the default stack's order, JWT and passwords.

use bytes::Bytes;
use ferrapi::axum::body::Body;
use ferrapi::axum::response::IntoResponse;
use ferrapi::http::{HeaderValue, Request, StatusCode};
use ferrapi::middleware::{
    BoxFuture, ClientIp, ClientIpLayer, CompressionLayer, CorsConfig, CorsConfigError, Decision,
    FailMode, Next, Quota, RateLimitKey, RateLimitLayer, RateLimitStore, RateLimitStoreError,
    RequestId, RequestIdLayer, SecurityHeadersLayer, Stack, TimingLayer, TrustedProxies, from_fn,
};
use ferrapi::prelude::*;
use ferrapi::testing::{TestClient, TestServer};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;

#[get("/hello")]
async fn hello() -> Json<Value> {
    Json(json!({"hello": "world"}))
}

#[get("/id")]
async fn echo_id(id: RequestId) -> String {
    id.to_string()
}

#[get("/big")]
async fn big() -> Json<Value> {
    Json(json!({ "items": (0..200).map(|i| format!("item number {i}")).collect::<Vec<_>>() }))
}

#[get("/png")]
async fn png() -> Response {
    ([("content-type", "image/png")], vec![7u8; 4096]).into_response()
}

#[get("/health/live")]
async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

#[get("/manual")]
async fn docs() -> Html<&'static str> {
    Html("<html></html>")
}

#[get("/manualx")]
async fn docsx() -> &'static str {
    "not the docs"
}

#[get("/boom")]
async fn boom() -> &'static str {
    panic!("boom")
}

#[get("/ip")]
async fn ip(ClientIp(ip): ClientIp) -> String {
    ip.to_string()
}

#[get("/framed")]
async fn framed() -> Response {
    ([("x-frame-options", "SAMEORIGIN")], "framed").into_response()
}

type Response = ferrapi::axum::response::Response;

fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A route that needs a bearer token (401 without): preflights must not
/// reach it.
#[get("/private")]
async fn private(ferrapi::security::HttpBearer(_t): ferrapi::security::HttpBearer) -> &'static str {
    "secret"
}

fn routes() -> App {
    App::new()
        .route(hello)
        .route(echo_id)
        .route(big)
        .route(png)
        .route(live)
        .route(docs)
        .route(docsx)
        .route(boom)
        .route(ip)
        .route(framed)
        .route(private)
}

/// Sends a hand-built request (any header bytes) through `app`, as the
/// server would (with a peer address).
async fn raw(app: App, mut req: Request<Body>) -> (http::response::Parts, Bytes) {
    req.extensions_mut()
        .insert(ferrapi::axum::extract::ConnectInfo(SocketAddr::from((
            [127, 0, 0, 1],
            1,
        ))));
    let res = app.into_router().unwrap().oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    (parts, body.collect().await.unwrap().to_bytes())
}

fn is_uuid_v4(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 36
        && [8, 13, 18, 23].iter().all(|&i| b[i] == b'-')
        && s.chars()
            .enumerate()
            .all(|(i, c)| [8, 13, 18, 23].contains(&i) || matches!(c, '0'..='9' | 'a'..='f'))
        && b[14] == b'4'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b')
}

// ---------------------------------------------------------------- request id

#[tokio::test]
async fn request_id_is_echoed_when_sane() {
    let client = TestClient::new(routes().layer(RequestIdLayer::new()));
    for id in ["abc-123", "x", &"y".repeat(128), "!#$%&'*+.^_`|~"] {
        let res = client.get("/id").header("x-request-id", id).send().await;
        assert_eq!(res.header("x-request-id"), Some(id));
        // The handler saw the same id.
        assert_eq!(res.text(), id);
    }
}

#[tokio::test]
async fn request_id_is_generated_when_missing_or_not_sane() {
    let app = || routes().layer(RequestIdLayer::new());
    let res = TestClient::new(app()).get("/id").send().await;
    let id = res.header("x-request-id").unwrap().to_owned();
    assert!(is_uuid_v4(&id), "{id}");
    assert_eq!(res.text(), id);

    let long = "z".repeat(4096);
    let insane: Vec<&[u8]> = vec![
        long.as_bytes(),
        &[b'y'; 129],
        b"has space",
        "caf\u{e9}".as_bytes(),
        b"tab\there",
    ];
    for bad in insane {
        let req = Request::get("/id")
            .header("x-request-id", HeaderValue::from_bytes(bad).unwrap())
            .body(Body::empty())
            .unwrap();
        let (parts, body) = raw(app(), req).await;
        let id = parts.headers["x-request-id"].to_str().unwrap();
        assert!(is_uuid_v4(id), "{bad:?} gave {id}");
        assert_eq!(body, id.as_bytes());
    }
    // Two requests, two ids.
    let a = TestClient::new(app()).get("/id").send().await.text();
    let b = TestClient::new(app()).get("/id").send().await.text();
    assert_ne!(a, b);
}

#[tokio::test]
async fn request_id_can_ignore_incoming_ids_and_use_another_header() {
    let app = routes().layer(
        RequestIdLayer::new()
            .header(http::HeaderName::from_static("x-correlation-id"))
            .trust_incoming(false),
    );
    let res = TestClient::new(app)
        .get("/id")
        .header("x-correlation-id", "client-chosen")
        .send()
        .await;
    let id = res.header("x-correlation-id").unwrap();
    assert!(is_uuid_v4(id), "{id}");
    assert!(res.header("x-request-id").is_none());
}

#[tokio::test]
async fn request_id_extractor_without_the_layer_is_a_500() {
    let res = TestClient::new(routes()).get("/id").send().await;
    assert_eq!(res.status(), 500);
    assert_eq!(
        res.json::<Value>(),
        json!({"detail": "Internal Server Error"})
    );
}

/// Captures the JSON log lines written while `f` runs.
#[derive(Clone, Default)]
pub(crate) struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    pub(crate) fn lines(&self) -> Vec<Value> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

#[get("/logs")]
async fn logs_something() -> &'static str {
    tracing::info!("inside the handler");
    "ok"
}

#[tokio::test]
async fn log_lines_of_a_request_carry_its_id() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let client = TestClient::new(Stack::defaults().apply(routes().route(logs_something)));
    let res = client
        .get("/logs")
        .header("x-request-id", "req-42")
        .send()
        .await;
    assert_eq!(res.status(), 200);
    // A panic is logged inside the request's span too, and its 500 still
    // passes through the stack.
    let res = client
        .get("/boom")
        .header("x-request-id", "req-43")
        .send()
        .await;
    assert_eq!(res.status(), 500);
    assert_eq!(res.header("x-request-id"), Some("req-43"));
    assert_eq!(res.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        res.json::<Value>(),
        json!({"detail": "Internal Server Error"})
    );

    let lines = logs.lines();
    let find = |msg: &str| {
        lines
            .iter()
            .find(|l| l["fields"]["message"] == msg)
            .unwrap_or_else(|| panic!("no `{msg}` line in {lines:?}"))
            .clone()
    };
    let line = find("inside the handler");
    assert_eq!(line["span"]["request_id"], "req-42", "{line}");
    assert_eq!(line["span"]["path"], "/logs", "{line}");
    let line = find("handler panicked");
    assert_eq!(line["span"]["request_id"], "req-43", "{line}");
}

// -------------------------------------------------------------------- timing

#[get("/slow")]
async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_millis(30)).await;
    "slow"
}

#[tokio::test]
async fn process_time_is_a_plain_decimal_in_seconds() {
    let app = routes()
        .route(slow)
        .layer(TimingLayer::new().server_timing(true));
    let client = TestClient::new(app);
    let res = client.get("/hello").send().await;
    let t = res.header("x-process-time").unwrap();
    let (int, frac) = t.split_once('.').unwrap();
    assert!(
        int.chars().all(|c| c.is_ascii_digit())
            && frac.len() == 6
            && frac.chars().all(|c| c.is_ascii_digit()),
        "{t}"
    );
    assert!(t.parse::<f64>().unwrap() < 1.0, "{t}");
    let res = client.get("/slow").send().await;
    let t: f64 = res.header("x-process-time").unwrap().parse().unwrap();
    assert!((0.030..5.0).contains(&t), "{t}");
    let st = res.header("server-timing").unwrap();
    let ms: f64 = st.strip_prefix("app;dur=").unwrap().parse().unwrap();
    assert!((ms / 1000.0 - t).abs() < 0.01, "{st} vs {t}");
    // Also on errors.
    let res = client.get("/nowhere").send().await;
    assert_eq!(res.status(), 404);
    assert!(res.header("x-process-time").is_some());
    // Server-Timing is opt-in.
    let res = TestClient::new(routes().layer(TimingLayer::new()))
        .get("/hello")
        .send()
        .await;
    assert!(res.header("server-timing").is_none());
}

// ---------------------------------------------------------- security headers

#[tokio::test]
async fn security_headers_on_every_response_except_exempt_paths() {
    let app = routes().layer(SecurityHeadersLayer::new().exempt("/manual"));
    let client = TestClient::new(app);
    for (path, status) in [
        ("/hello", 200),
        ("/nowhere", 404),
        ("/manualx", 200),
        ("/private", 401),
    ] {
        let res = client.get(path).send().await;
        assert_eq!(res.status(), status, "{path}");
        assert_eq!(
            res.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(res.header("x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(res.header("referrer-policy"), Some("no-referrer"), "{path}");
        assert!(res.header("strict-transport-security").is_none());
    }
    let res = client.get("/manual").send().await;
    assert_eq!(res.status(), 200);
    assert!(res.header("x-frame-options").is_none());
    assert!(res.header("x-content-type-options").is_none());
    // What the handler set wins.
    let res = client.get("/framed").send().await;
    assert_eq!(res.header("x-frame-options"), Some("SAMEORIGIN"));
}

#[tokio::test]
async fn security_headers_are_configurable() {
    use ferrapi::middleware::{FrameOptions, ReferrerPolicy};
    let layer = SecurityHeadersLayer::new()
        .frame_options(Some(FrameOptions::SameOrigin))
        .referrer_policy(Some(ReferrerPolicy::StrictOriginWhenCrossOrigin))
        .hsts(Some(Duration::from_secs(31_536_000)), true)
        .content_security_policy(Some(HeaderValue::from_static("default-src 'none'")))
        .nosniff(false);
    let res = TestClient::new(routes().layer(layer))
        .get("/hello")
        .send()
        .await;
    assert_eq!(res.header("x-frame-options"), Some("SAMEORIGIN"));
    assert_eq!(
        res.header("referrer-policy"),
        Some("strict-origin-when-cross-origin")
    );
    assert_eq!(
        res.header("strict-transport-security"),
        Some("max-age=31536000; includeSubDomains")
    );
    assert_eq!(
        res.header("content-security-policy"),
        Some("default-src 'none'")
    );
    assert!(res.header("x-content-type-options").is_none());
}

// ---------------------------------------------------------------------- CORS

fn cors_app(config: CorsConfig) -> TestClient {
    TestClient::new(routes().layer(config.build().unwrap()))
}

#[tokio::test]
async fn allowed_preflight_is_answered_before_authentication() {
    let client = cors_app(
        CorsConfig::new()
            .allow_origins(["https://app.example.com"])
            .allow_methods(["GET", "POST"])
            .allow_headers(["authorization"])
            .allow_credentials(true)
            .max_age(Duration::from_secs(3600))
            .expose_headers(["x-request-id"]),
    );
    let res = client
        .request(http::Method::OPTIONS, "/private")
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "GET")
        .header(
            "access-control-request-headers",
            "Authorization, Content-Type",
        )
        .send()
        .await;
    assert_eq!(res.status(), 200, "{}", res.text());
    assert_eq!(
        res.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(res.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(res.header("access-control-max-age"), Some("3600"));
    let methods = res.header("access-control-allow-methods").unwrap();
    assert!(
        methods.contains("GET") && methods.contains("POST"),
        "{methods}"
    );
    let headers = res.header("access-control-allow-headers").unwrap();
    assert!(headers.contains("authorization"), "{headers}");
    assert!(res.header("vary").unwrap().contains("origin"));

    // The actual request: allowed origin echoed, exposed headers listed.
    let res = client
        .get("/hello")
        .header("origin", "https://app.example.com")
        .send()
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(
        res.header("access-control-expose-headers"),
        Some("x-request-id")
    );
}

#[tokio::test]
async fn refused_preflights_are_400_json_without_allow_origin() {
    let client = cors_app(
        CorsConfig::new()
            .allow_origins(["https://app.example.com"])
            .allow_methods(["GET"])
            .allow_headers(["x-api-key"]),
    );
    let preflight = |origin: &'static str, method: &'static str, headers: &'static str| {
        let mut req = client
            .request(http::Method::OPTIONS, "/hello")
            .header("origin", origin)
            .header("access-control-request-method", method);
        if !headers.is_empty() {
            req = req.header("access-control-request-headers", headers);
        }
        req.send()
    };
    let cases = [
        (
            "https://evil.example.net",
            "GET",
            "",
            "Disallowed CORS origin",
        ),
        (
            "https://app.example.com",
            "DELETE",
            "",
            "Disallowed CORS method",
        ),
        (
            "https://app.example.com",
            "GET",
            "x-api-key, x-other",
            "Disallowed CORS headers",
        ),
        (
            "https://evil.example.net",
            "PUT",
            "",
            "Disallowed CORS origin, method",
        ),
    ];
    for (origin, method, headers, detail) in cases {
        let res = preflight(origin, method, headers).await;
        assert_eq!(res.status(), 400, "{origin} {method} {headers}");
        assert_eq!(res.header("content-type"), Some("application/json"));
        assert_eq!(res.json::<Value>(), json!({ "detail": detail }));
        assert!(res.header("access-control-allow-origin").is_none());
    }
    // Safelisted request headers are always allowed.
    let res = preflight("https://app.example.com", "GET", "content-type, X-API-Key").await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn refused_origins_get_no_allow_origin_on_simple_requests() {
    let client = cors_app(
        CorsConfig::new().allow_origin_list("https://a.example.com, https://b.example.com"),
    );
    let res = client
        .get("/hello")
        .header("origin", "https://evil.example.net")
        .send()
        .await;
    // The server answers; the browser keeps the answer from the page.
    assert_eq!(res.status(), 200);
    assert!(res.header("access-control-allow-origin").is_none());
    let res = client
        .get("/hello")
        .header("origin", "https://b.example.com")
        .send()
        .await;
    assert_eq!(
        res.header("access-control-allow-origin"),
        Some("https://b.example.com")
    );
    // Same-origin or non-browser requests (no Origin) are served as usual.
    let res = client.get("/hello").send().await;
    assert_eq!(res.status(), 200);
    assert!(res.header("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn origin_regex_and_wildcard() {
    let client = cors_app(
        CorsConfig::new().allow_origin_regex(r"https://[a-z0-9-]+\.preview\.example\.com"),
    );
    let ok = client
        .get("/hello")
        .header("origin", "https://pr-12.preview.example.com")
        .send()
        .await;
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://pr-12.preview.example.com")
    );
    let no = client
        .get("/hello")
        .header("origin", "https://pr-12.preview.example.com.evil.net")
        .send()
        .await;
    assert!(no.header("access-control-allow-origin").is_none());

    let client = cors_app(CorsConfig::new().allow_any_origin());
    let res = client
        .request(http::Method::OPTIONS, "/hello")
        .header("origin", "https://anyone.example")
        .header("access-control-request-method", "PATCH")
        .send()
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.header("access-control-allow-origin"), Some("*"));
    assert_eq!(res.header("access-control-allow-methods"), Some("*"));
}

#[test]
fn wildcard_origin_with_credentials_is_refused_when_built() {
    let err = CorsConfig::new()
        .allow_origin_list("https://a.example.com,*")
        .allow_credentials(true)
        .build()
        .unwrap_err();
    assert!(matches!(err, CorsConfigError::WildcardWithCredentials));
    assert!(err.to_string().contains("credentials"), "{err}");
    let err = CorsConfig::new()
        .allow_origins(["https://a.example.com/"])
        .build()
        .unwrap_err();
    assert!(
        matches!(err, CorsConfigError::InvalidOrigin { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn any_method_and_header_with_credentials_mirror_the_request() {
    let client = cors_app(
        CorsConfig::new()
            .allow_origins(["https://app.example.com"])
            .allow_credentials(true),
    );
    let res = client
        .request(http::Method::OPTIONS, "/hello")
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "PATCH")
        .header("access-control-request-headers", "x-custom")
        .send()
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.header("access-control-allow-methods"), Some("PATCH"));
    assert_eq!(res.header("access-control-allow-headers"), Some("x-custom"));
    assert_eq!(res.header("access-control-allow-credentials"), Some("true"));
}

#[tokio::test]
async fn plain_options_requests_reach_the_application() {
    let client = cors_app(CorsConfig::new().allow_any_origin());
    // No Access-Control-Request-Method: not a preflight; the route has no
    // OPTIONS handler, so the application answers 405.
    let res = client
        .request(http::Method::OPTIONS, "/hello")
        .header("origin", "https://app.example.com")
        .send()
        .await;
    assert_eq!(res.status(), 405);
    assert_eq!(res.json::<Value>(), json!({"detail": "Method Not Allowed"}));
}

// --------------------------------------------------------------- compression

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn unbrotli(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli_decompressor::Decompressor::new(bytes, 4096)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[tokio::test]
async fn compression_negotiation_matrix() {
    let client = TestClient::new(routes().layer(CompressionLayer::new()));
    let plain = client.get("/big").send().await;
    assert!(
        plain.bytes().len() >= 1024,
        "the test body must be over 1 KiB"
    );
    assert!(plain.header("content-encoding").is_none());
    assert_eq!(plain.header("vary"), Some("accept-encoding"));

    // (Accept-Encoding, expected Content-Encoding)
    let matrix = [
        ("gzip", Some("gzip")),
        ("br", Some("br")),
        ("gzip, br", Some("br")),
        ("br;q=0.5, gzip;q=0.9", Some("gzip")),
        ("gzip;q=0, br;q=0.1", Some("br")),
        ("deflate", None),
        ("zstd", None),
        ("identity", None),
        ("*", Some("br")),
        ("gzip;q=0, br;q=0", None),
        ("*;q=0", None),
        ("identity;q=0", None),
        ("*;q=0, identity;q=0", None),
    ];
    for (accept, expected) in matrix {
        let res = client
            .get("/big")
            .header("accept-encoding", accept)
            .send()
            .await;
        // Never 406: an uncompressed answer rather than an error.
        assert_eq!(res.status(), 200, "{accept}");
        assert_eq!(res.header("content-encoding"), expected, "{accept}");
        let body = match expected {
            Some("gzip") => gunzip(res.bytes()),
            Some("br") => unbrotli(res.bytes()),
            _ => res.bytes().to_vec(),
        };
        assert_eq!(body, plain.bytes(), "{accept}");
        if expected.is_some() {
            assert!(res.bytes().len() < plain.bytes().len() / 2);
            assert!(res.header("vary").unwrap().contains("accept-encoding"));
        }
    }
}

#[tokio::test]
async fn accept_encoding_over_several_lines_is_one_list() {
    let client = TestClient::new(routes().layer(CompressionLayer::new()));
    let res = client
        .get("/big")
        .header("accept-encoding", "br;q=0")
        .header("accept-encoding", "gzip")
        .send()
        .await;
    assert_eq!(res.header("content-encoding"), Some("gzip"));
    let plain = client.get("/big").send().await;
    assert_eq!(gunzip(res.bytes()), plain.bytes());
}

#[tokio::test]
async fn small_and_precompressed_bodies_are_sent_as_they_are() {
    let client = TestClient::new(routes().layer(CompressionLayer::new()));
    let res = client
        .get("/hello")
        .header("accept-encoding", "gzip, br")
        .send()
        .await;
    assert!(res.bytes().len() < 1024);
    assert!(res.header("content-encoding").is_none());
    assert_eq!(res.json::<Value>(), json!({"hello": "world"}));
    let res = client
        .get("/png")
        .header("accept-encoding", "gzip")
        .send()
        .await;
    assert!(res.header("content-encoding").is_none());
    assert_eq!(res.bytes().len(), 4096);
    // An error status is kept when no encoding is acceptable.
    let res = client
        .get("/nowhere")
        .header("accept-encoding", "*;q=0")
        .send()
        .await;
    assert_eq!(res.status(), 404);
    // The threshold is configurable.
    let client = TestClient::new(routes().layer(CompressionLayer::new().min_size(8)));
    let res = client
        .get("/hello")
        .header("accept-encoding", "gzip")
        .send()
        .await;
    assert_eq!(res.header("content-encoding"), Some("gzip"));
    assert_eq!(gunzip(res.bytes()), br#"{"hello":"world"}"#);
}

// ------------------------------------------------------------ rate limiting

fn quota(s: &str) -> Quota {
    s.parse().unwrap()
}

#[tokio::test(start_paused = true)]
async fn n_allowed_then_429_then_reset_after_the_window() {
    let client = TestClient::new(routes().layer(RateLimitLayer::new(quota("3/1s"))));
    for remaining in ["2", "1", "0"] {
        let res = client.get("/hello").send().await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.header("ratelimit-limit"), Some("3"));
        assert_eq!(res.header("ratelimit-remaining"), Some(remaining));
        let reset: u64 = res.header("ratelimit-reset").unwrap().parse().unwrap();
        assert!((1..=1).contains(&reset), "{reset}");
        assert_eq!(res.header("ratelimit-policy"), Some("3;w=1"));
    }
    let res = client.get("/hello").send().await;
    assert_eq!(res.status(), 429);
    assert_eq!(res.header("content-type"), Some("application/json"));
    assert_eq!(res.json::<Value>(), json!({"detail": "Too Many Requests"}));
    assert_eq!(res.header("retry-after"), Some("1"));
    assert_eq!(res.header("ratelimit-remaining"), Some("0"));
    tokio::time::advance(Duration::from_secs(1)).await;
    for _ in 0..3 {
        assert_eq!(client.get("/hello").send().await.status(), 200);
    }
    assert_eq!(client.get("/hello").send().await.status(), 429);
}

#[tokio::test(start_paused = true)]
async fn reset_is_whole_seconds_within_the_window() {
    let client = TestClient::new(routes().layer(RateLimitLayer::new(quota("10/5s"))));
    let mut resets = Vec::new();
    for _ in 0..10 {
        let res = client.get("/hello").send().await;
        resets.push(
            res.header("ratelimit-reset")
                .unwrap()
                .parse::<u64>()
                .unwrap(),
        );
    }
    // One request costs half a second of the five: the full quota is back
    // 1 s after the first request, 5 s after the tenth.
    assert_eq!(resets.first(), Some(&1));
    assert_eq!(resets.last(), Some(&5));
    assert!(resets.iter().all(|r| (1..=5).contains(r)), "{resets:?}");
    let res = client.get("/hello").send().await;
    assert_eq!(res.status(), 429);
    assert_eq!(res.header("retry-after"), Some("1"));
    // Half a second later, exactly one more.
    tokio::time::advance(Duration::from_millis(500)).await;
    assert_eq!(client.get("/hello").send().await.status(), 200);
    assert_eq!(client.get("/hello").send().await.status(), 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_under_concurrency() {
    let client = TestClient::new(routes().layer(RateLimitLayer::new(quota("25/1h"))));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.get("/hello").send().await.status() })
        })
        .collect();
    let mut ok = 0;
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap().as_u16() {
            200 => ok += 1,
            429 => refused += 1,
            other => panic!("status {other}"),
        }
    }
    assert_eq!((ok, refused), (25, 75));
}

#[tokio::test]
async fn exempt_and_only_paths() {
    let limit = RateLimitLayer::new(quota("1/1h")).exempt("/health");
    let client = TestClient::new(routes().layer(limit));
    for _ in 0..5 {
        let res = client.get("/health/live").send().await;
        assert_eq!(res.status(), 200);
        assert!(res.header("ratelimit-limit").is_none());
    }
    assert_eq!(client.get("/hello").send().await.status(), 200);
    assert_eq!(client.get("/hello").send().await.status(), 429);

    // A stricter limit on one path, the global one elsewhere.
    let app = routes()
        .layer(
            RateLimitLayer::new(quota("1/1h"))
                .only("/private")
                .name("login"),
        )
        .layer(RateLimitLayer::new(quota("100/1h")).name("global"));
    let client = TestClient::new(app);
    assert_eq!(client.get("/private").send().await.status(), 401);
    assert_eq!(client.get("/private").send().await.status(), 429);
    let res = client.get("/hello").send().await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.header("ratelimit-limit"), Some("100"));
    assert_eq!(res.header("ratelimit-remaining"), Some("97"));
}

#[tokio::test]
async fn keys_from_headers_and_functions() {
    let limit = RateLimitLayer::new(quota("1/1h")).key(RateLimitKey::header(
        http::HeaderName::from_static("x-api-key"),
    ));
    let client = TestClient::new(routes().layer(limit));
    let with_key = |k: &'static str| client.get("/hello").header("x-api-key", k).send();
    assert_eq!(with_key("a").await.status(), 200);
    assert_eq!(with_key("a").await.status(), 429);
    assert_eq!(with_key("b").await.status(), 200);
    // No key: not counted by this limiter.
    assert_eq!(client.get("/hello").send().await.status(), 200);
    assert_eq!(client.get("/hello").send().await.status(), 200);

    // User id when known, else the client address.
    let key = RateLimitKey::from_fn(|parts| {
        parts
            .headers
            .get("x-user")
            .map(|u| format!("user:{}", u.to_str().unwrap_or("")))
    })
    .or(RateLimitKey::client_ip(TrustedProxies::none()));
    let client = TestClient::new(routes().layer(RateLimitLayer::new(quota("1/1h")).key(key)));
    assert_eq!(
        client
            .get("/hello")
            .header("x-user", "7")
            .send()
            .await
            .status(),
        200
    );
    assert_eq!(
        client
            .get("/hello")
            .header("x-user", "7")
            .send()
            .await
            .status(),
        429
    );
    assert_eq!(client.get("/hello").send().await.status(), 200);
    assert_eq!(client.get("/hello").send().await.status(), 429);
    assert_eq!(
        client
            .get("/hello")
            .header("x-user", "8")
            .send()
            .await
            .status(),
        200
    );
}

/// A store that is down.
struct Down;

impl RateLimitStore for Down {
    fn check<'a>(
        &'a self,
        _: &'a str,
        _: Quota,
    ) -> BoxFuture<'a, Result<Decision, RateLimitStoreError>> {
        Box::pin(async {
            Err(RateLimitStoreError::Unavailable(
                "connection refused".into(),
            ))
        })
    }
}

#[tokio::test]
async fn store_failure_fails_open_or_closed() {
    let open = TestClient::new(routes().layer(RateLimitLayer::new(quota("1/1s")).store(Down)));
    for _ in 0..3 {
        let res = open.get("/hello").send().await;
        assert_eq!(res.status(), 200);
        assert!(res.header("ratelimit-limit").is_none());
    }
    let closed = TestClient::new(
        routes().layer(
            RateLimitLayer::new(quota("1/1s"))
                .store(Down)
                .on_store_error(FailMode::Closed),
        ),
    );
    let res = closed.get("/hello").send().await;
    assert_eq!(res.status(), 503);
    assert_eq!(
        res.json::<Value>(),
        json!({"detail": "Service Unavailable"})
    );
}

#[tokio::test]
async fn one_store_shared_by_two_apps_gives_one_limit() {
    let store: Arc<dyn RateLimitStore> = Arc::new(ferrapi::middleware::MemoryStore::new());
    let layer = || RateLimitLayer::new(quota("2/1h")).shared_store(store.clone());
    let a = TestClient::new(routes().layer(layer()));
    let b = TestClient::new(routes().layer(layer()));
    assert_eq!(a.get("/hello").send().await.status(), 200);
    assert_eq!(b.get("/hello").send().await.status(), 200);
    assert_eq!(a.get("/hello").send().await.status(), 429);
    assert_eq!(b.get("/hello").send().await.status(), 429);
}

// ----------------------------------------------- client address over a socket

/// One HTTP/1.1 request over a real socket; returns (status, body).
async fn http_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
    // Nobody trusted: the peer (127.0.0.1) is the client, whatever it claims.
    let app = routes()
        .layer(RateLimitLayer::new(quota("1/1h")))
        .layer(ClientIpLayer::new(TrustedProxies::none()));
    let server = TestServer::start(app).await;
    let addr = server.addr();
    let (_, body) = http_get(addr, "/ip", &[("x-forwarded-for", "203.0.113.9")]).await;
    assert_eq!(body, "127.0.0.1");
    let (status, _) = http_get(addr, "/hello", &[("x-forwarded-for", "198.51.100.1")]).await;
    assert_eq!(status, 429, "a new forged address does not buy a new quota");
    server.stop().await.unwrap();

    // The loopback proxy trusted: its X-Forwarded-For names the client.
    let app = routes()
        .layer(RateLimitLayer::new(quota("1/1h")))
        .layer(ClientIpLayer::new("127.0.0.1".parse().unwrap()));
    let server = TestServer::start(app).await;
    let addr = server.addr();
    let (_, body) = http_get(addr, "/ip", &[("x-forwarded-for", "6.6.6.6, 203.0.113.9")]).await;
    assert_eq!(body, "203.0.113.9");
    let (status, _) = http_get(addr, "/hello", &[("x-forwarded-for", "198.51.100.1")]).await;
    assert_eq!(status, 200);
    let (status, _) = http_get(addr, "/hello", &[("x-forwarded-for", "198.51.100.1")]).await;
    assert_eq!(status, 429);
    let (status, _) = http_get(addr, "/hello", &[("x-forwarded-for", "198.51.100.2")]).await;
    assert_eq!(status, 200);
    server.stop().await.unwrap();
}

// --------------------------------------------------------- custom middleware

async fn gatekeeper(mut req: ferrapi::extract::Request, next: Next) -> Response {
    if req.headers().contains_key("x-block") {
        return json_response(StatusCode::FORBIDDEN, json!({"detail": "blocked"}));
    }
    req.headers_mut()
        .insert("x-user", HeaderValue::from_static("from-middleware"));
    let mut res = next.run(req).await;
    if res.status().is_server_error() {
        res = json_response(res.status(), json!({"detail": "handled by middleware"}));
    }
    res.headers_mut()
        .insert("x-middleware", HeaderValue::from_static("yes"));
    res
}

#[get("/whoami")]
async fn whoami(headers: http::HeaderMap) -> String {
    headers
        .get("x-user")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("nobody")
        .to_owned()
}

#[tokio::test]
async fn async_fn_middleware_modifies_short_circuits_and_handles_errors() {
    let app = routes().route(whoami).layer(from_fn(gatekeeper));
    let client = TestClient::new(app);
    let res = client.get("/whoami").send().await;
    assert_eq!(res.text(), "from-middleware");
    assert_eq!(res.header("x-middleware"), Some("yes"));
    let res = client.get("/whoami").header("x-block", "1").send().await;
    assert_eq!(res.status(), 403);
    assert_eq!(res.json::<Value>(), json!({"detail": "blocked"}));
    assert!(res.header("x-middleware").is_none());
    // The application's own panic catcher is outside: the 500 it makes
    // reaches no middleware, so use the stack's inner one to see it.
    let app = routes()
        .layer(ferrapi::middleware::catch_panic())
        .layer(from_fn(gatekeeper));
    let res = TestClient::new(app).get("/boom").send().await;
    assert_eq!(res.status(), 500);
    assert_eq!(
        res.json::<Value>(),
        json!({"detail": "handled by middleware"})
    );
}

// ------------------------------------------------------------ default stack

#[tokio::test]
async fn the_default_stack_in_its_documented_order() {
    let stack = Stack::defaults()
        .cors(
            CorsConfig::new()
                .allow_origins(["https://app.example.com"])
                .build()
                .unwrap(),
        )
        .rate_limit(RateLimitLayer::new(quota("1/1h")).exempt("/health"));
    let client = TestClient::new(stack.apply(routes()));
    let origin = ("origin", "https://app.example.com");
    // Preflights are answered by CORS, outside the rate limiter: not counted.
    for _ in 0..3 {
        let res = client
            .request(http::Method::OPTIONS, "/hello")
            .header(origin.0, origin.1)
            .header("access-control-request-method", "GET")
            .send()
            .await;
        assert_eq!(res.status(), 200);
        assert!(res.header("ratelimit-limit").is_none());
        assert!(res.header("x-request-id").is_some());
    }
    let res = client.get("/hello").header(origin.0, origin.1).send().await;
    assert_eq!(res.status(), 200);
    // A 429 carries what every outer layer adds: request id, timing,
    // security headers and CORS (so that the page can read it).
    let res = client
        .get("/big")
        .header(origin.0, origin.1)
        .header("accept-encoding", "gzip")
        .send()
        .await;
    assert_eq!(res.status(), 429);
    assert!(is_uuid_v4(res.header("x-request-id").unwrap()));
    assert!(res.header("x-process-time").is_some());
    assert_eq!(res.header("x-frame-options"), Some("DENY"));
    assert_eq!(res.header("access-control-allow-origin"), Some(origin.1));
    assert_eq!(res.header("retry-after"), Some("3600"));
    // Exempt paths pass; big bodies are compressed (compression is on in
    // the tests' build).
    let res = client.get("/health/live").send().await;
    assert_eq!(res.status(), 200);
    let client = TestClient::new(Stack::defaults().apply(routes()));
    let res = client
        .get("/big")
        .header("accept-encoding", "gzip")
        .send()
        .await;
    assert_eq!(res.header("content-encoding"), Some("gzip"));
    assert!(res.header("x-request-id").is_some());
}

/// One `GET` over a real connection to `server`; the response head's
/// lines, lowercased, and the body.
async fn get_over_tcp(server: &TestServer, path: &str, extra: &str) -> (Vec<String>, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: t\r\nconnection: close\r\n{extra}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    // A compressed body is not text: lossy, only its head is read then.
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    (
        head.lines().map(str::to_ascii_lowercase).collect(),
        body.to_owned(),
    )
}

fn header_of<'a>(head: &'a [String], name: &str) -> Option<&'a str> {
    head.iter()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
}

// The server calls a stack's fused outer layers directly over the routes
// (no layer around them) or over the layered router (layers inside): both
// answer every header of the stack.
#[tokio::test]
async fn the_fused_stack_over_a_real_server_directly_and_around_layers() {
    let direct = Stack::defaults().compression(None).apply(routes());
    let around = routes()
        .layer(from_fn(|req: Request<Body>, next: Next| async move {
            // Inside the stack: the request already carries its id.
            let saw = req.headers().contains_key("x-request-id");
            let mut res = next.run(req).await;
            res.headers_mut().insert(
                "x-inner-saw-id",
                HeaderValue::from_static(if saw { "yes" } else { "no" }),
            );
            res
        }))
        .middleware(Stack::defaults());
    for app in [direct, around] {
        let server = TestServer::start(app).await;
        let (head, body) = get_over_tcp(
            &server,
            "/id",
            "x-request-id: given-123\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n",
        )
        .await;
        assert_eq!(head[0], "http/1.1 200 ok");
        assert_eq!(body, "given-123");
        assert_eq!(header_of(&head, "x-request-id"), Some("given-123"));
        let tp = header_of(&head, "traceparent").unwrap();
        assert!(
            tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{tp}"
        );
        assert!(!tp.contains("00f067aa0ba902b7"), "a new span id: {tp}");
        let seconds: f64 = header_of(&head, "x-process-time").unwrap().parse().unwrap();
        assert!((0.0..10.0).contains(&seconds));
        assert_eq!(header_of(&head, "x-content-type-options"), Some("nosniff"));
        assert_eq!(header_of(&head, "x-frame-options"), Some("deny"));
        assert!(header_of(&head, "referrer-policy").is_some());
        // A generated id when none is given, new for every request.
        let (a, _) = get_over_tcp(&server, "/hello", "").await;
        let (b, _) = get_over_tcp(&server, "/hello", "").await;
        let (a, b) = (
            header_of(&a, "x-request-id").unwrap(),
            header_of(&b, "x-request-id").unwrap(),
        );
        assert!(is_uuid_v4(a) && is_uuid_v4(b) && a != b, "{a} {b}");
        if let Some(saw) = header_of(&head, "x-inner-saw-id") {
            assert_eq!(saw, "yes");
        }
        server.stop().await.unwrap();
    }
    // With compression, which joins the fused layers when nothing comes
    // before it: big bodies compressed, small ones as they are.
    let server = TestServer::start(Stack::defaults().apply(routes())).await;
    let (head, _) = get_over_tcp(&server, "/big", "accept-encoding: gzip\r\n").await;
    assert_eq!(
        header_of(&head, "content-encoding"),
        Some("gzip"),
        "{head:?}"
    );
    assert_eq!(header_of(&head, "vary"), Some("accept-encoding"));
    assert!(header_of(&head, "x-request-id").is_some());
    assert_eq!(header_of(&head, "x-content-type-options"), Some("nosniff"));
    let (head, body) = get_over_tcp(&server, "/hello", "accept-encoding: gzip\r\n").await;
    assert_eq!(header_of(&head, "content-encoding"), None, "{head:?}");
    assert!(body.contains("hello"), "{body}");
    assert!(header_of(&head, "x-process-time").is_some());
    server.stop().await.unwrap();
}

// A layer added after the stack runs outside it: the stack's layers then
// take their place among the others instead of being served first.
#[tokio::test]
async fn a_layer_added_after_the_stack_runs_outside_it() {
    let app = Stack::defaults().apply(routes()).layer(from_fn(
        |req: Request<Body>, next: Next| async move {
            let saw_request = req.headers().contains_key("x-request-id");
            let mut res = next.run(req).await;
            let saw_response = res.headers().contains_key("x-request-id");
            let value = format!("{saw_request}/{saw_response}");
            res.headers_mut()
                .insert("x-outer", HeaderValue::from_str(&value).unwrap());
            res
        },
    ));
    let server = TestServer::start(app).await;
    let (head, _) = get_over_tcp(&server, "/hello", "").await;
    assert_eq!(header_of(&head, "x-outer"), Some("false/true"));
    assert!(is_uuid_v4(header_of(&head, "x-request-id").unwrap()));
    server.stop().await.unwrap();
    // The same through the router (the test client's path).
    let res = TestClient::new(Stack::defaults().apply(routes()).layer(from_fn(
        |req: Request<Body>, next: Next| async move {
            let saw = req.headers().contains_key("x-request-id");
            let mut res = next.run(req).await;
            res.headers_mut().insert(
                "x-outer",
                HeaderValue::from_static(if saw { "in" } else { "out" }),
            );
            res
        },
    )))
    .get("/hello")
    .send()
    .await;
    assert_eq!(res.header("x-outer"), Some("out"));
    assert!(res.header("x-request-id").is_some());
}

#[tokio::test]
async fn an_empty_stack_adds_nothing() {
    let res = TestClient::new(Stack::new().apply(routes()))
        .get("/hello")
        .send()
        .await;
    assert!(res.header("x-request-id").is_none());
    assert!(res.header("x-process-time").is_none());
    assert!(res.header("x-content-type-options").is_none());
}

// ----------------------------------------------------------------------- JWT

pub(crate) mod jwt {
    use super::*;
    use base64::Engine as _;
    use ferrapi::middleware::jwt::{
        Algorithm, Claims, JwtIssuer, JwtLayer, JwtVerifier, VerifiedClaims, VerifyingKey,
    };

    // Test keys, generated for these tests only.
    const RSA_PRIVATE: &str = r"-----BEGIN PRIVATE KEY-----
MIIEvwIBADANBgkqhkiG9w0BAQEFAASCBKkwggSlAgEAAoIBAQDZEOISjQ2AKPNX
0oyzqPSh2VcG1Aw6qTIGsvp4ibCZ7epO6SREEW+ldXR+CW52LADfeUQRE6AMxQdB
uRmQlf6E8TuFc7A2gVP2Ga6kvpBqunrC/04JngcqGvbU49RqURYy4SFS1t+XldJz
MfblGh9YSGJu769jIBLHkRvdMsiNpBCczz8O6xVscDB4syspGd5EEABuDoLUMnYV
rSyuMXaAA3tK6X9ee+jnLccmhPd24OBhj1VXKiQCkrnXrR6yjqt1CJjskcsBx7Z+
xlc+rSEWhaC9RkTSDTKSWCdACtNFWqoMVLgBj1ZzCxYywQGWm4VPwB3B1o/111a+
jasSicnZAgMBAAECggEADO3IAWHcZX9K6zazwbm1BHTdDZ+QsOfF/ocniwlsduao
V5XkXpeJRlomG6G1Lh212Zmv97JrDIepxHzhbG66r7Fsoai/3Kc8WIK0F8Tv9iNw
T3AEdmcutw/PFuQREVoOD+6/3N7Gh5FZbRoTQhcZudjp4ACvuiA9bhyTA8xUDLeW
XcFXyCSIclHo4veZ44+aUGskT6xCB5m7htHNymWOWj/174T3X1qQ/uEfLTRVX7sK
hBDt83jjav2hCgqjJVfyBkQOH73wnvzsjbycWpyJdIttCRGi20ynOCqrnZ6solbW
q3b6Eaw+t5mztjSaEAiWOW0ZO54Qf/nUs5wSVMg4DwKBgQDv5svTDe4utpJmVfiQ
NXK7A7AFNFfySrYFQoKy+lFdoV+nj+vmUNbEbFLGG/NYIY1sltZHybfSi2I/gm7A
7y3pYRuT8YUEFfPwpKNq53ZhSJyITELUfz6rqMo9DNX29/b338CofekqFv0jiWu+
CXl+ZKTuncm+vWPEJ972T+9p0wKBgQDnoczjTHwwusL8WM1fCCXZw+chkgPXA65n
72CbM7SAXv8a9Detjz1Nkhi++oiIvG0+I33t8sgS+US9pFL6xKacndcGG96dvYX0
9lvXs1TID/WmMpnKcAXgisub8QPaoQqRuU7eg7oVraTdYtguXACHyVfN7xKt3nvb
a+erB+MmIwKBgQCJA7Hpqo0cVN2sYPGDu2L5eJOxhUGtegoXWvM2sUyDQ0VUeBht
BEKFELD9wLzs2szg9g0QFx9Lupu0VhRXUMNSBUow5sHnoXofOIi059lumn/8QEHz
B3GNrOtEju4tDVYaH8ry8GaYyWRuRXApq1OeYnDob2nn7FbskzD+UI0WTQKBgQC7
2g6uMHNvmadUvDgiYBtCVox2P1L557Rj+lDgzbgPe/tsQq99BHP1Gw0SpWBhdF8s
S+BvP7xfFuVW35OkaCOvVJr0C1opl3CyT7IAZyHU9oyEcvkiomNBzY5/M6Gqh3xo
3l5GO5KIzkCsguNMBbUwamvZSZBejdbpBsPlgwoG/QKBgQC4cm587h7+BiTkVyp5
OoJ8pNhHph4zKnN2WxVswd4BqudyjkZzVM05kGdTqBLbqsrZmDBfyXBR0h4sdBmh
SO0G5g5MdE+Jr43iSrLXGdWRc475VeCOl2Ief94la/W2qt9G/ptCxoxz0WJECmrb
8R/SHkVO1DKDT3nQ+3ap1FiGhQ==
-----END PRIVATE KEY-----";
    const RSA_PUBLIC: &str = r"-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA2RDiEo0NgCjzV9KMs6j0
odlXBtQMOqkyBrL6eImwme3qTukkRBFvpXV0fgludiwA33lEEROgDMUHQbkZkJX+
hPE7hXOwNoFT9hmupL6Qarp6wv9OCZ4HKhr21OPUalEWMuEhUtbfl5XSczH25Rof
WEhibu+vYyASx5Eb3TLIjaQQnM8/DusVbHAweLMrKRneRBAAbg6C1DJ2Fa0srjF2
gAN7Sul/Xnvo5y3HJoT3duDgYY9VVyokApK5160eso6rdQiY7JHLAce2fsZXPq0h
FoWgvUZE0g0yklgnQArTRVqqDFS4AY9WcwsWMsEBlpuFT8AdwdaP9ddWvo2rEonJ
2QIDAQAB
-----END PUBLIC KEY-----";
    const ED_PRIVATE: &str = r"-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIFVZ/FP4A43n6XlWLBJ+3+zazR6W56L7g4AZj4vE7bQu
-----END PRIVATE KEY-----";
    const ED_PUBLIC: &str = r"-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAJR8XTXXKlxQCBEdwqhh1bFZs7VeeQHgpphhRAve4TVY=
-----END PUBLIC KEY-----";
    const SECRET: &[u8] = b"test secret, 32 bytes or longer!";

    #[derive(Deserialize)]
    pub(crate) struct User {
        sub: String,
    }

    /// The caller's `sub` (also used by the JWKS tests).
    #[get("/me")]
    pub(crate) async fn me(Claims(user): Claims<User>) -> String {
        user.sub
    }

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    fn b64(v: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
    }

    /// A token signed with HS256 over `secret`, with any header and claims.
    fn hs256(header: Value, claims: Value, secret: &[u8]) -> String {
        let header = jsonwebtoken::Header {
            alg: serde_json::from_value(header["alg"].clone()).unwrap(),
            kid: header["kid"].as_str().map(str::to_owned),
            ..Default::default()
        };
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    fn app(verifier: JwtVerifier) -> TestClient {
        TestClient::new(App::new().state(verifier).route(me))
    }

    pub(crate) async fn call(client: &TestClient, token: &str) -> ferrapi::testing::TestResponse {
        client
            .get("/me")
            .header("authorization", &format!("Bearer {token}"))
            .send()
            .await
    }

    /// A 401 `invalid_token` in FastAPI's shape (also used by the JWKS tests).
    pub(crate) fn assert_invalid(res: &ferrapi::testing::TestResponse, why: &str) {
        assert_eq!(res.status(), 401, "{why}: {}", res.text());
        assert_eq!(
            res.header("www-authenticate"),
            Some(r#"Bearer error="invalid_token""#),
            "{why}"
        );
        assert_eq!(
            res.json::<Value>(),
            json!({"detail": "Could not validate credentials"}),
            "{why}"
        );
    }

    #[tokio::test]
    async fn issued_hs256_tokens_verify_and_bad_ones_are_401() {
        let issuer = JwtIssuer::hs256(SECRET).issuer("ferrapi").audience("users");
        let client = app(JwtVerifier::new(VerifyingKey::hs256(SECRET))
            .issuer(["ferrapi"])
            .audience(["users"])
            .leeway(Duration::from_secs(60)));
        let token = issuer.issue(&json!({"sub": "42"})).unwrap();
        assert_eq!(
            (token.token_type.as_str(), token.expires_in),
            ("bearer", 3600)
        );
        let res = call(&client, &token.access_token).await;
        assert_eq!(res.status(), 200, "{}", res.text());
        assert_eq!(res.text(), "42");

        let good = json!({"sub": "1", "iss": "ferrapi", "aud": "users", "exp": now() + 600});
        let with = |patch: Value| {
            let mut c = good.clone();
            for (k, v) in patch.as_object().unwrap() {
                if v.is_null() {
                    c.as_object_mut().unwrap().remove(k);
                } else {
                    c[k] = v.clone();
                }
            }
            hs256(json!({"alg": "HS256"}), c, SECRET)
        };
        assert_eq!(call(&client, &with(json!({}))).await.status(), 200);
        // Within the leeway: still accepted.
        assert_eq!(
            call(&client, &with(json!({"exp": now() - 30})))
                .await
                .status(),
            200
        );
        let cases = [
            ("expired", with(json!({"exp": now() - 120}))),
            ("no exp", with(json!({"exp": null}))),
            ("not yet valid", with(json!({"nbf": now() + 600}))),
            ("wrong audience", with(json!({"aud": "billing"}))),
            ("wrong issuer", with(json!({"iss": "evil"}))),
            (
                "wrong secret",
                hs256(
                    json!({"alg": "HS256"}),
                    good.clone(),
                    b"another secret of 32 bytes......",
                ),
            ),
            ("garbage", "not.a.token".to_owned()),
            ("claims without sub", with(json!({"sub": null}))),
        ];
        for (why, token) in cases {
            assert_invalid(&call(&client, &token).await, why);
        }
        // Tampered: the payload changed after signing.
        let token = with(json!({}));
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = b64(serde_json::to_string(
            &json!({"sub": "admin", "iss": "ferrapi", "aud": "users", "exp": now() + 600}),
        )
        .unwrap()
        .as_bytes());
        parts[1] = &forged;
        assert_invalid(&call(&client, &parts.join(".")).await, "tampered");
        // alg: none, unsigned.
        let none = format!(
            "{}.{}.",
            b64(br#"{"alg":"none","typ":"JWT"}"#),
            b64(serde_json::to_string(&good).unwrap().as_bytes())
        );
        assert_invalid(&call(&client, &none).await, "alg none");
        // Stricter leeway: 30 s late is too late.
        let strict = app(JwtVerifier::new(VerifyingKey::hs256(SECRET)).leeway(Duration::ZERO));
        assert_invalid(
            &call(&strict, &with(json!({"exp": now() - 30}))).await,
            "no leeway",
        );
        // No token at all: "Not authenticated".
        let res = client.get("/me").send().await;
        assert_eq!(res.status(), 401);
        assert_eq!(res.header("www-authenticate"), Some("Bearer"));
        assert_eq!(res.json::<Value>(), json!({"detail": "Not authenticated"}));
    }

    #[tokio::test]
    async fn rs256_and_eddsa_and_no_algorithm_confusion() {
        let rs = JwtIssuer::rs256_pem(RSA_PRIVATE.as_bytes()).unwrap();
        let ed = JwtIssuer::eddsa_pem(ED_PRIVATE.as_bytes()).unwrap();
        let rs_client = app(JwtVerifier::new(
            VerifyingKey::rs256_pem(RSA_PUBLIC.as_bytes()).unwrap(),
        ));
        let ed_client = app(JwtVerifier::new(
            VerifyingKey::eddsa_pem(ED_PUBLIC.as_bytes()).unwrap(),
        ));
        let claims = json!({"sub": "7"});
        let rs_token = rs.issue(&claims).unwrap().access_token;
        let ed_token = ed.issue(&claims).unwrap().access_token;
        assert_eq!(call(&rs_client, &rs_token).await.text(), "7");
        assert_eq!(call(&ed_client, &ed_token).await.text(), "7");
        assert_invalid(&call(&rs_client, &ed_token).await, "EdDSA token, RS256 key");
        assert_invalid(&call(&ed_client, &rs_token).await, "RS256 token, EdDSA key");
        // The classic confusion: an HS256 token whose secret is the RSA
        // public key, which the attacker knows.
        let confused = hs256(
            json!({"alg": "HS256"}),
            json!({"sub": "admin", "exp": now() + 600}),
            RSA_PUBLIC.as_bytes(),
        );
        assert_invalid(
            &call(&rs_client, &confused).await,
            "HS256 with the RSA public key",
        );
        // A key cannot be bound to an algorithm of another family.
        let rsa_key = jsonwebtoken::DecodingKey::from_rsa_pem(RSA_PUBLIC.as_bytes()).unwrap();
        assert!(VerifyingKey::new(Algorithm::HS256, rsa_key.clone()).is_err());
        assert!(VerifyingKey::new(Algorithm::RS256, rsa_key).is_ok());
    }

    #[tokio::test]
    async fn key_rotation_by_kid() {
        let old = JwtIssuer::hs256(b"old secret, 32 bytes long.......").kid("2024");
        let new = JwtIssuer::hs256(SECRET).kid("2025");
        let client = app(JwtVerifier::new(
            VerifyingKey::hs256(b"old secret, 32 bytes long.......").kid("2024"),
        )
        .key(VerifyingKey::hs256(SECRET).kid("2025")));
        let claims = json!({"sub": "9"});
        assert_eq!(
            call(&client, &old.issue(&claims).unwrap().access_token)
                .await
                .text(),
            "9"
        );
        assert_eq!(
            call(&client, &new.issue(&claims).unwrap().access_token)
                .await
                .text(),
            "9"
        );
        let unknown = JwtIssuer::hs256(SECRET).kid("2026").issue(&claims).unwrap();
        assert_invalid(&call(&client, &unknown.access_token).await, "unknown kid");
        // A known kid with the other key's secret.
        let swapped = JwtIssuer::hs256(SECRET).kid("2024").issue(&claims).unwrap();
        assert_invalid(
            &call(&client, &swapped.access_token).await,
            "kid of another key",
        );
    }

    #[tokio::test]
    async fn the_layer_verifies_first_and_feeds_the_rate_limiter() {
        let verifier = JwtVerifier::new(VerifyingKey::hs256(SECRET));
        let key = RateLimitKey::from_fn(|parts| {
            let claims = parts.extensions.get::<VerifiedClaims>()?;
            Some(format!("user:{}", claims.0.get("sub")?.as_str()?))
        })
        .or(RateLimitKey::client_ip(TrustedProxies::none()));
        let stack = Stack::new()
            .jwt(JwtLayer::new(verifier))
            .rate_limit(RateLimitLayer::new(quota("1/1h")).key(key));
        let client = TestClient::new(stack.apply(routes().route(me)));
        let issuer = JwtIssuer::hs256(SECRET);
        let alice = issuer.issue(&json!({"sub": "alice"})).unwrap().access_token;
        let bob = issuer.issue(&json!({"sub": "bob"})).unwrap().access_token;
        assert_eq!(call(&client, &alice).await.text(), "alice");
        assert_eq!(call(&client, &alice).await.status(), 429);
        assert_eq!(call(&client, &bob).await.status(), 200);
        // A bad token is refused by the layer, even on a public route.
        let res = client
            .get("/hello")
            .header("authorization", "Bearer nope")
            .send()
            .await;
        assert_invalid(&res, "bad token on a public route");
        // No token: public routes work, `Claims` routes say 401.
        assert_eq!(client.get("/hello").send().await.status(), 200);
        let res = TestClient::new(
            Stack::new()
                .jwt(JwtLayer::new(JwtVerifier::new(VerifyingKey::hs256(SECRET))))
                .apply(routes().route(me)),
        )
        .get("/me")
        .send()
        .await;
        assert_eq!(res.status(), 401);
        assert_eq!(res.json::<Value>(), json!({"detail": "Not authenticated"}));
    }

    #[tokio::test]
    async fn a_lenient_layer_leaves_refused_tokens_to_the_routes() {
        let stack = Stack::new().jwt(
            JwtLayer::new(JwtVerifier::new(VerifyingKey::hs256(SECRET))).reject_invalid(false),
        );
        let client = TestClient::new(stack.apply(routes().route(me)));
        // A bad token: a public route serves, a `Claims` route refuses it.
        let res = client
            .get("/hello")
            .header("authorization", "Bearer nope")
            .send()
            .await;
        assert_eq!(res.status(), 200);
        assert_invalid(&call(&client, "nope").await, "bad token on a Claims route");
        let expired = hs256(
            json!({"alg": "HS256"}),
            json!({"sub": "alice", "exp": now() - 120}),
            SECRET,
        );
        assert_invalid(&call(&client, &expired).await, "expired token");
        // A good one reaches the handler as claims.
        let alice = JwtIssuer::hs256(SECRET)
            .issue(&json!({"sub": "alice"}))
            .unwrap()
            .access_token;
        assert_eq!(call(&client, &alice).await.text(), "alice");
    }

    #[test]
    fn claims_document_the_bearer_scheme() {
        let built = App::new().route(me).build().unwrap();
        let doc = serde_json::to_value(built.openapi()).unwrap();
        assert_eq!(
            doc["components"]["securitySchemes"]["HTTPBearer"],
            json!({"type": "http", "scheme": "bearer"})
        );
        assert_eq!(
            doc["paths"]["/me"]["get"]["security"],
            json!([{"HTTPBearer": []}])
        );
    }

    #[test]
    fn missing_verifier_is_a_500_not_a_401() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let res = TestClient::new(App::new().route(me))
                .get("/me")
                .header("authorization", "Bearer x.y.z")
                .send()
                .await;
            assert_eq!(res.status(), 500);
        });
    }
}

// ----------------------------------------------------------------- passwords

#[tokio::test]
async fn passwords_hash_and_verify_off_the_runtime() {
    use ferrapi::middleware::password::PasswordHasher;
    let hasher = PasswordHasher::insecure_fast_for_tests();
    let hash = hasher.hash_blocking("s3cret-pass".into()).await.unwrap();
    assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
    assert!(
        hasher
            .verify_blocking("s3cret-pass".into(), hash.clone())
            .await
            .unwrap()
    );
    assert!(!hasher.verify_blocking("other".into(), hash).await.unwrap());
}

// ------------------------------------------------------------- moved paths

/// `jwt`, `jwks` and `password` live in `ferrapi::security`; the paths
/// under `ferrapi::middleware` they had before name the same items.
#[test]
fn old_security_paths_are_the_new_items() {
    use ferrapi::{middleware, security};
    let _: fn(security::jwt::JwtVerifier) -> middleware::jwt::JwtVerifier = |v| v;
    let _: fn(security::jwt::JwtLayer) -> middleware::jwt::JwtLayer = |v| v;
    let _: fn(security::jwks::Jwks) -> middleware::jwt::Jwks = |v| v;
    let _: fn(security::jwks::JwksError) -> middleware::jwt::JwksError = |v| v;
    let _: fn(security::password::PasswordHasher) -> middleware::password::PasswordHasher = |v| v;
    assert_eq!(
        security::password::max_concurrent_hashes(),
        middleware::password::max_concurrent_hashes()
    );
    assert_eq!(security::jwks::DEFAULT_TTL, middleware::jwt::DEFAULT_TTL);
}
