//! [`Multipart`]: a streaming `multipart/form-data` body (FastAPI's
//! `UploadFile` and `File()`), with per-part size and content-type limits.
//!
//! # What a FastAPI or axum user should expect
//!
//! - **Streaming, never buffered.** Parts are read as the client sends them:
//!   [`Field::chunk`] gives the next piece, [`Field::copy_to`] streams a part
//!   into any `AsyncWrite`, [`Field::save`] into a file. A 50 MiB upload
//!   does not hold 50 MiB in memory. (FastAPI's `UploadFile` spools to a
//!   temporary file first; axum's `Multipart` streams as this one does.)
//!   The route's body is therefore *not* read before the dependencies run,
//!   as buffered bodies (JSON, forms) are.
//! - **Declared parts.** `Multipart<F>` takes a [`MultipartForm`] `F` that
//!   lists the parts (name, file or text, required, accepted content types,
//!   largest size). That one declaration is what is enforced and what the
//!   OpenAPI document shows (`multipart/form-data`, file parts as
//!   `type: string, format: binary`). `Multipart` alone ([`AnyParts`])
//!   accepts any part.
//! - **Errors in the usual shapes.** A part over its size limit is a 413
//!   `{"detail": …}` (and so is a body over the stream limit); a declared part
//!   whose *declared* content type (the part's `Content-Type` header) is not
//!   accepted is a 415, answered before one byte of it is read, so nothing is
//!   stored; a required part that never came is a 422 in FastAPI's shape
//!   (`{"type": "missing", "loc": ["body", "file"], "msg": "Field required",
//!   "input": null}`), as is a body that is not multipart at all when the
//!   form has required parts; a malformed body is a 400 (FastAPI's "There
//!   was an error parsing the body").
//! - **Limits.** A declared part's `max_size` applies whatever the app-wide
//!   body limit ([`App::body_limit`](crate::App::body_limit)) says: when
//!   every declared part has a `max_size`, the whole body may be as large as
//!   their sum plus 64 KiB for part headers and small extra fields, or the
//!   route's limit if that is larger. Otherwise the route's limit
//!   ([`Route::body_limit`](crate::Route::body_limit), else the app's)
//!   bounds the whole body and every part. A `Content-Length` over the limit
//!   is refused before the body is read. A route declared with `#[put]` is
//!   a function returning its [`Route`](crate::Route), so its limit is set
//!   where it is mounted: `.route(upload().body_limit(50 << 20))`.
//! - **Order.** Parts arrive in the order the client sent them, one at a
//!   time: a [`Field`] borrows the `Multipart`, so the next part can be asked
//!   for only once the previous one is dropped (its unread bytes are then
//!   skipped). Parts the form does not declare are handed over too (skip
//!   them with `continue`), as FastAPI ignores extra form fields.
//!   [`Multipart::field`] skips to a named part.
//!
//! # Errors and `?`
//!
//! [`MultipartError`] is an ordinary error type (thiserror). `?` in a
//! handler returning `Result<_, ferrapi::Error>` answers its status: the
//! application renders a `MultipartError` as the [`HttpError`] (413, 415,
//! 400) or [`ValidationErrors`] (422) it stands for, so exception handlers
//! registered for those types shape it too; a failed write
//! ([`MultipartError::Write`]) is a logged 500. A handler may also return
//! `Result<_, MultipartError>` (it is a [`crate::ResponseError`]
//! and documents 413 and 415). Because it is a `std::error::Error`, a
//! part's stream ([`Field::into_stream`]) can go to any storage API that
//! takes a fallible byte stream, and the `MultipartError` can be found again
//! in that API's error (`downcast_ref`) to answer its status.
//!
//! # Example
//!
//! ```
//! use ferrapi::prelude::*;
//! use ferrapi::extract::{Multipart, MultipartForm, Part};
//!
//! /// The avatar upload: one image of at most 5 MiB.
//! struct AvatarUpload;
//! impl MultipartForm for AvatarUpload {
//!     const NAME: &'static str = "AvatarUpload";
//!     const PARTS: &'static [Part] = &[Part::file("file")
//!         .accept(&["image/png", "image/jpeg"])
//!         .max_size(5 * 1024 * 1024)];
//! }
//!
//! #[put("/users/{user_id}/avatar", status = 204)]
//! async fn put_avatar(
//!     Path(user_id): Path<i64>,
//!     mut form: Multipart<AvatarUpload>,
//! ) -> Result<NoContent, ferrapi::Error> {
//!     let field = form.field("file").await?;
//!     let path = std::env::temp_dir().join(format!("avatar-{user_id}"));
//!     field.save(&path).await?;
//!     Ok(NoContent)
//! }
//!
//! let app = App::new().route(put_avatar);
//! ```

use super::{FromRequest, Rejection, Request, RequestContext};
use crate::openapi::{DescribeInput, OperationBuilder};
use crate::response::ResponseError;
use bytes::Bytes;
use ferrapi_core::HttpError;
use ferrapi_core::extract::too_large;
use ferrapi_core::validation::{ErrorItem, Loc, Source, ValidationErrors};
use futures_util::Stream;
use http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Room for part headers and small undeclared fields when the whole body's
/// limit is derived from the declared parts' sizes.
const HEADER_ALLOWANCE: u64 = 64 * 1024;

/// Whether a declared part carries a file or a text value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartKind {
    /// A file (documented as `type: string, format: binary`).
    File,
    /// A text value (documented as `type: string`).
    Text,
}

/// One part a [`MultipartForm`] declares. Built in `const` context:
///
/// ```
/// use ferrapi::extract::Part;
///
/// const FILE: Part = Part::file("file").accept(&["image/png"]).max_size(1 << 20);
/// const NOTE: Part = Part::text("note").optional().max_size(1024);
/// assert_eq!(FILE.name(), "file");
/// assert!(!NOTE.is_required());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Part {
    name: &'static str,
    kind: PartKind,
    required: bool,
    accept: &'static [&'static str],
    max_size: Option<u64>,
    description: Option<&'static str>,
}

impl Part {
    /// A required file part named `name`, of any content type and size.
    pub const fn file(name: &'static str) -> Self {
        Self {
            name,
            kind: PartKind::File,
            required: true,
            accept: &[],
            max_size: None,
            description: None,
        }
    }
    /// A required text part named `name`.
    pub const fn text(name: &'static str) -> Self {
        Self {
            kind: PartKind::Text,
            ..Self::file(name)
        }
    }
    /// The part may be left out.
    #[must_use]
    pub const fn optional(mut self) -> Self {
        self.required = false;
        self
    }
    /// The content types accepted for this part, matched against the part's
    /// declared `Content-Type` (parameters and case ignored; `image/*`
    /// accepts any image type). Any other is a 415. Empty: any type.
    #[must_use]
    pub const fn accept(mut self, content_types: &'static [&'static str]) -> Self {
        self.accept = content_types;
        self
    }
    /// The largest size of this part in bytes; a larger one is a 413.
    #[must_use]
    pub const fn max_size(mut self, bytes: u64) -> Self {
        self.max_size = Some(bytes);
        self
    }
    /// The part's description in the OpenAPI document.
    #[must_use]
    pub const fn description(mut self, text: &'static str) -> Self {
        self.description = Some(text);
        self
    }
    /// The part's name.
    pub const fn name(&self) -> &'static str {
        self.name
    }
    /// File or text.
    pub const fn kind(&self) -> PartKind {
        self.kind
    }
    /// Whether the part must be sent.
    pub const fn is_required(&self) -> bool {
        self.required
    }
    /// The accepted content types (empty: any).
    pub const fn accepted(&self) -> &'static [&'static str] {
        self.accept
    }
    /// The largest size, if limited.
    pub const fn size_limit(&self) -> Option<u64> {
        self.max_size
    }

    fn accepts(&self, content_type: Option<&str>) -> bool {
        if self.accept.is_empty() {
            return true;
        }
        let Some(ct) = content_type else {
            return false;
        };
        let essence = ct.split(';').next().unwrap_or("").trim();
        self.accept.iter().any(|a| mime_matches(a, essence))
    }

    fn schema(&self) -> Value {
        let mut schema = match self.kind {
            PartKind::File => {
                let media = match self.accept {
                    [one] if !one.contains('*') => *one,
                    _ => "application/octet-stream",
                };
                json!({"type": "string", "format": "binary", "contentMediaType": media})
            }
            PartKind::Text => json!({"type": "string"}),
        };
        let mut notes = Vec::new();
        if let Some(d) = self.description {
            notes.push(d.to_owned());
        }
        if !self.accept.is_empty() {
            notes.push(format!(
                "Accepted content types: {}.",
                self.accept.join(", ")
            ));
        }
        if let Some(max) = self.max_size {
            notes.push(format!("At most {max} bytes."));
        }
        if let Value::Object(map) = &mut schema {
            map.insert("title".into(), Value::String(title_case(self.name)));
            if !notes.is_empty() {
                map.insert("description".into(), Value::String(notes.join(" ")));
            }
        }
        schema
    }
}

/// `image/png` against an accepted `image/png` or `image/*` (case-insensitive).
fn mime_matches(accepted: &str, essence: &str) -> bool {
    match accepted.strip_suffix("/*") {
        Some(ty) => essence
            .split_once('/')
            .is_some_and(|(t, _)| t.eq_ignore_ascii_case(ty)),
        None => accepted.eq_ignore_ascii_case(essence),
    }
}

/// pydantic's field title: `avatar_file` → `Avatar File`.
fn title_case(name: &str) -> String {
    name.split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The parts of a multipart form: enforced by [`Multipart<F>`] and shown in
/// the OpenAPI document as the component `NAME`.
///
/// ```
/// use ferrapi::extract::{MultipartForm, Part};
///
/// struct Attachment;
/// impl MultipartForm for Attachment {
///     const NAME: &'static str = "Attachment";
///     const PARTS: &'static [Part] = &[
///         Part::file("file").max_size(10 << 20),
///         Part::text("comment").optional().max_size(4096),
///     ];
/// }
/// ```
pub trait MultipartForm: Send + 'static {
    /// The form's schema name under `components/schemas`.
    const NAME: &'static str;
    /// The declared parts, in the order the document lists them.
    const PARTS: &'static [Part];

    /// The largest body this form needs, when every part is limited: their
    /// sum plus an allowance for headers and small undeclared fields.
    fn stream_limit() -> Option<u64> {
        let mut total = HEADER_ALLOWANCE;
        for part in Self::PARTS {
            total = total.checked_add(part.max_size?)?;
        }
        (!Self::PARTS.is_empty()).then_some(total)
    }
}

/// Any parts, none required: what a bare [`Multipart`] accepts. Documented
/// as an object of binary parts.
#[derive(Debug, Clone, Copy)]
pub struct AnyParts;

impl MultipartForm for AnyParts {
    const NAME: &'static str = "MultipartForm";
    const PARTS: &'static [Part] = &[];
}

/// Why reading a multipart body failed. Answered with the status given by
/// [`status`](Self::status): through `?` into [`ferrapi::Error`](crate::Error)
/// (the application renders it as the equivalent [`HttpError`] or
/// [`ValidationErrors`], so exception handlers for those apply), as a
/// handler's own error type ([`ResponseError`]), or converted into an
/// [`HttpError`]. A failed write ([`Write`](Self::Write)) is a logged 500.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MultipartError {
    /// The whole body is over the limit: 413.
    #[error("Request body too large")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// One part is over its limit: 413.
    #[error("Part `{part}` is larger than {limit} bytes")]
    PartTooLarge {
        /// The part's name.
        part: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// A declared part's content type is not accepted (or the body is not
    /// multipart and the form requires no part): 415.
    #[error("{}", unsupported_message(part, content_type.as_deref(), accepted))]
    UnsupportedMediaType {
        /// The part's name (empty for the body itself).
        part: String,
        /// The declared content type, if any.
        content_type: Option<String>,
        /// What is accepted.
        accepted: &'static [&'static str],
    },
    /// Required parts that did not come: 422 `missing` for each.
    #[error("missing part(s): {}", parts.join(", "))]
    Missing {
        /// Their names, in declaration order.
        parts: Vec<String>,
    },
    /// A text part that is not UTF-8: 422 `string_unicode`.
    #[error("part `{part}` is not valid UTF-8")]
    InvalidText {
        /// The part's name.
        part: String,
    },
    /// The body is not well-formed multipart, or the client stopped
    /// sending: 400 (the parser's reason is logged at `DEBUG`).
    #[error("There was an error parsing the body")]
    Malformed(String),
    /// Writing a part out failed (disk full, permissions): a logged 500.
    #[error("failed to store an uploaded part: {0}")]
    Write(#[source] std::io::Error),
    /// The body stopped arriving
    /// ([`ServeConfig::body_read_timeout`](crate::ServeConfig::body_read_timeout)):
    /// 408, and the connection is closed.
    #[error("Timed out reading the request body")]
    Timeout(#[source] crate::BodyTimeout),
    /// A compressed body was refused
    /// ([`DecompressionLayer`](crate::middleware::DecompressionLayer)):
    /// 413, or 400 for invalid compressed data.
    #[cfg(feature = "decompression")]
    #[error(transparent)]
    Decompression(crate::middleware::DecompressionError),
}

fn unsupported_message(part: &str, content_type: Option<&str>, accepted: &[&str]) -> String {
    let ct = content_type.unwrap_or("none");
    if part.is_empty() {
        format!("Unsupported media type `{ct}`: expected multipart/form-data")
    } else {
        format!(
            "Unsupported media type `{ct}` for part `{part}`: expected {}",
            accepted.join(" or ")
        )
    }
}

impl MultipartError {
    /// The status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BodyTooLarge { .. } | Self::PartTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Missing { .. } | Self::InvalidText { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::Write(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            #[cfg(feature = "decompression")]
            Self::Decompression(e) => e.status(),
        }
    }

    /// The 422 entries of a validation failure, in FastAPI's shape.
    fn validation_items(&self) -> Option<Vec<ErrorItem>> {
        match self {
            Self::Missing { parts } => Some(
                parts
                    .iter()
                    .map(|p| {
                        ErrorItem::new(
                            "missing",
                            Loc::source(Source::Body).join(p.clone()),
                            "Field required",
                            Value::Null,
                        )
                    })
                    .collect(),
            ),
            Self::InvalidText { part } => Some(vec![ErrorItem::new(
                "string_unicode",
                Loc::source(Source::Body).join(part.clone()),
                "Input should be a valid string, unable to parse raw data as a unicode string",
                Value::Null,
            )]),
            _ => None,
        }
    }

    /// The error the client is answered with: [`ValidationErrors`] for a
    /// 422, an [`HttpError`] otherwise; `None` for a failed write, which
    /// stays itself (a logged 500 with its cause).
    fn client_error(&self) -> Option<crate::Error> {
        if let Some(items) = self.validation_items() {
            return Some(ValidationErrors(items).into());
        }
        match self {
            Self::Write(_) => None,
            Self::Malformed(cause) => {
                tracing::debug!(cause = %cause, "malformed multipart body");
                Some(HttpError::new(self.status(), self.to_string()).into())
            }
            _ => Some(HttpError::new(self.status(), self.to_string()).into()),
        }
    }

    fn from_multer(e: multer::Error, limit: u64) -> Self {
        match e {
            multer::Error::StreamSizeExceeded { .. } => Self::BodyTooLarge { limit },
            multer::Error::FieldSizeExceeded { limit, field_name } => Self::PartTooLarge {
                part: field_name.unwrap_or_default(),
                limit,
            },
            multer::Error::StreamReadFailed(e) => Self::from_body_error(&*e),
            other => Self::Malformed(other.to_string()),
        }
    }

    /// A failed read of the body itself: timed out, refused by the
    /// decompression layer, or the client went (malformed, as before).
    fn from_body_error(e: &(dyn std::error::Error + 'static)) -> Self {
        if let Some(t) = ferrapi_core::extract::find_in::<crate::BodyTimeout>(e) {
            return Self::Timeout(*t);
        }
        #[cfg(feature = "decompression")]
        if let Some(d) = ferrapi_core::extract::find_in::<crate::middleware::DecompressionError>(e)
        {
            return Self::Decompression(d.clone());
        }
        Self::Malformed(e.to_string())
    }
}

/// What the application renders for `e`: a [`MultipartError`] becomes the
/// [`HttpError`] or [`ValidationErrors`] it stands for (so that `?` answers
/// 413/415/422/400 and the exception handlers for those types apply);
/// anything else is left alone.
pub(crate) fn client_error(e: crate::Error) -> crate::Error {
    match e
        .downcast_ref::<MultipartError>()
        .and_then(MultipartError::client_error)
    {
        Some(client) => client,
        None => e,
    }
}

impl From<MultipartError> for HttpError {
    fn from(e: MultipartError) -> Self {
        if let Some(items) = e.validation_items() {
            return HttpError::new(
                e.status(),
                serde_json::to_value(items).unwrap_or(Value::Null),
            );
        }
        if let MultipartError::Write(io) = &e {
            tracing::error!(error = %io, "failed to store an uploaded part");
            return HttpError::internal();
        }
        HttpError::new(e.status(), e.to_string())
    }
}

impl ResponseError for MultipartError {
    fn into_error(self) -> crate::Error {
        self.client_error().unwrap_or_else(|| self.into())
    }
    fn describe(op: &mut OperationBuilder<'_>) {
        op.error_response(StatusCode::BAD_REQUEST, "Malformed multipart body");
        op.error_response(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large");
        op.error_response(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Unsupported media type");
    }
}

/// A streaming `multipart/form-data` body whose parts `F` declares (see the
/// [module docs](self)). Must be the handler's last parameter.
///
/// ```
/// use ferrapi::prelude::*;
/// use ferrapi::extract::Multipart;
///
/// /// Counts the bytes of every part, holding one chunk at a time.
/// #[post("/count")]
/// async fn count(mut form: Multipart) -> Result<Text, ferrapi::Error> {
///     let mut total = 0;
///     while let Some(mut field) = form.next_field().await? {
///         while let Some(chunk) = field.chunk().await? {
///             total += chunk.len();
///         }
///     }
///     Ok(Text(total.to_string()))
/// }
/// ```
pub struct Multipart<F: MultipartForm = AnyParts> {
    inner: multer::Multipart<'static>,
    limit: u64,
    seen: Vec<bool>,
    done: bool,
    _form: PhantomData<fn() -> F>,
}

impl<F: MultipartForm> fmt::Debug for Multipart<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Multipart")
            .field("form", &F::NAME)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

fn missing_items(names: impl Iterator<Item = &'static str>) -> Vec<ErrorItem> {
    MultipartError::Missing {
        parts: names.map(str::to_owned).collect(),
    }
    .validation_items()
    .unwrap_or_default()
}

impl<F: MultipartForm> FromRequest for Multipart<F> {
    async fn from_request(req: Request, cx: &RequestContext) -> Result<Self, Rejection> {
        let route_limit = cx.body_limit() as u64;
        let limit = F::stream_limit().map_or(route_limit, |l| l.max(route_limit));
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let boundary = match content_type.map(multer::parse_boundary) {
            Some(Ok(b)) => b,
            _ => {
                // As FastAPI: a body that is not multipart carries none of
                // the form's parts, so each required one is missing.
                let required = F::PARTS.iter().filter(|p| p.required);
                let items = missing_items(required.map(|p| p.name));
                if !items.is_empty() {
                    return Err(Rejection::Invalid(items));
                }
                return Err(Rejection::Error(
                    MultipartError::UnsupportedMediaType {
                        part: String::new(),
                        content_type: content_type.map(str::to_owned),
                        accepted: &["multipart/form-data"],
                    }
                    .into_error(),
                ));
            }
        };
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(too_large().into());
        }
        let constraints =
            multer::Constraints::new().size_limit(multer::SizeLimit::new().whole_stream(limit));
        let stream = req.into_body().into_data_stream();
        Ok(Self {
            inner: multer::Multipart::with_constraints(stream, boundary, constraints),
            limit,
            seen: vec![false; F::PARTS.len()],
            done: false,
            _form: PhantomData,
        })
    }
}

impl<F: MultipartForm> DescribeInput for Multipart<F> {
    fn describe(op: &mut OperationBuilder<'_>) {
        let required = F::PARTS.iter().any(|p| p.required);
        let schema = if F::PARTS.is_empty() {
            json!({
                "type": "object",
                "additionalProperties": {
                    "type": "string", "format": "binary",
                    "contentMediaType": "application/octet-stream"
                }
            })
        } else {
            let properties: serde_json::Map<String, Value> = F::PARTS
                .iter()
                .map(|p| (p.name.to_owned(), p.schema()))
                .collect();
            let names: Vec<&str> = F::PARTS
                .iter()
                .filter(|p| p.required)
                .map(|p| p.name)
                .collect();
            let mut schema = json!({"type": "object", "title": F::NAME, "properties": properties});
            if !names.is_empty() {
                schema["required"] = json!(names);
            }
            op.registry.add_component(F::NAME, schema)
        };
        op.request_body_schema("multipart/form-data", schema, required);
        <MultipartError as ResponseError>::describe(op);
    }
}

impl<F: MultipartForm> Multipart<F> {
    /// The next part, or `None` at the end of the body. At the end, a
    /// required part that never came is a [`MultipartError::Missing`]. A
    /// declared part whose content type is not accepted is a
    /// [`MultipartError::UnsupportedMediaType`], before any of it is read.
    pub async fn next_field(&mut self) -> Result<Option<Field<'_>>, MultipartError> {
        Ok(self.next_raw().await?.map(Field::new))
    }

    /// Skips to the part named `name` (the parts before it are skipped
    /// unread). When the body ends first, every required part not seen,
    /// `name` included, is a [`MultipartError::Missing`].
    pub async fn field(&mut self, name: &str) -> Result<Field<'_>, MultipartError> {
        loop {
            match self.next_raw().await {
                Ok(Some((field, limit))) if field.name() == Some(name) => {
                    return Ok(Field::new((field, limit)));
                }
                // Dropping a part skips its unread bytes.
                Ok(Some(_)) => continue,
                Ok(None) => {
                    return Err(MultipartError::Missing {
                        parts: vec![name.to_owned()],
                    });
                }
                Err(MultipartError::Missing { mut parts }) => {
                    if !parts.iter().any(|p| p == name) {
                        parts.push(name.to_owned());
                    }
                    return Err(MultipartError::Missing { parts });
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The next part with its size limit, checked against the declaration.
    async fn next_raw(&mut self) -> Result<Option<(multer::Field<'static>, u64)>, MultipartError> {
        if self.done {
            return Ok(None);
        }
        let field = match self.inner.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => {
                self.done = true;
                let missing: Vec<String> = F::PARTS
                    .iter()
                    .zip(&self.seen)
                    .filter(|(p, seen)| p.required && !**seen)
                    .map(|(p, _)| p.name.to_owned())
                    .collect();
                if missing.is_empty() {
                    return Ok(None);
                }
                return Err(MultipartError::Missing { parts: missing });
            }
            Err(e) => {
                self.done = true;
                return Err(MultipartError::from_multer(e, self.limit));
            }
        };
        let mut limit = self.limit;
        let declared = field.name().and_then(|n| {
            F::PARTS
                .iter()
                .zip(self.seen.iter_mut())
                .find(|(p, _)| p.name == n)
        });
        if let Some((part, seen)) = declared {
            *seen = true;
            let content_type = field.content_type().map(|m| m.essence_str().to_owned());
            if !part.accepts(content_type.as_deref()) {
                return Err(MultipartError::UnsupportedMediaType {
                    part: part.name.to_owned(),
                    content_type,
                    accepted: part.accept,
                });
            }
            if let Some(max) = part.max_size {
                limit = limit.min(max);
            }
        }
        Ok(Some((field, limit)))
    }

    /// The largest the whole body may be, in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }
}

/// One part of a [`Multipart`] body, read as a stream of chunks. Limited to
/// its declared `max_size` (else the body's limit): reading past it is a
/// [`MultipartError::PartTooLarge`].
pub struct Field<'a> {
    inner: multer::Field<'static>,
    limit: u64,
    read: u64,
    _multipart: PhantomData<&'a mut ()>,
}

impl fmt::Debug for Field<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Field")
            .field("name", &self.name())
            .field("file_name", &self.file_name())
            .field("content_type", &self.content_type())
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<'a> Field<'a> {
    fn new((inner, limit): (multer::Field<'static>, u64)) -> Self {
        Self {
            inner,
            limit,
            read: 0,
            _multipart: PhantomData,
        }
    }

    /// The part's name (`Content-Disposition: form-data; name="…"`).
    pub fn name(&self) -> Option<&str> {
        self.inner.name()
    }
    /// The file name the client gave, if any. Never use it as a path as is.
    pub fn file_name(&self) -> Option<&str> {
        self.inner.file_name()
    }
    /// The part's declared content type (`image/png`), without parameters.
    pub fn content_type(&self) -> Option<&str> {
        self.inner.content_type().map(|m| m.essence_str())
    }
    /// The part's headers.
    pub fn headers(&self) -> &HeaderMap {
        self.inner.headers()
    }
    /// The largest this part may be, in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }
    /// The bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    fn part_name(&self) -> String {
        self.name().unwrap_or_default().to_owned()
    }

    /// The next chunk of the part, `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, MultipartError> {
        match self.inner.chunk().await {
            Ok(Some(chunk)) => {
                self.read += chunk.len() as u64;
                if self.read > self.limit {
                    return Err(MultipartError::PartTooLarge {
                        part: self.part_name(),
                        limit: self.limit,
                    });
                }
                Ok(Some(chunk))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(MultipartError::from_multer(e, self.limit)),
        }
    }

    /// The whole part in memory (up to its limit): for small parts.
    pub async fn bytes(mut self) -> Result<Bytes, MultipartError> {
        let mut buf = bytes::BytesMut::new();
        while let Some(chunk) = self.chunk().await? {
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }

    /// The whole part as UTF-8 text (up to its limit); invalid UTF-8 is a
    /// 422 `string_unicode` at `["body", name]`.
    pub async fn text(self) -> Result<String, MultipartError> {
        let part = self.part_name();
        let bytes = self.bytes().await?;
        String::from_utf8(bytes.to_vec()).map_err(|_| MultipartError::InvalidText { part })
    }

    /// The part as a stream of chunks (for an object store's upload, a
    /// hasher, …).
    pub fn into_stream(self) -> impl Stream<Item = Result<Bytes, MultipartError>> + Send + 'a {
        futures_util::stream::unfold(Some(self), |state| async move {
            let mut field = state?;
            match field.chunk().await {
                Ok(Some(chunk)) => Some((Ok(chunk), Some(field))),
                Ok(None) => None,
                Err(e) => Some((Err(e), None)),
            }
        })
    }

    /// Streams the rest of the part into `writer`, one chunk in memory at a
    /// time, and flushes it. Returns the number of bytes written.
    pub async fn copy_to<W>(&mut self, writer: &mut W) -> Result<u64, MultipartError>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        let mut written = 0u64;
        while let Some(chunk) = self.chunk().await? {
            writer
                .write_all(&chunk)
                .await
                .map_err(MultipartError::Write)?;
            written += chunk.len() as u64;
        }
        writer.flush().await.map_err(MultipartError::Write)?;
        Ok(written)
    }

    /// Streams the part into the file at `path`, replacing it only once the
    /// whole part arrived: the bytes go to a temporary file beside it, which
    /// is renamed over `path` at the end and removed on any failure (a part
    /// over its limit, a client that went away), so a failed upload leaves
    /// nothing behind and an earlier file intact. Returns the size.
    pub async fn save(mut self, path: impl AsRef<Path>) -> Result<u64, MultipartError> {
        let path = path.as_ref();
        // Removes the temporary file unless it was renamed: on an error, and
        // when the request is cancelled mid-upload (the connection closed and
        // this future was dropped).
        let temp_path = temp_path(path);
        let mut temp = TempFile(Some(temp_path.clone()));
        let mut file = tokio::fs::File::create(&temp_path)
            .await
            .map_err(MultipartError::Write)?;
        let n = self.copy_to(&mut file).await?;
        file.sync_all().await.map_err(MultipartError::Write)?;
        drop(file);
        tokio::fs::rename(&temp_path, path)
            .await
            .map_err(MultipartError::Write)?;
        temp.0 = None;
        Ok(n)
    }
}

/// A file removed when dropped, unless disarmed (`.0 = None`).
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            // Best effort (it may not exist yet); a quick unlink, fine to do
            // synchronously even on an async worker.
            let _ = std::fs::remove_file(path);
        }
    }
}

/// `dir/.name.upload-<pid>-<n>`: beside the target, so the rename stays on
/// one file system.
fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.upload-{}-{n}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_matching() {
        let part = Part::file("f").accept(&["image/png", "text/*"]);
        assert!(part.accepts(Some("image/png")));
        assert!(part.accepts(Some("IMAGE/PNG; q=1")));
        assert!(part.accepts(Some("text/csv")));
        assert!(!part.accepts(Some("image/jpeg")));
        assert!(!part.accepts(None));
        assert!(Part::file("f").accepts(None));
    }

    #[test]
    fn stream_limit_from_parts() {
        struct Limited;
        impl MultipartForm for Limited {
            const NAME: &'static str = "Limited";
            const PARTS: &'static [Part] =
                &[Part::file("a").max_size(10), Part::text("b").max_size(5)];
        }
        struct Open;
        impl MultipartForm for Open {
            const NAME: &'static str = "Open";
            const PARTS: &'static [Part] = &[Part::file("a").max_size(10), Part::file("b")];
        }
        assert_eq!(Limited::stream_limit(), Some(15 + HEADER_ALLOWANCE));
        assert_eq!(Open::stream_limit(), None);
        assert_eq!(AnyParts::stream_limit(), None);
    }

    #[test]
    fn titles() {
        assert_eq!(title_case("avatar_file"), "Avatar File");
        assert_eq!(title_case("file"), "File");
    }
}
