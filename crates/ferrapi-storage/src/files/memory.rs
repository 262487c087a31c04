//! Files in memory.

use super::{FileBackend, FileError, FileKey, FileObject, Upload};
use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use futures_util::{StreamExt, stream};
use std::collections::HashMap;
use std::fmt;
use std::sync::RwLock;

/// Files in a map in memory (tests; uploads that may vanish with the
/// process). The whole file is held, so bound uploads with the `limit` of
/// [`FileStore::put`](super::FileStore::put).
///
/// ```
/// use ferrapi_storage::files::{FileStore, MemoryFileStore};
///
/// let store = FileStore::new(MemoryFileStore::new());
/// ```
#[derive(Default)]
pub struct MemoryFileStore {
    files: RwLock<HashMap<String, (String, Bytes)>>,
}

impl fmt::Debug for MemoryFileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryFileStore")
            .field("files", &self.len())
            .finish()
    }
}

impl MemoryFileStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of files.
    pub fn len(&self) -> usize {
        self.files.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl FileBackend for MemoryFileStore {
    fn put<'a>(
        &'a self,
        key: &'a FileKey,
        content_type: &'a str,
        mut body: Upload<'a>,
    ) -> BoxFuture<'a, Result<u64, FileError>> {
        Box::pin(async move {
            let mut buf = BytesMut::new();
            while let Some(chunk) = body.next().await {
                buf.extend_from_slice(&chunk?);
            }
            let size = buf.len() as u64;
            self.files
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(
                    key.as_str().to_owned(),
                    (content_type.to_owned(), buf.freeze()),
                );
            Ok(size)
        })
    }

    fn get<'a>(&'a self, key: &'a FileKey) -> BoxFuture<'a, Result<Option<FileObject>, FileError>> {
        let found = self
            .files
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(key.as_str())
            .cloned();
        Box::pin(std::future::ready(Ok(found.map(
            |(content_type, bytes)| FileObject {
                content_type,
                size: bytes.len() as u64,
                body: stream::iter([Ok(bytes)]).boxed(),
            },
        ))))
    }

    fn delete<'a>(&'a self, key: &'a FileKey) -> BoxFuture<'a, Result<bool, FileError>> {
        let removed = self
            .files
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key.as_str())
            .is_some();
        Box::pin(std::future::ready(Ok(removed)))
    }

    fn exists<'a>(&'a self, key: &'a FileKey) -> BoxFuture<'a, Result<bool, FileError>> {
        let found = self
            .files
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(key.as_str());
        Box::pin(std::future::ready(Ok(found)))
    }

    fn health(&self) -> BoxFuture<'_, Result<(), FileError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}
