//! File storage: one interface over a local folder (the embedded default),
//! memory, and (feature `s3`) S3-compatible object stores, streaming in both
//! directions.
//!
//! A [`FileStore`] is chosen by URL, as `STORAGE_URL` does:
//!
//! | URL | store |
//! |---|---|
//! | `file://data/uploads` | the folder `data/uploads`, relative to the working directory, created if missing |
//! | `file:///var/lib/app/uploads` | an absolute folder, created if missing |
//! | `memory://` | in memory (tests, or files that may vanish with the process) |
//! | `s3://bucket` or `s3://bucket/prefix` | S3 with the usual `AWS_*` variables (feature `s3`) |
//!
//! - [`put`](FileStore::put) stores a byte **stream** (a multipart field,
//!   a request body) under a key, with its content type, refusing it
//!   ([`FileError::TooLarge`]) as soon as it exceeds the given limit: the
//!   file is never held in memory as a whole (except by the memory store),
//!   and a refused, failed or cancelled upload leaves nothing under its key
//!   (on S3 a cancelled multipart upload leaves parts for the bucket's
//!   lifecycle rule to reclaim, see `S3FileStore`); the previous file under
//!   that key stays until the new one is complete.
//! - [`get`](FileStore::get) returns a [`FileObject`]: the content type, the
//!   size and the bytes as a stream, to send in a response without
//!   reading them all first.
//! - [`delete`](FileStore::delete), [`exists`](FileStore::exists),
//!   [`health`](FileStore::health).
//!
//! Keys are paths such as `avatars/42`: segments of `A-Z a-z 0-9 . _ -`
//! separated by `/`, none empty or starting with a dot (so no `..`, no
//! absolute paths, no hidden files): a key can never leave the store's
//! folder, whatever a client sends. Build keys from ids you control
//! ([`FileKey::new`] checks them).
//!
//! ```
//! use bytes::Bytes;
//! use ferrapi_storage::files::FileStore;
//! use futures_util::{StreamExt, stream};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = FileStore::from_url("memory://").await?;
//! let upload = stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"\x89PNG..."))]);
//! store.put("avatars/42", "image/png", upload, 5 * 1024 * 1024).await?;
//!
//! let file = store.get("avatars/42").await?.expect("stored");
//! assert_eq!((file.content_type.as_str(), file.size), ("image/png", 7));
//! let bytes: Vec<Bytes> = file.body.map(|chunk| chunk.unwrap()).collect().await;
//! assert_eq!(bytes.concat(), b"\x89PNG...");
//! # Ok::<(), ferrapi_storage::files::FileError>(())
//! # }).unwrap();
//! ```
//!
//! On disk, the content type of `a/b` is kept beside it in `a/.b.meta`;
//! uploads are written to a hidden temporary file in the same folder, synced,
//! then renamed over the key, so that readers see the old file or the new
//! one, never half of one.

mod local;
mod memory;
#[cfg(feature = "s3")]
mod s3;

pub use local::LocalFileStore;
pub use memory::MemoryFileStore;
#[cfg(feature = "s3")]
pub use s3::S3FileStore;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// The content type of files stored without a known one.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// A file operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Not a valid key (see the [module docs](self)).
    #[error(
        "invalid file key `{0}`: expected segments of A-Z, a-z, 0-9, `.`, `_`, `-` separated by `/`, none empty or starting with `.`"
    )]
    InvalidKey(String),
    /// Not a usable content type.
    #[error("invalid content type `{0}`")]
    InvalidContentType(String),
    /// The upload exceeded its limit; nothing was stored.
    #[error("file larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The uploaded stream failed (the client went away); nothing was
    /// stored.
    #[error("reading the upload failed: {0}")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The storage failed.
    #[error("file storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The storage backend (S3) failed.
    #[error("file storage error: {0}")]
    Backend(String),
    /// The storage URL is not usable.
    #[error("invalid STORAGE_URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
}

/// A checked key (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileKey(String);

impl FileKey {
    /// The longest key, in bytes.
    pub const MAX_LEN: usize = 512;

    /// Checks `key`.
    ///
    /// ```
    /// use ferrapi_storage::files::FileKey;
    ///
    /// assert!(FileKey::new("avatars/42.png").is_ok());
    /// for bad in ["../etc/passwd", "/abs", "a//b", "a/./b", ".env", "a\\b", "a b", ""] {
    ///     assert!(FileKey::new(bad).is_err(), "{bad}");
    /// }
    /// ```
    ///
    /// # Errors
    /// [`FileError::InvalidKey`].
    pub fn new(key: &str) -> Result<Self, FileError> {
        let segment_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 255
                && !s.starts_with('.')
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        };
        if key.len() <= Self::MAX_LEN && key.split('/').all(segment_ok) {
            Ok(Self(key.to_owned()))
        } else {
            Err(FileError::InvalidKey(key.to_owned()))
        }
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its segments.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

impl fmt::Display for FileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stored file being read.
pub struct FileObject {
    /// Its content type (`application/octet-stream` when none was given).
    pub content_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its bytes, in chunks.
    pub body: BoxStream<'static, Result<Bytes, FileError>>,
}

impl fmt::Debug for FileObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileObject")
            .field("content_type", &self.content_type)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl FileObject {
    /// A `200` response streaming the file, with its `Content-Type` and
    /// `Content-Length`: what a download handler returns.
    ///
    /// ```
    /// use ferrapi::prelude::*;
    /// use ferrapi::response::Response;
    /// use ferrapi_storage::files::FileStore;
    ///
    /// #[get("/users/{user_id}/avatar")]
    /// async fn avatar(State(files): State<FileStore>, Path(user_id): Path<i64>) -> Result<Response, HttpError> {
    ///     let file = files.get(&format!("avatars/{user_id}")).await.map_err(|e| {
    ///         tracing::error!(error = %e, "avatar unreadable");
    ///         HttpError::internal()
    ///     })?;
    ///     let file = file.ok_or_else(|| HttpError::new(ferrapi::http::StatusCode::NOT_FOUND, "Avatar not found"))?;
    ///     Ok(file.into_response())
    /// }
    ///
    /// let app = App::new().state(FileStore::memory()).route(avatar);
    /// ```
    pub fn into_response(self) -> ferrapi_core::response::Response {
        use http::{HeaderValue, header};
        let mut res = ferrapi_core::response::Response::new(
            ferrapi_core::response::Body::from_stream(self.body),
        );
        let content_type = HeaderValue::from_str(&self.content_type)
            .unwrap_or_else(|_| HeaderValue::from_static(OCTET_STREAM));
        res.headers_mut().insert(header::CONTENT_TYPE, content_type);
        res.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(self.size));
        res
    }

    /// Reads the whole file (for small files; stream `body` otherwise).
    ///
    /// # Errors
    /// The storage failed while reading.
    pub async fn bytes(mut self) -> Result<Bytes, FileError> {
        let mut out = Vec::with_capacity(usize::try_from(self.size).unwrap_or(0));
        while let Some(chunk) = self.body.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(Bytes::from(out))
    }
}

/// An upload: chunks, each possibly failing.
pub type Upload<'a> = BoxStream<'a, Result<Bytes, FileError>>;

/// Where files live. Implemented by [`LocalFileStore`], [`MemoryFileStore`]
/// and (feature `s3`) `S3FileStore`; [`FileStore`] checks keys and content
/// types and enforces the size limit before calling them.
pub trait FileBackend: Send + Sync + 'static {
    /// Stores the upload under `key`; the chunks already respect the limit
    /// (the stream fails with [`FileError::TooLarge`] otherwise, and then
    /// nothing may be stored). Returns the size.
    fn put<'a>(
        &'a self,
        key: &'a FileKey,
        content_type: &'a str,
        body: Upload<'a>,
    ) -> BoxFuture<'a, Result<u64, FileError>>;
    /// The file under `key`, if any.
    fn get<'a>(&'a self, key: &'a FileKey) -> BoxFuture<'a, Result<Option<FileObject>, FileError>>;
    /// Removes the file; whether there was one.
    fn delete<'a>(&'a self, key: &'a FileKey) -> BoxFuture<'a, Result<bool, FileError>>;
    /// Whether a file is stored under `key`.
    fn exists<'a>(&'a self, key: &'a FileKey) -> BoxFuture<'a, Result<bool, FileError>>;
    /// Whether the store is usable.
    fn health(&self) -> BoxFuture<'_, Result<(), FileError>>;
    /// A short name (`file`, `memory`, `s3`).
    fn name(&self) -> &'static str;
}

/// The file store (cheap to clone). See the [module docs](self).
#[derive(Clone)]
pub struct FileStore {
    backend: Arc<dyn FileBackend>,
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("backend", &self.backend.name())
            .finish()
    }
}

/// `file://data/uploads` → `data/uploads`; `file:///srv/up` → `/srv/up`.
fn file_url_path(rest: &str) -> PathBuf {
    PathBuf::from(rest)
}

impl FileStore {
    /// A store over any backend.
    pub fn new(backend: impl FileBackend) -> Self {
        Self {
            backend: Arc::new(backend),
        }
    }

    /// A store in memory.
    pub fn memory() -> Self {
        Self::new(MemoryFileStore::new())
    }

    /// A store in the folder `root` (created if missing).
    ///
    /// # Errors
    /// The folder cannot be created.
    pub async fn local(root: impl Into<PathBuf>) -> Result<Self, FileError> {
        Ok(Self::new(LocalFileStore::open(root).await?))
    }

    /// The store a URL names (see the [module docs](self)).
    ///
    /// # Errors
    /// [`FileError::InvalidUrl`] for an unknown scheme, an empty path, a
    /// backend not built in, or a folder that cannot be created.
    pub async fn from_url(url: &str) -> Result<Self, FileError> {
        let invalid = |reason: String| FileError::InvalidUrl {
            url: url.to_owned(),
            reason,
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            invalid("expected `file://<folder>`, `memory://` or `s3://<bucket>`".into())
        })?;
        match scheme {
            "file" => {
                if rest.is_empty() {
                    return Err(invalid("no folder given".into()));
                }
                Self::local(file_url_path(rest))
                    .await
                    .map_err(|e| invalid(e.to_string()))
            }
            "memory" => Ok(Self::memory()),
            #[cfg(feature = "s3")]
            "s3" => Ok(Self::new(
                S3FileStore::from_env(rest).map_err(|e| invalid(e.to_string()))?,
            )),
            #[cfg(not(feature = "s3"))]
            "s3" => Err(invalid(
                "this build has no S3 support (enable the `s3` feature of ferrapi-storage)".into(),
            )),
            _ => Err(invalid(
                "expected `file://<folder>`, `memory://` or `s3://<bucket>`".into(),
            )),
        }
    }

    /// The backend's name.
    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    /// Stores `body` under `key` with `content_type`, refusing it past
    /// `limit` bytes. Returns the size stored.
    ///
    /// # Errors
    /// [`FileError::InvalidKey`], [`FileError::InvalidContentType`],
    /// [`FileError::TooLarge`] (nothing stored), [`FileError::Body`] when the
    /// stream fails (nothing stored), or the storage's failure.
    pub async fn put<S, E>(
        &self,
        key: &str,
        content_type: &str,
        body: S,
        limit: u64,
    ) -> Result<u64, FileError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let key = FileKey::new(key)?;
        check_content_type(content_type)?;
        let mut seen: u64 = 0;
        let body = body.map(move |chunk| {
            let chunk = chunk.map_err(|e| FileError::Body(e.into()))?;
            seen = seen.saturating_add(chunk.len() as u64);
            if seen > limit {
                return Err(FileError::TooLarge { limit });
            }
            Ok(chunk)
        });
        self.backend.put(&key, content_type, body.boxed()).await
    }

    /// Stores `bytes` under `key`.
    ///
    /// # Errors
    /// As [`put`](Self::put).
    pub async fn put_bytes(
        &self,
        key: &str,
        content_type: &str,
        bytes: impl Into<Bytes>,
    ) -> Result<u64, FileError> {
        let once = futures_util::stream::iter([Ok::<_, FileError>(bytes.into())]);
        self.put(key, content_type, once, u64::MAX).await
    }

    /// The file under `key`, if any.
    ///
    /// # Errors
    /// An invalid key, or the storage's failure.
    pub async fn get(&self, key: &str) -> Result<Option<FileObject>, FileError> {
        self.backend.get(&FileKey::new(key)?).await
    }

    /// Removes the file under `key`; whether there was one.
    ///
    /// # Errors
    /// An invalid key, or the storage's failure.
    pub async fn delete(&self, key: &str) -> Result<bool, FileError> {
        self.backend.delete(&FileKey::new(key)?).await
    }

    /// Whether a file is stored under `key`.
    ///
    /// # Errors
    /// An invalid key, or the storage's failure.
    pub async fn exists(&self, key: &str) -> Result<bool, FileError> {
        self.backend.exists(&FileKey::new(key)?).await
    }

    /// Whether the store is usable (the readiness check).
    ///
    /// # Errors
    /// The storage's failure.
    pub async fn health(&self) -> Result<(), FileError> {
        self.backend.health().await
    }
}

/// `type/subtype` with optional parameters, printable ASCII, at most 255
/// bytes: what can be sent back in a `Content-Type` header unchanged.
fn check_content_type(ct: &str) -> Result<(), FileError> {
    let ok = (3..=255).contains(&ct.len())
        && ct.bytes().all(|b| (0x20..0x7f).contains(&b))
        && ct
            .split(';')
            .next()
            .and_then(|t| t.trim().split_once('/'))
            .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty());
    if ok {
        Ok(())
    } else {
        Err(FileError::InvalidContentType(ct.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for good in ["a", "avatars/42", "a/b/c.d-e_f", "x.png"] {
            assert!(FileKey::new(good).is_ok(), "{good}");
        }
        let long = "a".repeat(300);
        for bad in [
            "", "/", "/a", "a/", "a//b", "..", "../a", "a/../b", "./a", ".hidden", "a/.b", "a\\b",
            "a b", "a:b", "é", "a\0b", &long,
        ] {
            assert!(FileKey::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn content_types() {
        for good in [
            "image/png",
            "text/plain; charset=utf-8",
            "application/octet-stream",
        ] {
            assert!(check_content_type(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "png",
            "/png",
            "image/",
            "text/plain\r\nX: y",
            "a/b\u{7f}",
        ] {
            assert!(check_content_type(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn file_urls() {
        assert_eq!(file_url_path("data/uploads"), PathBuf::from("data/uploads"));
        assert_eq!(file_url_path("/srv/up"), PathBuf::from("/srv/up"));
    }
}
