//! Static files mounted under a path (caching headers, ETag revalidation,
//! ranges, traversal refused) and file downloads with `Range`.

use ferrapi::prelude::*;
use ferrapi::static_files::{FileRequest, FileResponse, StaticFiles};
use ferrapi::testing::TestClient;
use serde_json::{Value, json};
use std::path::{Path as FsPath, PathBuf};

/// A directory of its own per test, removed at the end.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "ferrapi-static-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("hello.txt"), "hello, static world").unwrap();
        std::fs::write(dir.join("sub/index.html"), "<h1>sub</h1>").unwrap();
        std::fs::write(dir.join("big.bin"), pattern(10_000)).unwrap();
        Dir(dir)
    }
    fn path(&self) -> &FsPath {
        &self.0
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Bytes whose value depends on their offset, so a wrong range shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn static_app(dir: &Dir) -> App {
    App::new().include(
        Router::new().prefix("/v1").route(
            StaticFiles::new(dir.path())
                .cache_control("public, max-age=60")
                .at("/static"),
        ),
    )
}

#[tokio::test]
async fn files_come_with_type_cache_control_and_validators() {
    let dir = Dir::new("headers");
    let client = TestClient::new(static_app(&dir));
    let res = client.get("/v1/static/hello.txt").send().await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text(), "hello, static world");
    assert_eq!(res.header("content-type"), Some("text/plain"));
    assert_eq!(res.header("cache-control"), Some("public, max-age=60"));
    assert_eq!(res.header("accept-ranges"), Some("bytes"));
    assert!(res.header("last-modified").is_some());
    let etag = res.header("etag").expect("an ETag").to_owned();

    // Revalidation: the same ETag is a 304 without a body.
    let res = client
        .get("/v1/static/hello.txt")
        .header("If-None-Match", &etag)
        .send()
        .await;
    assert_eq!(res.status(), 304);
    assert!(res.bytes().is_empty());
    assert_eq!(res.header("etag"), Some(etag.as_str()));
    assert_eq!(res.header("cache-control"), Some("public, max-age=60"));
    // Another ETag: the file again.
    let res = client
        .get("/v1/static/hello.txt")
        .header("If-None-Match", "\"something-else\"")
        .send()
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text(), "hello, static world");

    // The file changes: so does its ETag.
    std::fs::write(
        dir.path().join("hello.txt"),
        "changed, and longer than before",
    )
    .unwrap();
    let res = client
        .get("/v1/static/hello.txt")
        .header("If-None-Match", &etag)
        .send()
        .await;
    assert_eq!(res.status(), 200);
    assert_ne!(res.header("etag"), Some(etag.as_str()));
}

#[tokio::test]
async fn ranges_of_a_static_file() {
    let dir = Dir::new("ranges");
    let client = TestClient::new(static_app(&dir));
    let res = client
        .get("/v1/static/big.bin")
        .header("Range", "bytes=100-199")
        .send()
        .await;
    assert_eq!(res.status(), 206);
    assert_eq!(res.bytes(), &pattern(10_000)[100..200]);
    assert_eq!(res.header("content-range"), Some("bytes 100-199/10000"));
    let res = client
        .get("/v1/static/big.bin")
        .header("Range", "bytes=20000-")
        .send()
        .await;
    assert_eq!(res.status(), 416);
    assert_eq!(res.header("content-range"), Some("bytes */10000"));
}

#[tokio::test]
async fn missing_files_and_escapes_are_404_in_the_usual_shape() {
    let dir = Dir::new("missing");
    // A file next to the served directory, which must stay unreachable.
    let secret = dir.path().with_extension("secret");
    std::fs::write(&secret, "secret").unwrap();
    let name = secret.file_name().unwrap().to_str().unwrap().to_owned();
    let client = TestClient::new(static_app(&dir));
    for uri in [
        "/v1/static/nope.txt".to_owned(),
        format!("/v1/static/../{name}"),
        format!("/v1/static/%2e%2e/{name}"),
        format!("/v1/static/sub%2F..%2F..%2F{name}"),
    ] {
        let res = client.get(&uri).send().await;
        assert_eq!(res.status(), 404, "{uri}: {}", res.text());
        assert_eq!(res.json::<Value>(), json!({"detail": "Not Found"}), "{uri}");
    }
    let _ = std::fs::remove_file(secret);
}

#[tokio::test]
async fn directories_redirect_to_their_index_under_the_mount() {
    let dir = Dir::new("index");
    let client = TestClient::new(static_app(&dir));
    let res = client.get("/v1/static/sub").send().await;
    assert!(res.status().is_redirection(), "{}", res.status());
    assert_eq!(res.header("location"), Some("/v1/static/sub/"));
    let res = client.get("/v1/static/sub/").send().await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text(), "<h1>sub</h1>");
    assert_eq!(res.header("content-type"), Some("text/html"));

    let no_index = App::new().route(StaticFiles::new(dir.path()).index_html(false).at("/s"));
    let res = TestClient::new(no_index).get("/s/sub/").send().await;
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn head_requests_and_the_document() {
    let dir = Dir::new("head");
    let client = TestClient::new(static_app(&dir));
    let res = client
        .request(ferrapi::http::Method::HEAD, "/v1/static/hello.txt")
        .send()
        .await;
    assert_eq!(res.status(), 200);
    assert!(res.bytes().is_empty());
    assert_eq!(res.header("content-length"), Some("19"));
    let doc: Value = client.get("/openapi.json").send().await.json();
    assert_eq!(doc["paths"], json!({}), "static mounts are not operations");
}

fn download_app(dir: &Dir) -> App {
    let big = dir.path().join("big.bin");
    let missing = dir.path().join("missing.bin");
    App::new()
        .route(Route::get("/download", move |file: FileRequest| {
            let big = big.clone();
            async move {
                Ok::<FileResponse, HttpError>(
                    file.serve(&big)
                        .await?
                        .attachment("résumé 2024.bin")
                        .cache_control("private, max-age=10"),
                )
            }
        }))
        .route(Route::get("/missing", move |file: FileRequest| {
            let missing = missing.clone();
            async move { file.serve(&missing).await }
        }))
}

#[tokio::test]
async fn downloads_answer_ranges_with_the_right_bytes() {
    let dir = Dir::new("download");
    let client = TestClient::new(download_app(&dir));
    let all = pattern(10_000);

    let res = client.get("/download").send().await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes(), &all[..]);
    assert_eq!(res.header("content-type"), Some("application/octet-stream"));
    assert_eq!(
        res.header("content-disposition"),
        Some(
            "attachment; filename=\"r_sum_ 2024.bin\"; filename*=UTF-8''r%C3%A9sum%C3%A9%202024%2Ebin"
        )
    );
    assert_eq!(res.header("cache-control"), Some("private, max-age=10"));
    let etag = res.header("etag").unwrap().to_owned();

    for (range, start, end) in [
        ("bytes=1000-1999", 1000, 2000),
        ("bytes=9990-", 9990, 10_000),
        ("bytes=-10", 9990, 10_000),
        ("bytes=0-0", 0, 1),
        ("bytes=9000-20000", 9000, 10_000),
    ] {
        let res = client.get("/download").header("Range", range).send().await;
        assert_eq!(res.status(), 206, "{range}");
        assert_eq!(res.bytes(), &all[start..end], "{range}");
        assert_eq!(
            res.header("content-range"),
            Some(format!("bytes {start}-{}/10000", end - 1).as_str()),
            "{range}"
        );
    }
    // Unsatisfiable, and several ranges at once (no multipart/byteranges).
    for range in ["bytes=10000-", "bytes=20000-30000", "bytes=0-1,5-6"] {
        let res = client.get("/download").header("Range", range).send().await;
        assert_eq!(res.status(), 416, "{range}");
        assert_eq!(res.header("content-range"), Some("bytes */10000"));
    }
    // If-Range with the current ETag: the range; with a stale one: the whole file.
    let res = client
        .get("/download")
        .header("Range", "bytes=0-9")
        .header("If-Range", &etag)
        .send()
        .await;
    assert_eq!(res.status(), 206);
    let res = client
        .get("/download")
        .header("Range", "bytes=0-9")
        .header("If-Range", "\"stale\"")
        .send()
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().len(), 10_000);

    let res = client.get("/missing").send().await;
    assert_eq!(res.status(), 404);
    assert_eq!(res.json::<Value>(), json!({"detail": "Not Found"}));
}

#[tokio::test]
async fn a_download_documents_range_and_its_responses() {
    let dir = Dir::new("doc");
    let client = TestClient::new(download_app(&dir));
    let doc: Value = client.get("/openapi.json").send().await.json();
    let op = &doc["paths"]["/download"]["get"];
    assert_eq!(op["parameters"][0]["name"], "Range");
    assert_eq!(op["parameters"][0]["in"], "header");
    assert_eq!(op["parameters"][0]["required"], false);
    for status in ["200", "206"] {
        assert_eq!(
            op["responses"][status]["content"]["application/octet-stream"]["schema"],
            json!({"type": "string", "format": "binary"}),
            "{status}"
        );
    }
    assert!(op["responses"]["416"].is_object(), "{op}");
}
