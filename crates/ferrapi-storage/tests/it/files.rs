//! File storage round trips, the same suite on a local folder and in
//! memory.

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

// ---------------------------------------------------------------- serving

#[ferrapi::get("/files/{name}")]
async fn download(
    ferrapi::extract::State(files): ferrapi::extract::State<FileStore>,
    ferrapi::extract::Path(name): ferrapi::extract::Path<String>,
) -> Result<ferrapi::response::Response, ferrapi::HttpError> {
    match files.get(&format!("public/{name}")).await {
        Ok(Some(file)) => Ok(file.into_response()),
        // A name that is not a valid key names no file.
        Ok(None) | Err(FileError::InvalidKey(_)) => Err(ferrapi::HttpError::new(
            ferrapi::http::StatusCode::NOT_FOUND,
            "File not found",
        )),
        Err(_) => Err(ferrapi::HttpError::internal()),
    }
}

#[tokio::test]
async fn a_stored_file_is_served_with_its_type_and_length() {
    let root = temp_folder("serve");
    let _cleanup = Cleanup(root.clone());
    let files = FileStore::local(&root).await.unwrap();
    files
        .put("public/report.csv", "text/csv", upload(40, 1000), 1 << 20)
        .await
        .unwrap();
    let client =
        ferrapi::testing::TestClient::new(ferrapi::App::new().state(files).route(download));
    let res = client.get("/files/report.csv").send().await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.header("content-type"), Some("text/csv"));
    assert_eq!(res.header("content-length"), Some("40000"));
    assert_eq!(res.bytes(), &expected(40, 1000)[..]);
    let res = client.get("/files/missing.csv").send().await;
    assert_eq!(res.status(), 404);
    // A traversal attempt is refused by the key check, never read.
    let res = client.get("/files/..%2F..%2Fetc%2Fpasswd").send().await;
    assert_eq!(res.status(), 404);
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

// ---------------------------------------------------------------- s3

#[cfg(feature = "s3")]
mod s3 {
    use super::*;
    use ferrapi_storage::files::S3FileStore;
    use object_store::aws::AmazonS3Builder;
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A moto S3 server on a free port, killed when dropped.
    struct Moto(std::process::Child);

    impl Drop for Moto {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn start_moto() -> Option<(Moto, String)> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = std::process::Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let moto = Moto(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Some((moto, format!("http://127.0.0.1:{port}")))
    }

    /// `PUT /<bucket>` (moto accepts it unsigned).
    async fn create_bucket(endpoint: &str, bucket: &str) {
        let host = endpoint.trim_start_matches("http://");
        let mut conn = tokio::net::TcpStream::connect(host).await.unwrap();
        let request = format!(
            "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        conn.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        conn.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }

    fn store(endpoint: &str, bucket: &str, prefix: &str) -> FileStore {
        FileStore::new(
            S3FileStore::from_builder(
                AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_region("us-east-1")
                    .with_endpoint(endpoint)
                    .with_allow_http(true)
                    .with_access_key_id("test")
                    .with_secret_access_key("test"),
                prefix,
            )
            .unwrap(),
        )
    }

    /// The local and memory suites, on S3 (moto): `TEST_S3_URL` names a
    /// running S3-compatible server that accepts unsigned bucket creation;
    /// otherwise a `moto_server` on PATH is started for the test.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn s3_round_trip() {
        let (_moto, endpoint) = match std::env::var("TEST_S3_URL") {
            Ok(url) => (None, url),
            Err(_) => match start_moto() {
                Some((moto, url)) => (Some(moto), url),
                None => {
                    println!("skipped: TEST_S3_URL not set and no moto_server on PATH");
                    return;
                }
            },
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let bucket = format!("ferrapi-test-{}-{nanos}", std::process::id());
        create_bucket(&endpoint, &bucket).await;

        let s3 = store(&endpoint, &bucket, "uploads");
        assert_eq!(s3.backend_name(), "s3");
        round_trip(&s3).await;
        too_large_stores_nothing(&s3).await;
        failed_upload_stores_nothing(&s3).await;
        keys_cannot_escape(&s3).await;

        // Past one part: a streamed multipart upload, read back whole.
        let chunks = 20 * 16; // 20 MiB in 64 KiB chunks
        let size = s3
            .put(
                "big/file",
                "application/zip",
                upload(chunks, 64 * 1024),
                32 << 20,
            )
            .await
            .unwrap();
        assert_eq!(size, 20 << 20);
        let file = s3.get("big/file").await.unwrap().unwrap();
        assert_eq!(
            (file.size, file.content_type.as_str()),
            (20 << 20, "application/zip")
        );
        assert!(file.bytes().await.unwrap() == expected(chunks, 64 * 1024));
        // Refused midway through a multipart upload: aborted, nothing stored.
        let err = s3
            .put(
                "big/refused",
                "application/zip",
                upload(chunks, 64 * 1024),
                12 << 20,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, FileError::TooLarge { .. }), "{err}");
        assert!(!s3.exists("big/refused").await.unwrap());

        // The prefix separates stores sharing a bucket.
        let other = store(&endpoint, &bucket, "elsewhere");
        assert!(!other.exists("big/file").await.unwrap());
        assert!(other.health().await.is_ok());
        // A missing bucket is unhealthy.
        assert!(
            store(&endpoint, "no-such-bucket-here", "")
                .health()
                .await
                .is_err()
        );
    }
}
