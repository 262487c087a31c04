//! Static files and file downloads (feature `static-files`), over
//! tower-http's `ServeDir`/`ServeFile`.
//!
//! **A directory mounted at a path**, as FastAPI's
//! `app.mount("/static", StaticFiles(directory="assets"))`:
//!
//! ```no_run
//! use ferrapi::prelude::*;
//! use ferrapi::static_files::StaticFiles;
//!
//! let app = App::new().route(
//!     StaticFiles::new("assets")
//!         .cache_control("public, max-age=3600")
//!         .at("/static"),
//! );
//! // GET /static/css/site.css → assets/css/site.css
//! ```
//!
//! The mount is a `GET` route (`HEAD` too) on `/static/{*path}`, so it sits
//! in routers like any other route (prefixes apply) and is left out of the
//! OpenAPI document. Each file is answered with its content type (guessed
//! from the extension), `Last-Modified`, a strong `ETag` (size and
//! modification time to the nanosecond), `Accept-Ranges: bytes` and the mount's
//! `Cache-Control` (default `no-cache`: caches keep the file and revalidate
//! it each time, which the `ETag` makes a cheap `304`). Conditional requests
//! (`If-None-Match`, `If-Modified-Since`, `If-Match`, `If-Unmodified-Since`)
//! and single `Range` requests (`206`, `416` when unsatisfiable; `If-Range`
//! with a stale validator gets the whole file) are honoured; a request for
//! several ranges is `416` (no `multipart/byteranges`). Paths that climb out of the directory (`..`) and missing files
//! are answered `404` in the usual `{"detail": "Not Found"}` shape; a
//! directory is redirected to its trailing-slash form and served its
//! `index.html` (see [`StaticFiles::index_html`]).
//!
//! **A file download from a handler**, with the same `Range` and
//! conditional-request support, through the [`FileRequest`] extractor:
//!
//! ```no_run
//! use ferrapi::prelude::*;
//! use ferrapi::static_files::{FileRequest, FileResponse};
//!
//! /// The nightly export; resumable (`Range`).
//! #[get("/exports/nightly")]
//! async fn nightly(file: FileRequest) -> Result<FileResponse, HttpError> {
//!     Ok(file
//!         .serve("data/exports/nightly.csv")
//!         .await?
//!         .attachment("nightly.csv"))
//! }
//! ```
//!
//! The operation documents the optional `Range` header and the `200`/`206`
//! binary responses.

use crate::extract::{FromRequestParts, Path, Rejection, Request, RequestContext};
use crate::openapi::{DescribeInput, DescribeOutput, OperationBuilder, ParameterIn};
use crate::response::{Responder, Response};
use crate::routing::Route;
use ferrapi_core::HttpError;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use tower::ServiceExt;
use tower_http::services::fs::ServeFileSystemResponseBody;
use tower_http::services::{ServeDir, ServeFile};

/// The `Cache-Control` of files unless set: cache, but revalidate each use.
pub const DEFAULT_CACHE_CONTROL: &str = "no-cache";

/// A directory served under a path (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct StaticFiles {
    dir: PathBuf,
    cache_control: HeaderValue,
    index_html: bool,
    precompressed: bool,
}

impl StaticFiles {
    /// Serves the files under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            cache_control: HeaderValue::from_static(DEFAULT_CACHE_CONTROL),
            index_html: true,
            precompressed: false,
        }
    }

    /// The `Cache-Control` header of served files (default `no-cache`), for
    /// example `public, max-age=31536000, immutable` for fingerprinted
    /// assets.
    ///
    /// # Panics
    /// When `value` is not a valid header value (a fixed string in the
    /// program: a mistake found at start-up).
    #[must_use]
    #[track_caller]
    pub fn cache_control(mut self, value: &str) -> Self {
        match HeaderValue::from_str(value) {
            Ok(v) => self.cache_control = v,
            Err(_) => panic!("invalid Cache-Control value `{value}`"),
        }
        self
    }

    /// Whether a directory is answered with its `index.html` (default
    /// `true`; when `false`, directories are `404`).
    #[must_use]
    pub fn index_html(mut self, enabled: bool) -> Self {
        self.index_html = enabled;
        self
    }

    /// Serves `file.br` or `file.gz` in place of `file` when the client
    /// accepts that encoding and the compressed file exists.
    #[must_use]
    pub fn precompressed(mut self) -> Self {
        self.precompressed = true;
        self
    }

    /// The route serving the directory under `path` (`/static`):
    /// `GET {path}/{*path}`, not in the OpenAPI document.
    #[track_caller]
    pub fn at(self, path: &str) -> Route {
        let template = format!("{}/{{*path}}", path.trim_end_matches('/'));
        let files = Arc::new(self);
        Route::get(template, move |Path(rest): Path<String>, req: Request| {
            let files = files.clone();
            async move { files.serve(&rest, req).await }
        })
        .name("static_files")
        .include_in_schema(false)
    }

    async fn serve(&self, rest: &str, mut req: Request) -> Result<Response, HttpError> {
        let not_found = || HttpError::not_found("Not Found");
        // The route's prefix and the file's path, both as sent (still
        // percent-encoded): ServeDir decodes the path itself, and needs the
        // prefix for its trailing-slash redirects.
        let raw = req.uri().path().to_owned();
        let segments: Vec<&str> = raw.split('/').collect();
        let depth = rest.split('/').count();
        if depth >= segments.len() {
            return Err(not_found());
        }
        let (prefix, tail) = segments.split_at(segments.len() - depth);
        let tail = tail.join("/");
        // An encoded `/` (`%2F`) would shift the split: refuse what does
        // not decode to the matched path.
        if percent_encoding::percent_decode_str(&tail).decode_utf8_lossy() != rest {
            return Err(not_found());
        }
        let uri = match req.uri().query() {
            Some(q) => format!("/{tail}?{q}"),
            None => format!("/{tail}"),
        };
        *req.uri_mut() = uri.parse().map_err(|_| not_found())?;
        let mut service = ServeDir::new(&self.dir)
            .append_index_html_on_directories(self.index_html)
            .redirect_path_prefix(prefix.join("/"));
        if self.precompressed {
            service = service.precompressed_br().precompressed_gzip();
        }
        let (parts, _) = req.into_parts();
        let res = call(service, parts.method, parts.uri, parts.headers).await;
        finish(res, &self.cache_control).ok_or_else(not_found)
    }
}

/// Calls ServeDir/ServeFile, honouring `If-Range` (which tower-http does
/// not): a range whose validator no longer matches the file is answered
/// with the whole file (RFC 9110 § 13.1.5).
async fn call<S>(
    service: S,
    method: Method,
    uri: http::Uri,
    headers: HeaderMap,
) -> http::Response<ServeFileSystemResponseBody>
where
    S: tower::Service<
            http::Request<axum::body::Body>,
            Response = http::Response<ServeFileSystemResponseBody>,
            Error = std::convert::Infallible,
        > + Clone,
{
    let request = |headers: HeaderMap| {
        let mut req = http::Request::new(axum::body::Body::empty());
        *req.method_mut() = method.clone();
        *req.uri_mut() = uri.clone();
        *req.headers_mut() = headers;
        req
    };
    let if_range = headers.get(header::IF_RANGE).cloned();
    let without_range = if_range.is_some().then(|| {
        let mut h = headers.clone();
        h.remove(header::RANGE);
        h.remove(header::IF_RANGE);
        h
    });
    let res = match service.clone().oneshot(request(headers)).await {
        Ok(res) => res,
        Err(never) => match never {},
    };
    match (if_range, without_range) {
        (Some(validator), Some(headers))
            if res.status() == StatusCode::PARTIAL_CONTENT
                && !if_range_matches(&validator, res.headers()) =>
        {
            match service.oneshot(request(headers)).await {
                Ok(res) => res,
                Err(never) => match never {},
            }
        }
        _ => res,
    }
}

/// `If-Range`: a strong entity tag equal to the file's `ETag`, or a date
/// equal to its `Last-Modified`.
fn if_range_matches(validator: &HeaderValue, response: &HeaderMap) -> bool {
    let v = validator.as_bytes();
    if v.starts_with(b"W/") {
        return false;
    }
    let against = if v.starts_with(b"\"") {
        header::ETAG
    } else {
        header::LAST_MODIFIED
    };
    response
        .get(against)
        .is_some_and(|current| current.as_bytes() == v)
}

/// ServeDir's answer with the `Cache-Control` on what a cache may keep;
/// `None` for a `404` (answered in ferrapi's `{"detail": …}` shape).
fn finish<B>(res: http::Response<B>, cache_control: &HeaderValue) -> Option<Response>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let status = res.status();
    if status == StatusCode::NOT_FOUND {
        return None;
    }
    let mut res = res.map(axum::body::Body::new);
    if matches!(
        status,
        StatusCode::OK | StatusCode::PARTIAL_CONTENT | StatusCode::NOT_MODIFIED
    ) {
        res.headers_mut()
            .insert(header::CACHE_CONTROL, cache_control.clone());
    }
    Some(res)
}

/// The parts of a request a file download honours: the method (`HEAD`
/// sends no body) and the `Range`, `If-Range`, `If-None-Match`,
/// `If-Modified-Since`, `If-Match`, `If-Unmodified-Since` and
/// `Accept-Encoding` headers. Documents the optional `Range` header.
#[derive(Debug, Clone)]
pub struct FileRequest {
    method: Method,
    headers: HeaderMap,
}

const HONOURED: [header::HeaderName; 7] = [
    header::RANGE,
    header::IF_RANGE,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_MATCH,
    header::IF_UNMODIFIED_SINCE,
    header::ACCEPT_ENCODING,
];

impl FromRequestParts for FileRequest {
    async fn from_request_parts(
        parts: &mut Parts,
        _cx: &RequestContext,
    ) -> Result<Self, Rejection> {
        let mut headers = HeaderMap::new();
        for name in HONOURED {
            for value in parts.headers.get_all(&name) {
                headers.append(name.clone(), value.clone());
            }
        }
        Ok(Self {
            method: parts.method.clone(),
            headers,
        })
    }
}

impl DescribeInput for FileRequest {
    fn describe(op: &mut OperationBuilder<'_>) {
        op.parameter(
            "Range",
            ParameterIn::Header,
            false,
            json!({
                "type": "string",
                "title": "Range",
                "description": "One byte range (`bytes=0-1023`, `bytes=1024-`, `bytes=-512`): answered 206 with those bytes, or 416 when the file has none of them"
            }),
        );
    }
}

impl FileRequest {
    /// Answers with the file at `path` (its content type guessed from the
    /// extension), honouring the request's `Range` and conditional headers:
    /// `200`, `206` with `Content-Range`, `304`, `412` or `416`.
    ///
    /// # Errors
    /// `404 Not Found` when there is no such file.
    pub async fn serve(
        &self,
        path: impl AsRef<std::path::Path>,
    ) -> Result<FileResponse, HttpError> {
        let res = call(
            ServeFile::new(path),
            self.method.clone(),
            http::Uri::from_static("/"),
            self.headers.clone(),
        )
        .await;
        let cache_control = HeaderValue::from_static(DEFAULT_CACHE_CONTROL);
        finish(res, &cache_control)
            .map(FileResponse)
            .ok_or_else(|| HttpError::not_found("Not Found"))
    }
}

/// A file answered by [`FileRequest::serve`], with `Range` support.
#[derive(Debug)]
pub struct FileResponse(Response);

impl FileResponse {
    /// Asks the browser to save the file as `filename`
    /// (`Content-Disposition: attachment`, with an ASCII fallback and the
    /// UTF-8 name as `filename*`).
    #[must_use]
    pub fn attachment(mut self, filename: &str) -> Self {
        self.set_disposition("attachment", filename);
        self
    }

    /// Asks the browser to show the file, naming it `filename` if saved
    /// (`Content-Disposition: inline`).
    #[must_use]
    pub fn inline(mut self, filename: &str) -> Self {
        self.set_disposition("inline", filename);
        self
    }

    /// Replaces the guessed content type. An invalid value is ignored
    /// (and logged).
    #[must_use]
    pub fn content_type(mut self, content_type: &str) -> Self {
        self.set(header::CONTENT_TYPE, content_type);
        self
    }

    /// Replaces the `Cache-Control` header (default `no-cache`). An invalid
    /// value is ignored (and logged).
    #[must_use]
    pub fn cache_control(mut self, value: &str) -> Self {
        if self.0.headers().contains_key(header::CACHE_CONTROL) {
            self.set(header::CACHE_CONTROL, value);
        }
        self
    }

    /// The status (`200`, `206`, `304`, `412` or `416`).
    pub fn status(&self) -> StatusCode {
        self.0.status()
    }

    fn set(&mut self, name: header::HeaderName, value: &str) {
        match HeaderValue::from_str(value) {
            Ok(v) => {
                self.0.headers_mut().insert(name, v);
            }
            Err(_) => tracing::error!(header = %name, value, "invalid header value ignored"),
        }
    }

    fn set_disposition(&mut self, kind: &str, filename: &str) {
        let ascii: String = filename
            .chars()
            .map(|c| {
                if (c.is_ascii_graphic() && c != '"' && c != '\\') || c == ' ' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let mut value = format!("{kind}; filename=\"{ascii}\"");
        if ascii != filename {
            let encoded =
                percent_encoding::utf8_percent_encode(filename, percent_encoding::NON_ALPHANUMERIC);
            value.push_str(&format!("; filename*=UTF-8''{encoded}"));
        }
        self.set(header::CONTENT_DISPOSITION, &value);
    }
}

impl Responder for FileResponse {
    fn respond(self, _cx: &RequestContext) -> Response {
        self.0
    }
}

impl DescribeOutput for FileResponse {
    fn describe(op: &mut OperationBuilder<'_>, status: StatusCode) {
        let binary = json!({"type": "string", "format": "binary"});
        op.response(
            status,
            "The file",
            Some(("application/octet-stream", binary.clone())),
        );
        op.response(
            StatusCode::PARTIAL_CONTENT,
            "The requested byte range",
            Some(("application/octet-stream", binary)),
        );
        op.response(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "The file has none of the requested bytes",
            None,
        );
    }
}
