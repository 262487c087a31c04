//! File storage round trips, the same suite on a local folder and in
//! memory.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use ferrapi_storage::files::{FileError, FileStore};
use futures_util::{StreamExt, stream};
use std::path::{Path, PathBuf};

/// A folder no other run or test uses, under the system's temp folder.
fn temp_folder(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    std::env::temp_dir().join(format!(
        "ferrapi-files-{name}-{}-{nanos}",
        std::process::id()
    ))
}

/// Removes the folder when the test ends.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `chunks` chunks of `size` bytes, chunk `i` filled with byte `i`.
fn upload(
    chunks: usize,
    size: usize,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    stream::iter((0..chunks).map(move |i| Ok(Bytes::from(vec![(i % 251) as u8; size]))))
}

fn expected(chunks: usize, size: usize) -> Vec<u8> {
    (0..chunks)
        .flat_map(|i| std::iter::repeat_n((i % 251) as u8, size))
        .collect()
}

async fn round_trip(store: &FileStore) {
    assert!(!store.exists("avatars/1").await.unwrap());
    assert!(store.get("avatars/1").await.unwrap().is_none());

    let size = store
        .put("avatars/1", "image/png", upload(300, 1024), 5 * 1024 * 1024)
        .await
        .unwrap();
    assert_eq!(size, 300 * 1024);
    assert!(store.exists("avatars/1").await.unwrap());

    let file = store.get("avatars/1").await.unwrap().unwrap();
    assert_eq!(file.content_type, "image/png");
    assert_eq!(file.size, 300 * 1024);
    let mut got = Vec::new();
    let mut body = file.body;
    while let Some(chunk) = body.next().await {
        got.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(got, expected(300, 1024));

    // Overwrite: the new content and type.
    store
        .put_bytes("avatars/1", "image/jpeg", &b"jpeg bytes"[..])
        .await
        .unwrap();
    let file = store.get("avatars/1").await.unwrap().unwrap();
    assert_eq!(file.content_type, "image/jpeg");
    assert_eq!(file.bytes().await.unwrap(), &b"jpeg bytes"[..]);

    // An empty file is a file.
    store
        .put_bytes("empty", "text/plain", Bytes::new())
        .await
        .unwrap();
    let file = store.get("empty").await.unwrap().unwrap();
    assert_eq!((file.size, file.content_type.as_str()), (0, "text/plain"));

    assert!(store.delete("avatars/1").await.unwrap());
    assert!(!store.delete("avatars/1").await.unwrap());
    assert!(!store.exists("avatars/1").await.unwrap());
    assert!(store.get("avatars/1").await.unwrap().is_none());
    assert!(store.health().await.is_ok());
}

async fn too_large_stores_nothing(store: &FileStore) {
    store.put_bytes("doc", "text/plain", "old").await.unwrap();
    let err = store
        .put("doc", "text/plain", upload(10, 1000), 9_999)
        .await
        .unwrap_err();
    assert!(matches!(err, FileError::TooLarge { limit: 9_999 }), "{err}");
    // The previous file is untouched.
    let file = store.get("doc").await.unwrap().unwrap();
    assert_eq!(file.bytes().await.unwrap(), "old");
    // Exactly the limit is fine.
    store
        .put("doc", "text/plain", upload(10, 1000), 10_000)
        .await
        .unwrap();
    assert!(
        store
            .put("fresh", "text/plain", upload(2, 10), 19)
            .await
            .is_err()
    );
    assert!(!store.exists("fresh").await.unwrap());
}

async fn failed_upload_stores_nothing(store: &FileStore) {
    let body = stream::iter([
        Ok(Bytes::from_static(b"first part")),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "client went away",
        )),
    ]);
    let err = store
        .put("broken", "text/plain", body, 1024)
        .await
        .unwrap_err();
    assert!(matches!(err, FileError::Body(_)), "{err}");
    assert!(!store.exists("broken").await.unwrap());
}

async fn keys_cannot_escape(store: &FileStore) {
    for bad in [
        "../escape",
        "a/../../escape",
        "/etc/passwd",
        "a//b",
        ".meta",
        "a/.b.meta",
        "a\\..\\b",
        "",
        "a/",
    ] {
        assert!(
            matches!(
                store.put_bytes(bad, "text/plain", "x").await,
                Err(FileError::InvalidKey(_))
            ),
            "{bad:?}"
        );
        assert!(matches!(
            store.get(bad).await,
            Err(FileError::InvalidKey(_))
        ));
        assert!(matches!(
            store.delete(bad).await,
            Err(FileError::InvalidKey(_))
        ));
        assert!(matches!(
            store.exists(bad).await,
            Err(FileError::InvalidKey(_))
        ));
    }
    assert!(matches!(
        store.put_bytes("ok", "not a type", "x").await,
        Err(FileError::InvalidContentType(_))
    ));
    assert!(matches!(
        store
            .put_bytes("ok", "text/plain\r\nSet-Cookie: x", "x")
            .await,
        Err(FileError::InvalidContentType(_))
    ));
}

/// Every file under `root`, relative.
fn files_under(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

// ---------------------------------------------------------------- local

#[tokio::test]
async fn local_round_trip_in_a_created_folder() {
    let root = temp_folder("round-trip").join("nested/uploads");
    let _cleanup = Cleanup(root.parent().unwrap().parent().unwrap().to_path_buf());
    let store = FileStore::from_url(&format!("file://{}", root.display()))
        .await
        .unwrap();
    assert_eq!(store.backend_name(), "file");
    assert!(root.is_dir(), "folder created");
    round_trip(&store).await;
    assert_eq!(files_under(&root), [".empty.meta", "empty"]);
}

#[tokio::test]
async fn local_refused_and_failed_uploads_leave_nothing() {
    let root = temp_folder("refused");
    let _cleanup = Cleanup(root.clone());
    let store = FileStore::local(&root).await.unwrap();
    too_large_stores_nothing(&store).await;
    failed_upload_stores_nothing(&store).await;
    // No temporary file left behind.
    assert_eq!(files_under(&root), [".doc.meta", "doc"]);
}

#[tokio::test]
async fn local_cancelled_upload_leaves_nothing() {
    let root = temp_folder("cancelled");
    let _cleanup = Cleanup(root.clone());
    let store = FileStore::local(&root).await.unwrap();
    // A body that sends one chunk, then never ends (a stalled client).
    let body = stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"partial"))])
        .chain(stream::pending());
    let put = store.put("stalled", "text/plain", body, 1024);
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(200), put)
            .await
            .is_err()
    );
    assert!(files_under(&root).is_empty(), "{:?}", files_under(&root));
}

#[tokio::test]
async fn local_keys_cannot_escape() {
    let root = temp_folder("escape");
    let _cleanup = Cleanup(root.clone());
    let store = FileStore::local(root.join("inner")).await.unwrap();
    keys_cannot_escape(&store).await;
    assert!(files_under(&root).is_empty(), "{:?}", files_under(&root));
}

#[tokio::test]
async fn relative_file_url_is_relative_to_the_working_directory() {
    let target = temp_folder("relative");
    let _cleanup = Cleanup(target.clone());
    // The same folder, written relative to the working directory.
    let cwd = std::env::current_dir().unwrap();
    let up = "../".repeat(cwd.components().count().saturating_sub(1));
    let relative = format!("{up}{}", target.strip_prefix("/").unwrap().display());
    assert!(!relative.starts_with('/'));
    let store = FileStore::from_url(&format!("file://{relative}"))
        .await
        .unwrap();
    store.put_bytes("a/b", "text/plain", "hello").await.unwrap();
    assert_eq!(std::fs::read(target.join("a/b")).unwrap(), b"hello");
}

#[tokio::test]
async fn storage_urls() {
    assert_eq!(
        FileStore::from_url("memory://")
            .await
            .unwrap()
            .backend_name(),
        "memory"
    );
    for bad in ["nothing", "ftp://x", "file://"] {
        assert!(
            matches!(
                FileStore::from_url(bad).await,
                Err(FileError::InvalidUrl { .. })
            ),
            "{bad}"
        );
    }
    // A path under a regular file cannot be a folder.
    let file = temp_folder("not-a-folder");
    let _cleanup = Cleanup(file.clone());
    std::fs::write(&file, b"x").unwrap();
    assert!(matches!(
        FileStore::from_url(&format!("file://{}/sub", file.display())).await,
        Err(FileError::InvalidUrl { .. })
    ));
}

// ---------------------------------------------------------------- memory

#[tokio::test]
async fn memory_round_trip() {
    round_trip(&FileStore::memory()).await;
}

#[tokio::test]
async fn memory_refused_and_failed_uploads_leave_nothing() {
    let store = FileStore::memory();
    too_large_stores_nothing(&store).await;
    failed_upload_stores_nothing(&store).await;
}

#[tokio::test]
async fn memory_keys_cannot_escape() {
    keys_cannot_escape(&FileStore::memory()).await;
}
