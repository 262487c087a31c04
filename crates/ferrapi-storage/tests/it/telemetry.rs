//! Database and cache spans (feature `otel`), checked by a real OTLP
//! receiver: a request that reads the database through the cache exports
//! `cache get`, `BEGIN`, `SELECT …`, `cache set` and `COMMIT` spans as
//! children of its server span, in the caller's trace. Runs on SQLite and
//! the in-memory cache always, on PostgreSQL (`TEST_POSTGRES_URL`) and
//! Redis (`TEST_REDIS_URL`) when they are set.

#[path = "../../../ferrapi/tests/support/otlp.rs"]
mod otlp;

use ferrapi::middleware::Stack;
use ferrapi::prelude::*;
use ferrapi::testing::TestServer;
use ferrapi_storage::cache::Cache;
use ferrapi_storage::db::{Db, DbError, DbPool};
use opentelemetry_proto::tonic::trace::v1::Span as ProtoSpan;
use otlp::{Receiver, attr, bool_attr, hex, int_attr, telemetry_to};
use sqlx::Row as _;
use tracing_subscriber::layer::SubscriberExt as _;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN_KIND_CLIENT: i32 = 3;
const STATUS_CODE_ERROR: i32 = 2;

/// The test's table (a name of its own: the PostgreSQL database is shared).
#[derive(Clone)]
struct Table(String);

impl Table {
    /// The query of the user route, as the span must show it: with its
    /// placeholder, never the bound id.
    fn select(&self) -> String {
        format!("SELECT name FROM {} WHERE id = ?", self.0)
    }
}

/// A user's name, read through the cache.
#[get("/users/{id}")]
async fn user(
    Path(id): Path<i64>,
    Depends(db): Depends<Db>,
    State(cache): State<Cache>,
    State(table): State<Table>,
) -> Result<Json<Option<String>>, ferrapi::Error> {
    let name = cache
        .get_or_compute(&format!("user:{id}"), || async {
            let row = db
                .fetch_optional(db.query_dynamic(&table.select()).bind(id))
                .await?;
            Ok::<_, DbError>(row.map(|r| r.try_get::<String, _>("name")).transpose()?)
        })
        .await?;
    Ok(Json(name))
}

/// A query the database refuses.
#[get("/broken")]
async fn broken(Depends(db): Depends<Db>) -> Result<Json<i64>, DbError> {
    db.fetch_one(db.query("SELECT nothing FROM no_such_table"))
        .await?;
    Ok(Json(0))
}

fn app(pool: DbPool, cache: Cache, table: Table) -> App {
    App::new()
        .state(pool)
        .state(cache)
        .state(table)
        .route(user)
        .route(broken)
        .middleware(Stack::defaults())
}

fn is_child_of(span: &ProtoSpan, parent: &str) -> bool {
    hex(&span.trace_id) == TRACE && hex(&span.parent_span_id) == parent
}

/// One request in the caller's trace; the server span's id.
async fn get(server: &TestServer, path: &str) -> (u16, String) {
    let res = ferrapi::client::Client::new()
        .get(&format!("http://{}{path}", server.addr()))
        .header("traceparent", format!("00-{TRACE}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    let answered = res.header("traceparent").unwrap().to_owned();
    let parts: Vec<&str> = answered.split('-').collect();
    assert_eq!(parts[1], TRACE, "{answered}");
    (res.status().as_u16(), parts[2].to_owned())
}

async fn setup_pool(url: &str, table: &Table) -> DbPool {
    let pool = DbPool::connect_url(url).await.unwrap();
    // Outside any request: no span (checked at the end).
    let create = format!(
        "CREATE TABLE {} (id BIGINT PRIMARY KEY, name TEXT NOT NULL)",
        table.0
    );
    pool.execute(pool.query_dynamic(&create)).await.unwrap();
    let insert = format!("INSERT INTO {} (id, name) VALUES (?, ?)", table.0);
    pool.execute(pool.query_dynamic(&insert).bind(42_i64).bind("Ada"))
        .await
        .unwrap();
    pool
}

/// The database URLs to run on, and the `db.system` each must report.
fn databases(dir: &std::path::Path) -> Vec<(String, &'static str)> {
    let mut dbs = vec![(format!("sqlite://{}/spans.db", dir.display()), "sqlite")];
    match std::env::var("TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => dbs.push((url, "postgresql")),
        _ => println!("skipped PostgreSQL: TEST_POSTGRES_URL not set"),
    }
    dbs
}

/// The caches to run with, and the `db.system` each must report.
fn caches() -> Vec<(Cache, Option<&'static str>)> {
    let namespace = format!(
        "test-spans:{}:{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let mut caches = vec![(Cache::memory().namespace(&namespace), None)];
    match std::env::var("TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => caches.push((
            Cache::connect(&url).unwrap().namespace(&namespace),
            Some("redis"),
        )),
        _ => println!("skipped Redis: TEST_REDIS_URL not set"),
    }
    caches
}

#[tokio::test]
async fn database_and_cache_spans_are_children_of_the_request_span() {
    let dir = std::env::temp_dir().join(format!("ferrapi-spans-{}", std::process::id()));
    let mut receiver = Receiver::start();
    let telemetry = telemetry_to(&receiver, "storage-spans");
    let _default =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(telemetry.layer()));
    for (url, system) in databases(&dir) {
        for (n, (cache, cache_system)) in caches().into_iter().enumerate() {
            let table = Table(format!("span_users_{}_{n}", std::process::id()));
            let pool = setup_pool(&url, &table).await;
            let backend = cache.backend_name();
            let server = TestServer::start(app(pool.clone(), cache, table.clone())).await;
            let case = format!("{system} + {backend}");

            // A miss: the cache is read, the database queried in the
            // request's transaction, the value stored.
            let (status, request) = get(&server, "/users/42").await;
            assert_eq!(status, 200, "{case}");
            let of_request = |s: &ProtoSpan| is_child_of(s, &request);
            let lookup = receiver
                .wait_for(|s| of_request(s) && s.name == "cache get")
                .await
                .span;
            assert_eq!(lookup.kind, SPAN_KIND_CLIENT, "{case}");
            assert_eq!(
                bool_attr(&lookup.attributes, "cache.hit"),
                Some(false),
                "{case}"
            );
            assert_eq!(attr(&lookup, "cache.operation").as_deref(), Some("get"));
            assert_eq!(attr(&lookup, "cache.backend").as_deref(), Some(backend));
            assert_eq!(
                attr(&lookup, "db.system").as_deref(),
                cache_system,
                "{case}"
            );
            if cache_system.is_some() {
                assert_eq!(attr(&lookup, "db.operation.name").as_deref(), Some("GET"));
                assert!(attr(&lookup, "server.address").is_some(), "{case}");
                assert!(
                    int_attr(&lookup.attributes, "server.port").is_some(),
                    "{case}"
                );
            }
            // The key (user data, often) is not exported.
            assert!(
                !format!("{:?}", lookup.attributes).contains("user:42"),
                "{case}"
            );

            let select = receiver
                .wait_for(|s| of_request(s) && s.name == format!("SELECT {}", table.0))
                .await
                .span;
            assert_eq!(select.kind, SPAN_KIND_CLIENT, "{case}");
            assert_eq!(
                attr(&select, "db.system").as_deref(),
                Some(system),
                "{case}"
            );
            assert_eq!(attr(&select, "db.system.name").as_deref(), Some(system));
            assert_eq!(
                attr(&select, "db.operation.name").as_deref(),
                Some("SELECT")
            );
            assert_eq!(attr(&select, "db.collection.name"), Some(table.0.clone()));
            // The SQL as sent: the placeholder (`$1` on PostgreSQL), not
            // the bound value.
            let expected = if system == "postgresql" {
                table.select().replace('?', "$1")
            } else {
                table.select()
            };
            assert_eq!(attr(&select, "db.query.text"), Some(expected), "{case}");
            assert_eq!(
                int_attr(&select.attributes, "db.response.returned_rows"),
                Some(1)
            );
            if system == "postgresql" {
                assert_eq!(
                    attr(&select, "server.address").as_deref(),
                    Some("127.0.0.1")
                );
                assert_eq!(int_attr(&select.attributes, "server.port"), Some(5432));
                assert!(attr(&select, "db.namespace").is_some(), "{case}");
            } else {
                assert_eq!(attr(&select, "server.address"), None, "{case}");
            }

            // The transaction around it, begun at the first query and
            // committed after the answer; the value stored in between.
            let begin = receiver
                .wait_for(|s| of_request(s) && s.name == "BEGIN")
                .await
                .span;
            let store = receiver
                .wait_for(|s| of_request(s) && s.name == "cache set")
                .await
                .span;
            let commit = receiver
                .wait_for(|s| of_request(s) && s.name == "COMMIT")
                .await
                .span;
            // In this order, by start time (SQLite's worker thread enters a
            // statement's span to run it and may leave it just after the
            // answer is back, so an end can overlap the next start).
            let starts =
                [&lookup, &begin, &select, &store, &commit].map(|s| s.start_time_unix_nano);
            assert!(starts.is_sorted(), "{case}: {starts:?}");
            assert_eq!(
                attr(&commit, "db.operation.name").as_deref(),
                Some("COMMIT")
            );
            assert_eq!(attr(&store, "cache.operation").as_deref(), Some("set"));

            // A hit: the cache answers, the database is not queried.
            let (status, again) = get(&server, "/users/42").await;
            assert_eq!(status, 200);
            let hit = receiver
                .wait_for(|s| is_child_of(s, &again) && s.name == "cache get")
                .await
                .span;
            assert_eq!(
                bool_attr(&hit.attributes, "cache.hit"),
                Some(true),
                "{case}"
            );

            // A failing query: an error span with the database's code, and
            // the transaction rolled back.
            let (status, failed) = get(&server, "/broken").await;
            assert_eq!(status, 500);
            let error = receiver
                .wait_for(|s| is_child_of(s, &failed) && s.name == "SELECT no_such_table")
                .await
                .span;
            assert_eq!(attr(&error, "error.type").as_deref(), Some("database"));
            assert_eq!(
                error.status.as_ref().map(|s| s.code),
                Some(STATUS_CODE_ERROR)
            );
            assert!(attr(&error, "db.response.status_code").is_some(), "{case}");
            receiver
                .wait_for(|s| is_child_of(s, &failed) && s.name == "ROLLBACK")
                .await;

            // The second request's server span arrived after the first's
            // children: everything of the first is in by now. No query
            // outside a request was exported (no parent, nothing to join).
            assert!(
                !receiver
                    .seen
                    .iter()
                    .any(|r| attr(&r.span, "db.query.text").is_some_and(|q| q.contains("CREATE"))),
                "{case}: a query outside any request was exported"
            );
            assert!(
                receiver.seen.iter().all(|r| hex(&r.span.trace_id) == TRACE),
                "{case}: a span outside the caller's trace"
            );
            // The hit's request queried nothing (its spans ended before
            // the failing request's, and were exported before them).
            assert!(
                !receiver
                    .seen
                    .iter()
                    .any(|r| is_child_of(&r.span, &again) && r.span.name.starts_with("SELECT")),
                "{case}: the hit queried the database"
            );

            let drop = format!("DROP TABLE {}", table.0);
            pool.execute(pool.query_dynamic(&drop)).await.unwrap();
            server.stop().await.unwrap();
            pool.close().await;
        }
    }
    telemetry.shutdown().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
