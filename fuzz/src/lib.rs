//! What the fuzz targets share: one single-threaded Tokio runtime per
//! process, the in-process test apps, and the properties every answer must
//! have. Each target in `fuzz_targets/` is a few lines calling one function
//! here, so the same checks can be replayed from a unit test or a script.
//!
//! The properties, for every input:
//! - no panic anywhere (libFuzzer reports it as a crash), no 5xx answer;
//! - a 422 is FastAPI's shape: `{"detail": [{"type", "loc", "msg", …}]}`
//!   with `loc` starting at the request part the extractor reads;
//! - parsers that accept a value give back exactly what the contract says
//!   (request ids echoed unchanged, trace ids re-serialised to the same
//!   header, JWT claims only under the verifier's algorithm and key).

use ferrapi::extract::{Multipart, MultipartForm, Part};
use ferrapi::prelude::*;
use ferrapi::testing::{TestClient, TestResponse};
use serde_json::Value;
use std::future::Future;
use std::sync::OnceLock;

/// Runs `fut` to completion on the process's single-threaded runtime.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime")
    })
    .block_on(fut)
}

/// An address inside an item.
#[derive(Debug, Deserialize, Serialize, JsonSchema, Validate)]
pub struct Address {
    /// 1..=40 characters.
    #[garde(length(chars, min = 1, max = 40))]
    pub city: String,
    /// Optional postcode, digits.
    #[garde(inner(length(min = 3, max = 10)))]
    #[serde(default)]
    pub zip: Option<String>,
}

/// A JSON body with every kind of constraint the validator maps.
#[derive(Debug, Deserialize, Serialize, JsonSchema, Validate)]
pub struct Item {
    /// 2..=50 characters.
    #[garde(length(chars, min = 2, max = 50))]
    pub name: String,
    /// An e-mail address.
    #[garde(email)]
    pub email: String,
    /// 18..=120.
    #[garde(range(min = 18, max = 120))]
    pub age: i64,
    /// A float with bounds.
    #[garde(range(min = 0.0, max = 1e6))]
    #[serde(default)]
    pub price: f64,
    /// Up to 5 tags.
    #[garde(length(max = 5), inner(length(min = 1)))]
    #[serde(default)]
    pub tags: Vec<String>,
    /// A nested object.
    #[garde(dive)]
    pub address: Option<Address>,
    /// A flag.
    #[garde(skip)]
    #[serde(default)]
    pub active: bool,
}

#[post("/items")]
async fn create_item(Json(item): Json<Item>) -> Json<Item> {
    Json(item)
}

/// Query parameters of every scalar kind.
#[derive(Debug, Deserialize, Serialize, JsonSchema, Validate)]
pub struct Search {
    /// ≥ 0.
    #[garde(range(min = 0))]
    #[serde(default)]
    pub skip: i64,
    /// 1..=1000.
    #[garde(range(min = 1, max = 1000))]
    #[serde(default = "default_limit")]
    pub limit: i64,
    /// A repeated key.
    #[garde(skip)]
    #[serde(default)]
    pub tag: Vec<String>,
    /// Lax booleans (`yes`, `on`, `1`).
    #[garde(skip)]
    #[serde(default)]
    pub flag: Option<bool>,
    /// A float.
    #[garde(skip)]
    #[serde(default)]
    pub ratio: Option<f64>,
}

fn default_limit() -> i64 {
    100
}

/// Request headers (`x-token`, `x-count`).
#[derive(Debug, Deserialize, Serialize, JsonSchema, Validate)]
pub struct Headers {
    /// Optional.
    #[serde(default)]
    pub x_token: Option<String>,
    /// Optional integer.
    #[serde(default)]
    pub x_count: Option<i64>,
}

/// Cookies.
#[derive(Debug, Deserialize, Serialize, JsonSchema, Validate)]
pub struct Session {
    /// Optional.
    #[serde(default)]
    pub session_id: Option<String>,
    /// Optional integer.
    #[serde(default)]
    pub visits: Option<i64>,
}

#[get("/users/{user_id}/items/{item}")]
async fn read_item(
    Path((user_id, item)): Path<(i64, String)>,
    Query(search): Query<Search>,
    Header(headers): Header<Headers>,
    Cookie(session): Cookie<Session>,
) -> Json<Value> {
    Json(serde_json::json!({
        "user_id": user_id, "item": item, "search": search,
        "headers": headers, "session": session,
    }))
}

/// The reference service's avatar form and a text part.
pub struct Upload;
impl MultipartForm for Upload {
    const NAME: &'static str = "Upload";
    const PARTS: &'static [Part] = &[
        Part::file("file")
            .accept(&["image/png", "image/jpeg"])
            .max_size(4096),
        Part::text("caption").optional().max_size(64),
    ];
}

#[put("/upload", status = 204)]
async fn upload(
    mut form: Multipart<Upload>,
) -> Result<NoContent, ferrapi::extract::MultipartError> {
    while let Some(field) = form.next_field().await? {
        let _ = field.bytes().await?;
    }
    Ok(NoContent)
}

/// The app of the JSON, parameter and multipart targets.
pub fn client() -> &'static TestClient {
    static CLIENT: OnceLock<TestClient> = OnceLock::new();
    CLIENT.get_or_init(|| {
        TestClient::new(
            App::new()
                .body_limit(64 * 1024)
                .route(create_item)
                .route(read_item)
                .route(upload),
        )
    })
}

/// Asserts the properties every answer has: not a 5xx; JSON error bodies;
/// a 422 in FastAPI's shape whose `loc` starts with one of `sources`.
pub fn check_response(res: &TestResponse, sources: &[&str], what: &dyn std::fmt::Debug) {
    let status = res.status().as_u16();
    assert!(status < 500, "{status} for {what:?}: {}", res.text());
    if status >= 400 {
        let body: Value = serde_json::from_slice(res.bytes())
            .unwrap_or_else(|e| panic!("{status} body is not JSON ({e}) for {what:?}"));
        let detail = body
            .get("detail")
            .unwrap_or_else(|| panic!("{status} without detail for {what:?}: {body}"));
        if status == 422 {
            let items = detail
                .as_array()
                .unwrap_or_else(|| panic!("422 detail is not a list: {body}"));
            assert!(!items.is_empty(), "empty 422 for {what:?}");
            for item in items {
                assert!(item["type"].is_string(), "no type: {item}");
                assert!(item["msg"].is_string(), "no msg: {item}");
                let loc = item["loc"].as_array().expect("loc is a list");
                let first = loc.first().and_then(Value::as_str).unwrap_or("");
                assert!(sources.contains(&first), "loc {loc:?} for {what:?}");
            }
        }
    }
}

/// JSON body target: any bytes as the body of `POST /items`.
pub fn json_body(data: &[u8]) {
    let content_type = match data.first() {
        Some(b) if b % 16 == 0 => "text/plain",
        _ => "application/json",
    };
    let res = block_on(
        client()
            .post("/items")
            .header("content-type", content_type)
            .body(data.to_vec())
            .send(),
    );
    check_response(&res, &["body"], &String::from_utf8_lossy(data));
    if res.status() == 200 {
        // Only a JSON object is a model (pydantic: `model_attributes_type`
        // for anything else, a list included).
        // (Lossy: serde_json skips an ignored field's string without
        // checking its UTF-8, so such a body is accepted; see the report of
        // issue 11.)
        let sent: Value =
            serde_json::from_str(&String::from_utf8_lossy(data)).expect("accepted JSON parses");
        assert!(sent.is_object(), "accepted a non-object body: {sent}");
        // What the handler echoed is a valid item.
        let item: Item = serde_json::from_slice(res.bytes()).expect("an item");
        assert!(item.validate().is_ok(), "accepted an invalid item {item:?}");
    }
    // The json_invalid mapping on its own (character position, reason).
    if let Err(e) = serde_json::from_slice::<Value>(data) {
        let item = ferrapi_core::validation::json_invalid(data, &e);
        let body = serde_json::to_value(&item).expect("serialisable");
        assert_eq!(body["type"], "json_invalid");
    }
}

/// Byte that may stand in a URI as it is (RFC 3986 unreserved, sub-delims,
/// `:`, `@` and `%`, so broken escapes reach the decoder).
fn uri_safe(b: u8, extra: &[u8]) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@%".contains(&b) || extra.contains(&b)
}

fn escape(out: &mut String, bytes: &[u8], extra: &[u8]) {
    for &b in bytes {
        if uri_safe(b, extra) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// Parameter target: the input split at `\n` into user id, item, query
/// string, `x-count` header, cookie header; sent as
/// `GET /users/{user_id}/items/{item}?{query}`.
pub fn params(data: &[u8]) {
    let mut parts = data.splitn(5, |&b| b == b'\n');
    let user_id = parts.next().unwrap_or_default();
    let item = parts.next().unwrap_or_default();
    let query = parts.next().unwrap_or_default();
    let count = parts.next().unwrap_or_default();
    let cookie = parts.next().unwrap_or_default();
    let mut uri = String::from("/users/");
    escape(&mut uri, user_id, b"");
    uri.push_str("/items/");
    escape(&mut uri, item, b"");
    uri.push('?');
    escape(&mut uri, query, b"/?");
    let mut req = client().get(&uri);
    let count = String::from_utf8_lossy(count);
    let cookie = String::from_utf8_lossy(cookie);
    if http::HeaderValue::from_str(&count).is_ok() {
        req = req.header("x-count", &count);
    }
    if http::HeaderValue::from_str(&cookie).is_ok() {
        req = req.header("cookie", &cookie);
    }
    let res = block_on(req.send());
    check_response(&res, &["path", "query", "header", "cookie"], &uri);
    if res.status() == 200 {
        let v: Value = serde_json::from_slice(res.bytes()).expect("JSON");
        let limit = v["search"]["limit"].as_i64().expect("limit");
        assert!((1..=1000).contains(&limit), "limit {limit} accepted");
        assert!(v["search"]["skip"].as_i64().expect("skip") >= 0);
    }
}

/// The boundary of the multipart seeds.
pub const BOUNDARY: &str = "fuzzb";

/// Multipart target: any bytes as a `multipart/form-data` body with the
/// boundary `fuzzb` (the first byte, when it is `!`, drops the boundary
/// parameter instead).
pub fn multipart(data: &[u8]) {
    let content_type = if data.first() == Some(&b'!') {
        "multipart/form-data".to_string()
    } else {
        format!("multipart/form-data; boundary={BOUNDARY}")
    };
    let res = block_on(
        client()
            .put("/upload")
            .header("content-type", &content_type)
            .body(data.to_vec())
            .send(),
    );
    check_response(&res, &["body"], &String::from_utf8_lossy(data));
}

/// `X-Request-ID` target: a value is kept exactly when it is 1..=128
/// visible ASCII characters, and then echoed unchanged.
pub fn request_id(data: &[u8]) {
    use ferrapi::middleware::RequestId;
    let Ok(value) = http::HeaderValue::from_bytes(data) else {
        return;
    };
    let sane = (1..=128).contains(&data.len()) && data.iter().all(|b| (b'!'..=b'~').contains(b));
    match RequestId::parse(&value) {
        Some(id) => {
            assert!(sane, "accepted {data:?}");
            assert_eq!(id.as_str().as_bytes(), data);
        }
        None => assert!(!sane, "refused {data:?}"),
    }
    let fresh = RequestId::generate();
    assert_eq!(fresh.as_str().len(), 36);
    assert!(RequestId::parse(fresh.header_value()).is_some());
}

/// `X-Forwarded-For` target: the input's first line is the trusted-proxy
/// list (`FORWARDED_ALLOW_IPS`), the next byte picks the peer, the rest are
/// `X-Forwarded-For` header values (one per line). An untrusted peer is
/// always the answer; a trusted one is replaced only by an address that
/// appears in the header.
pub fn forwarded_for(data: &[u8]) {
    use ferrapi::middleware::TrustedProxies;
    use std::net::IpAddr;
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let trusted_text = lines.next().unwrap_or_default();
    let Ok(trusted) = trusted_text.parse::<TrustedProxies>() else {
        return;
    };
    let peers: [IpAddr; 4] = [
        "127.0.0.1".parse().expect("ip"),
        "10.0.0.7".parse().expect("ip"),
        "::1".parse().expect("ip"),
        "::ffff:192.168.1.1".parse().expect("ip"),
    ];
    let pick = lines.next().map(|l| l.len()).unwrap_or(0) % peers.len();
    let peer = peers[pick];
    let mut headers = http::HeaderMap::new();
    for line in lines {
        if let Ok(v) = http::HeaderValue::from_str(line) {
            headers.append("x-forwarded-for", v);
        }
    }
    let ip = trusted.client_ip(peer, &headers);
    let canonical = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    if !trusted.is_trusted(canonical(peer)) {
        assert_eq!(ip, canonical(peer));
    } else if ip != canonical(peer) {
        let hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|h| {
                let h = h.trim();
                h.parse::<IpAddr>()
                    .ok()
                    .or_else(|| h.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
            })
            .map(canonical)
            .collect();
        assert!(hops.contains(&ip), "{ip} is not among the hops {hops:?}");
    }
    assert!(TrustedProxies::none().client_ip(peer, &headers) == canonical(peer));
}

/// `traceparent` target: an accepted header has non-zero ids, and the
/// request's context continues that trace with a new span.
pub fn traceparent(data: &[u8]) {
    use ferrapi::middleware::TraceContext;
    let parsed = TraceContext::parse(data);
    let Ok(value) = http::HeaderValue::from_bytes(data) else {
        return;
    };
    let mut headers = http::HeaderMap::new();
    headers.insert("traceparent", value);
    let cx = TraceContext::from_headers(&headers);
    let out = cx.traceparent();
    let (trace, span, flags) = TraceContext::parse(out.as_bytes()).expect("own header parses");
    assert!(trace.iter().any(|b| *b != 0) && span.iter().any(|b| *b != 0));
    if let Some((t, parent, f)) = parsed {
        assert_eq!(trace, t, "trace id kept");
        assert_eq!(flags & 1, f & 1, "sampled flag kept");
        let (_, _, p) = cx.ids();
        assert_eq!(p, Some(parent), "parent is the caller's span");
    }
}

/// The key of the JWT target.
pub const JWT_SECRET: &[u8] = b"fuzz-secret-fuzz-secret-fuzz-secret!";

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// JWT target. Mode by the first byte: odd, the rest is a token as text;
/// even, the rest is `header JSON \n claims JSON`, encoded and signed with
/// HS256 under the verifier's key, so that checks past the signature are
/// reached. A token is accepted only with `alg` HS256, an `exp` in the
/// future and no `nbf` in the future, and only when signed with the key.
pub fn jwt(data: &[u8]) {
    use ferrapi::middleware::jwt::{JwtVerifier, VerifyingKey};
    use hmac::{Hmac, Mac};
    static VERIFIER: OnceLock<JwtVerifier> = OnceLock::new();
    let verifier = VERIFIER.get_or_init(|| JwtVerifier::new(VerifyingKey::hs256(JWT_SECRET)));
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (token, signed) = if mode % 2 == 1 {
        (String::from_utf8_lossy(rest).into_owned(), false)
    } else {
        let mut parts = rest.splitn(2, |&b| b == b'\n');
        let header = parts.next().unwrap_or_default();
        let claims = parts.next().unwrap_or_default();
        let signing_input = format!("{}.{}", b64(header), b64(claims));
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(JWT_SECRET).expect("any key length");
        mac.update(signing_input.as_bytes());
        let sig = mac.finalize().into_bytes();
        (format!("{signing_input}.{}", b64(&sig)), true)
    };
    let Ok(claims) = verifier.verify::<Value>(&token) else {
        return;
    };
    assert!(signed, "unsigned token accepted: {token}");
    let mut parts = rest.splitn(2, |&b| b == b'\n');
    let header: Value = serde_json::from_slice(parts.next().unwrap_or_default()).expect("header");
    assert_eq!(header["alg"], "HS256", "accepted {header}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let exp = claims["exp"].as_f64().expect("exp is a number");
    assert!(exp + 60.0 >= now, "expired token accepted: {claims}");
    if let Some(nbf) = claims.get("nbf").and_then(Value::as_f64) {
        assert!(nbf - 60.0 <= now, "token before nbf accepted: {claims}");
    }
}
