//! The database suite, run identically on SQLite (always), PostgreSQL
//! (`TEST_POSTGRES_URL`) and MariaDB/MySQL (`TEST_MYSQL_URL`): CRUD, the
//! request transaction committed or rolled back through a real ferrapi app,
//! concurrent writers, migrations rerun, concurrent migrators.

use ferrapi::prelude::*;
use ferrapi::testing::TestClient;
use ferrapi_storage::db::{Backend, Db, DbConfig, DbError, DbPool, Migration, Migrations};
use sqlx::Row;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The backends to run on: a fresh SQLite file, and the servers whose URL
/// is set.
fn backends() -> Vec<String> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ferrapi-db-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos()
    ));
    // A folder that does not exist yet: connecting must create it.
    let mut urls = vec![format!("sqlite://{}/nested/app.db", dir.display())];
    for var in ["TEST_POSTGRES_URL", "TEST_MYSQL_URL"] {
        match std::env::var(var) {
            Ok(url) if !url.is_empty() => urls.push(url),
            _ => println!("skipped: {var} not set"),
        }
    }
    urls
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// A table name no other test or run uses.
fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos() % 1_000_000_000
    )
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// One migration creating `table` (id, unique name, qty), for each backend.
fn notes_migrations(table: &str) -> Migrations {
    let list = vec![
        Migration::new(1, "notes")
            .sqlite(leak(format!(
                "CREATE TABLE {table} (id INTEGER PRIMARY KEY AUTOINCREMENT, \
                 name TEXT NOT NULL UNIQUE, qty INTEGER NOT NULL)"
            )))
            .postgres(leak(format!(
                "CREATE TABLE {table} (id BIGSERIAL PRIMARY KEY, \
                 name TEXT NOT NULL UNIQUE, qty BIGINT NOT NULL)"
            )))
            .mysql(leak(format!(
                "CREATE TABLE {table} (id BIGINT AUTO_INCREMENT PRIMARY KEY, \
                 name VARCHAR(200) NOT NULL UNIQUE, qty BIGINT NOT NULL)"
            ))),
    ];
    Migrations::new(Box::leak(list.into_boxed_slice())).table(leak(format!("{table}_migrations")))
}

async fn setup(url: &str) -> (DbPool, &'static str) {
    let pool = DbPool::connect(DbConfig::new(url).max_connections(8))
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"));
    let table = leak(unique("notes"));
    pool.migrate(&notes_migrations(table)).await.unwrap();
    (pool, table)
}

async fn count(pool: &DbPool, table: &str) -> i64 {
    let row = pool
        .fetch_one(pool.query(leak(format!("SELECT COUNT(*) AS n FROM {table}"))))
        .await
        .unwrap();
    row.try_get("n").unwrap()
}

async fn drop_table(pool: &DbPool, table: &str) {
    for t in [table.to_owned(), format!("{table}_migrations")] {
        pool.execute(pool.query(leak(format!("DROP TABLE IF EXISTS {t}"))))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn crud() {
    for url in backends() {
        let (pool, table) = setup(&url).await;
        let db = Db::begin(&pool).await.unwrap();
        let insert = leak(format!(
            "INSERT INTO {table} (name, qty) VALUES (?, ?) RETURNING id"
        ));
        let a: i64 = db
            .fetch_one(db.query(insert).bind("apple").bind(3_i64))
            .await
            .unwrap()
            .get("id");
        let b: i64 = db
            .fetch_one(db.query(insert).bind("pear").bind(5_i64))
            .await
            .unwrap()
            .get("id");
        assert_ne!(a, b);

        // A unique violation is recognized on every backend.
        let err = db
            .execute(db.query(insert).bind("apple").bind(1_i64))
            .await
            .unwrap_err();
        assert!(err.is_unique_violation(), "{url}: {err}");
        // PostgreSQL aborts the transaction after an error: start again.
        db.rollback().await.unwrap();
        assert!(matches!(
            db.fetch_all(db.query("SELECT 1")).await,
            Err(DbError::Finished)
        ));

        let db = Db::begin(&pool).await.unwrap();
        db.execute(db.query(insert).bind("apple").bind(3_i64))
            .await
            .unwrap();
        db.execute(db.query(insert).bind("pear").bind(5_i64))
            .await
            .unwrap();
        let select = leak(format!(
            "SELECT id, name, qty FROM {table} WHERE qty >= ? ORDER BY name"
        ));
        let rows = db.fetch_all(db.query(select).bind(0_i64)).await.unwrap();
        let names: Vec<String> = rows.iter().map(|r| r.get("name")).collect();
        assert_eq!(names, ["apple", "pear"], "{url}");
        let update = leak(format!("UPDATE {table} SET qty = qty + ? WHERE name = ?"));
        let done = db
            .execute(db.query(update).bind(10_i64).bind("pear"))
            .await
            .unwrap();
        assert_eq!(done.rows_affected(), 1);
        let one = leak(format!("SELECT qty FROM {table} WHERE name = ?"));
        let qty: i64 = db
            .fetch_one(db.query(one).bind("pear"))
            .await
            .unwrap()
            .get("qty");
        assert_eq!(qty, 15);
        let delete = leak(format!("DELETE FROM {table} WHERE name = ?"));
        db.execute(db.query(delete).bind("apple")).await.unwrap();
        assert!(
            db.fetch_optional(db.query(one).bind("apple"))
                .await
                .unwrap()
                .is_none()
        );
        // Not visible outside the transaction until committed.
        assert_eq!(count(&pool, table).await, 0, "{url}");
        db.commit().await.unwrap();
        assert_eq!(count(&pool, table).await, 1, "{url}");

        pool.ping().await.unwrap();
        let stats = pool.stats();
        assert!(stats.size >= 1 && stats.idle <= stats.size && stats.max == 8);
        drop_table(&pool, table).await;
        pool.close().await;
    }
}

#[tokio::test]
async fn sqlite_file_is_in_wal_mode_with_pragmas() {
    let url = backends().remove(0);
    let pool = DbPool::connect(DbConfig::new(&url).busy_timeout(Duration::from_millis(1234)))
        .await
        .unwrap();
    assert_eq!(pool.backend(), Backend::Sqlite);
    let mut conn = pool.pool().acquire().await.unwrap();
    let mode: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(mode, "wal");
    let busy: i64 = sqlx::query("PRAGMA busy_timeout")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(busy, 1234);
    let sync: i64 = sqlx::query("PRAGMA synchronous")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(sync, 1, "NORMAL");
    let fk: i64 = sqlx::query("PRAGMA foreign_keys")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(fk, 1);
}

#[tokio::test]
async fn bad_urls_fail_clearly() {
    let err = DbPool::connect_url("oracle://x/y").await.unwrap_err();
    assert!(matches!(err, DbError::Url { .. }), "{err}");
    let err = DbPool::connect(
        DbConfig::new("postgres://u:secret@127.0.0.1:1/none")
            .acquire_timeout(Duration::from_secs(2)),
    )
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, DbError::Connect { .. }), "{text}");
    assert!(
        text.contains("u:***@") && !text.contains("secret"),
        "{text}"
    );
    // A SQLite file whose folder cannot be created.
    let err = DbPool::connect_url("sqlite:///proc/ferrapi/nope/app.db")
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::Folder { .. }), "{err}");
}

#[tokio::test]
async fn in_memory_sqlite_is_one_database() {
    let pool = DbPool::connect_url("sqlite::memory:").await.unwrap();
    let table = leak(unique("mem"));
    pool.migrate(&notes_migrations(table)).await.unwrap();
    let insert = leak(format!("INSERT INTO {table} (name, qty) VALUES (?, ?)"));
    pool.execute(pool.query(insert).bind("x").bind(1_i64))
        .await
        .unwrap();
    assert_eq!(count(&pool, table).await, 1);
    assert_eq!(pool.stats().max, 1);
}

// ---- The request transaction, through a real app ----

#[derive(Clone)]
struct Table(&'static str);

/// Requests whose after-commit hook ran (this test binary's only app
/// test that counts them).
static COMMITTED: AtomicUsize = AtomicUsize::new(0);

#[derive(Deserialize, JsonSchema, Validate)]
#[schemars(crate = "ferrapi::schemars")]
struct NewNote {
    name: String,
    /// `ok`, `error`, `panic` or `slow`.
    then: String,
}

/// Inserts, then answers as `then` says.
#[post("/notes", status = 201)]
async fn add_note(
    Depends(db): Depends<Db>,
    State(Table(table)): State<Table>,
    Query(note): Query<NewNote>,
) -> Result<Json<i64>, ferrapi::Error> {
    let insert = leak(format!(
        "INSERT INTO {table} (name, qty) VALUES (?, 1) RETURNING id"
    ));
    let id: i64 = db
        .fetch_one(db.query(insert).bind(note.name))
        .await?
        .try_get("id")?;
    db.after_commit(|| {
        COMMITTED.fetch_add(1, Ordering::SeqCst);
    });
    match note.then.as_str() {
        "error" => Err(HttpError::bad_request("refused").into()),
        "panic" => panic!("handler panicked after writing"),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(Json(id))
        }
        _ => Ok(Json(id)),
    }
}

/// Counts the notes (a second dependency user in the same request sees the
/// same transaction).
#[get("/notes/count")]
async fn count_notes(
    Depends(db): Depends<Db>,
    State(Table(table)): State<Table>,
) -> Result<Json<i64>, ferrapi::Error> {
    let sql = leak(format!("SELECT COUNT(*) AS n FROM {table}"));
    Ok(Json(db.fetch_one(db.query(sql)).await?.try_get("n")?))
}

async fn names(pool: &DbPool, table: &str) -> Vec<String> {
    let rows = pool
        .fetch_all(pool.query(leak(format!("SELECT name FROM {table} ORDER BY name"))))
        .await
        .unwrap();
    rows.iter().map(|r| r.get("name")).collect()
}

#[tokio::test]
async fn request_transaction_commits_on_success_and_rolls_back_otherwise() {
    for url in backends() {
        let (pool, table) = setup(&url).await;
        let app = App::new()
            .state(pool.clone())
            .state(Table(table))
            .route(add_note)
            .route(count_notes);
        let client = TestClient::new(app);
        let send = |name: &str, then: &str| {
            client
                .post(&format!("/notes?name={name}&then={then}"))
                .send()
        };
        let before = COMMITTED.load(Ordering::SeqCst);
        assert_eq!(send("kept", "ok").await.status(), 201, "{url}");
        assert_eq!(COMMITTED.load(Ordering::SeqCst), before + 1, "{url}: hook");
        assert_eq!(send("refused", "error").await.status(), 400, "{url}");
        assert_eq!(send("panicked", "panic").await.status(), 500, "{url}");
        // A taken name: the handler's `?` answers 500 and rolls back.
        assert_eq!(send("kept", "ok").await.status(), 500, "{url}");
        // The client goes away while the handler holds the transaction.
        let slow = send("abandoned", "slow");
        assert!(
            tokio::time::timeout(Duration::from_millis(500), slow)
                .await
                .is_err()
        );
        // The rollback runs on a spawned task. Inserting the same name
        // waits for the abandoned transaction (write lock, or the unique
        // index entry) and succeeds only if it was rolled back.
        let insert = leak(format!("INSERT INTO {table} (name, qty) VALUES (?, 2)"));
        let mut tries = 0;
        loop {
            let attempt = tokio::time::timeout(
                Duration::from_secs(3),
                pool.execute(pool.query(insert).bind("abandoned")),
            )
            .await;
            match attempt {
                Ok(Ok(_)) => break,
                Ok(Err(e)) if e.is_unique_violation() => {
                    panic!("{url}: the abandoned request's insert was committed")
                }
                _ => {}
            }
            tries += 1;
            assert!(
                tries < 5,
                "{url}: the abandoned transaction was never rolled back"
            );
        }
        assert_eq!(names(&pool, table).await, ["abandoned", "kept"], "{url}");
        // Only the committed request's hook ran.
        assert_eq!(COMMITTED.load(Ordering::SeqCst), before + 1, "{url}: hooks");
        let res = client.get("/notes/count").send().await;
        assert_eq!(res.json::<i64>(), 2);
        drop_table(&pool, table).await;
    }
}

/// `Depends<Db>` without a `DbPool` registered: the app does not build
/// (it used to answer 500 at request time).
#[test]
fn missing_pool_fails_the_build() {
    let err = App::new()
        .state(Table("none"))
        .route(count_notes)
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err.errors[0].kind,
            ferrapi::RouteErrorKind::MissingState { type_name } if type_name.ends_with("DbPool")
        ),
        "{err}"
    );
    assert!(err.to_string().contains("through dependency"), "{err}");
}

// ---- Dynamic SQL ----

#[derive(Deserialize, JsonSchema, Validate)]
#[schemars(crate = "ferrapi::schemars")]
struct NoteFilters {
    name: Option<String>,
    min_qty: Option<i64>,
    #[serde(default)]
    id: Vec<i64>,
}

/// A `WHERE` assembled from optional filters: placeholders pasted, values bound.
#[get("/notes/search")]
async fn search_notes(
    Depends(db): Depends<Db>,
    State(Table(table)): State<Table>,
    Query(f): Query<NoteFilters>,
) -> Result<Json<Vec<String>>, ferrapi::Error> {
    let mut sql = format!("SELECT name FROM {table} WHERE 1 = 1");
    if f.name.is_some() {
        sql.push_str(" AND name = ?");
    }
    if f.min_qty.is_some() {
        sql.push_str(" AND qty >= ?");
    }
    if !f.id.is_empty() {
        let marks = vec!["?"; f.id.len()].join(", ");
        sql.push_str(&format!(" AND id IN ({marks})"));
    }
    sql.push_str(" ORDER BY id");
    let mut query = db.query_dynamic(&sql);
    if let Some(name) = f.name {
        query = query.bind(name);
    }
    if let Some(min) = f.min_qty {
        query = query.bind(min);
    }
    for id in f.id {
        query = query.bind(id);
    }
    let rows = db.fetch_all(query).await?;
    Ok(Json(
        rows.iter()
            .map(|r| r.try_get("name"))
            .collect::<Result<_, _>>()?,
    ))
}

#[tokio::test]
async fn dynamic_where_binds_every_value() {
    for url in backends() {
        let (pool, table) = setup(&url).await;
        for (name, qty) in [("eggs", 12_i64), ("milk", 1), ("o'neil", 7)] {
            let insert = leak(format!("INSERT INTO {table} (name, qty) VALUES (?, ?)"));
            pool.execute(pool.query(insert).bind(name).bind(qty))
                .await
                .unwrap();
        }
        let app = App::new()
            .state(pool.clone())
            .state(Table(table))
            .route(search_notes);
        let client = TestClient::new(app);
        let backend = url.as_str();
        let names = |uri: String| {
            let client = &client;
            async move {
                let res = client.get(&uri).send().await;
                assert_eq!(res.status(), 200, "{backend}: {uri}: {}", res.text());
                res.json::<Vec<String>>()
            }
        };
        assert_eq!(
            names("/notes/search".into()).await,
            ["eggs", "milk", "o'neil"],
            "{url}"
        );
        assert_eq!(
            names("/notes/search?min_qty=5".into()).await,
            ["eggs", "o'neil"],
            "{url}"
        );
        assert_eq!(
            names("/notes/search?id=1&id=3&min_qty=2".into()).await,
            ["eggs", "o'neil"],
            "{url}"
        );
        // A quote is a value, never SQL.
        assert_eq!(
            names("/notes/search?name=o%27neil".into()).await,
            ["o'neil"],
            "{url}"
        );
        assert!(
            names("/notes/search?name=x%27%20OR%20%271%27%3D%271".into())
                .await
                .is_empty(),
            "{url}"
        );
        drop_table(&pool, table).await;
    }
}

// ---- Concurrency ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_lose_nothing() {
    for url in backends() {
        let (pool, table) = setup(&url).await;
        let insert = leak(format!("INSERT INTO {table} (name, qty) VALUES (?, ?)"));
        let bump = leak(format!("UPDATE {table} SET qty = qty + 1 WHERE name = ?"));
        pool.execute(pool.query(insert).bind("counter").bind(0_i64))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for w in 0..8 {
            let pool = pool.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..25 {
                    let db = Db::begin(&pool).await.unwrap();
                    // Write first: SQLite's writers queue on the busy timeout.
                    db.execute(db.query(bump).bind("counter")).await.unwrap();
                    db.execute(db.query(insert).bind(format!("w{w}-{i}")).bind(1_i64))
                        .await
                        .unwrap();
                    db.commit().await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(count(&pool, table).await, 201, "{url}");
        let qty: i64 = pool
            .fetch_one(
                pool.query(leak(format!("SELECT qty FROM {table} WHERE name = ?")))
                    .bind("counter"),
            )
            .await
            .unwrap()
            .get("qty");
        assert_eq!(qty, 200, "{url}: lost updates");
        drop_table(&pool, table).await;
    }
}

#[tokio::test]
async fn sqlite_immediate_transactions_allow_read_then_write() {
    let url = backends().remove(0);
    let pool = DbPool::connect(DbConfig::new(&url).sqlite_immediate(true))
        .await
        .unwrap();
    let table = leak(unique("rw"));
    pool.migrate(&notes_migrations(table)).await.unwrap();
    let insert = leak(format!("INSERT INTO {table} (name, qty) VALUES (?, ?)"));
    let read = leak(format!("SELECT COUNT(*) AS n FROM {table}"));
    let mut tasks = Vec::new();
    for w in 0..4 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                let db = Db::begin(&pool).await.unwrap();
                let n: i64 = db.fetch_one(db.query(read)).await.unwrap().get("n");
                db.execute(db.query(insert).bind(format!("{w}-{i}")).bind(n))
                    .await
                    .unwrap();
                db.commit().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Each writer saw the count before it: serialized, 0..40 each once.
    let rows = pool
        .fetch_all(pool.query(leak(format!("SELECT qty FROM {table} ORDER BY qty"))))
        .await
        .unwrap();
    let seen: Vec<i64> = rows.iter().map(|r| r.get("qty")).collect();
    assert_eq!(seen, (0..40).collect::<Vec<i64>>());
}

// ---- Migrations ----

/// Two migrations whose SQL is not idempotent by itself (a plain CREATE
/// TABLE and an INSERT): running either twice would fail or duplicate.
fn two_step_migrations(table: &str) -> (Migrations, Migrations) {
    let first = Migration::new(1, "create")
        .sqlite(leak(format!(
            "CREATE TABLE {table} (id INTEGER PRIMARY KEY, note TEXT NOT NULL)"
        )))
        .postgres(leak(format!(
            "CREATE TABLE {table} (id BIGINT PRIMARY KEY, note TEXT NOT NULL)"
        )))
        .mysql(leak(format!(
            "CREATE TABLE {table} (id BIGINT PRIMARY KEY, note TEXT NOT NULL)"
        )));
    let second = Migration::new(2, "seed").all(leak(format!(
        "INSERT INTO {table} (id, note) VALUES (1, 'seeded'); \
         INSERT INTO {table} (id, note) VALUES (2, 'seeded too')"
    )));
    let records = leak(format!("{table}_migrations"));
    let one = Migrations::new(Box::leak(Box::new([first]))).table(records);
    let both = Migrations::new(Box::leak(Box::new([first, second]))).table(records);
    (one, both)
}

#[tokio::test]
async fn migrations_rerun_idempotently() {
    for url in backends() {
        let pool = DbPool::connect_url(&url).await.unwrap();
        let table = leak(unique("mig"));
        let (one, both) = two_step_migrations(table);
        pool.migrate(&one).await.unwrap();
        pool.migrate(&one).await.unwrap();
        pool.migrate(&both).await.unwrap();
        pool.migrate(&both).await.unwrap();
        assert_eq!(count(&pool, table).await, 2, "{url}");
        let applied = pool
            .fetch_one(pool.query(leak(format!(
                "SELECT COUNT(*) AS n FROM {}",
                both.table_name()
            ))))
            .await
            .unwrap();
        assert_eq!(applied.get::<i64, _>("n"), 2);

        // An applied migration whose text changed is refused, not skipped.
        let edited = Migration::new(1, "create").all(leak(format!(
            "CREATE TABLE {table} (id BIGINT PRIMARY KEY)"
        )));
        let edited = Migrations::new(Box::leak(Box::new([edited]))).table(both.table_name());
        let err = pool.migrate(&edited).await.unwrap_err();
        assert!(matches!(err, DbError::Migrate(_)), "{url}: {err}");

        // A migration without this backend's SQL names what is missing.
        let partial = Migrations::new(Box::leak(Box::new([
            Migration::new(9, "only-mysql").mysql("SELECT 1")
        ])))
        .table(leak(format!("{table}_other")));
        if pool.backend() != Backend::MySql {
            let err = pool.migrate(&partial).await.unwrap_err();
            assert!(err.to_string().contains("only-mysql"), "{err}");
        }
        drop_table(&pool, table).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrators_apply_each_migration_once() {
    for url in backends() {
        let table = leak(unique("conc"));
        let (_, both) = two_step_migrations(table);
        // Separate pools, as separate processes have: the database's own
        // locks are what serializes them.
        let mut pools = Vec::new();
        for _ in 0..4 {
            pools.push(DbPool::connect_url(&url).await.unwrap());
        }
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(pools.len()));
        let mut tasks = Vec::new();
        for pool in pools.clone() {
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                pool.migrate(&both).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap_or_else(|e| panic!("{url}: {e}"));
        }
        assert_eq!(count(&pools[0], table).await, 2, "{url}");
        drop_table(&pools[0], table).await;
    }
}

// ---- The transaction begins at the first query ----

/// Uses the pool directly, then the request's transaction.
#[get("/lazy")]
async fn lazy_route(
    Depends(db): Depends<Db>,
    State(pool): State<DbPool>,
) -> Result<Json<bool>, DbError> {
    // With a one-connection pool this would wait forever (then time out) if
    // the request's transaction already held the connection.
    pool.fetch_one(pool.query("SELECT 1 AS one")).await?;
    let begun_before = db.is_begun().await;
    db.fetch_one(db.query("SELECT 1 AS one")).await?;
    Ok(Json(!begun_before && db.is_begun().await))
}

#[tokio::test]
async fn the_request_transaction_begins_at_the_first_query() {
    for url in backends() {
        let pool = DbPool::connect(
            DbConfig::new(&url)
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(1)),
        )
        .await
        .unwrap();
        let app = App::new().state(pool.clone()).route(lazy_route);
        let client = TestClient::new(app);
        let res = client.get("/lazy").send().await;
        assert_eq!(res.status(), 200, "{url}: {}", res.text());
        assert!(res.json::<bool>(), "{url}");

        // Every connection taken: the first query reports the database
        // unavailable, answered 503.
        let held = pool.pool().acquire().await.unwrap();
        let res = client.get("/lazy").send().await;
        assert_eq!(res.status(), 503, "{url}: {}", res.text());
        assert_eq!(
            res.json::<serde_json::Value>(),
            serde_json::json!({"detail": "Database unavailable"})
        );
        drop(held);
        assert_eq!(client.get("/lazy").send().await.status(), 200, "{url}");
    }
}

// ---- Errors answered 503 ----

/// The status and `Retry-After` a database error is answered with.
fn answer(e: DbError) -> (u16, Option<String>) {
    let err = ferrapi::ResponseError::into_error(e);
    match err.downcast_ref::<HttpError>() {
        Some(http) => (
            http.status().as_u16(),
            http.headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        ),
        None => (500, None),
    }
}

#[tokio::test]
async fn sqlite_read_then_write_after_another_commit_is_busy_503() {
    let url = backends().remove(0);
    let (pool, table) = setup(&url).await;
    let insert = leak(format!("INSERT INTO {table} (name, qty) VALUES (?, 1)"));
    let read = leak(format!("SELECT COUNT(*) AS n FROM {table}"));
    // A deferred transaction reads (a snapshot)...
    let db = Db::begin(&pool).await.unwrap();
    db.fetch_one(db.query(read)).await.unwrap();
    // ...another connection commits a write...
    pool.execute(pool.query(insert).bind("other"))
        .await
        .unwrap();
    // ...and the first cannot upgrade to write: SQLite refuses at once.
    let err = db
        .execute(db.query(insert).bind("mine"))
        .await
        .expect_err("a stale read transaction cannot write");
    assert!(matches!(err, DbError::Busy(_)), "{err:?}");
    assert_eq!(answer(err), (503, Some("1".to_owned())));
    db.rollback().await.unwrap();
    assert_eq!(names(&pool, table).await, ["other"]);
}

#[test]
fn unavailable_is_503_and_other_errors_500() {
    assert_eq!(
        answer(DbError::Unavailable(sqlx::Error::PoolTimedOut)),
        (503, None)
    );
    assert_eq!(
        answer(DbError::from(sqlx::Error::PoolTimedOut)),
        (503, None)
    );
    assert!(DbError::from(sqlx::Error::PoolClosed).is_transient());
    assert!(!DbError::from(sqlx::Error::RowNotFound).is_transient());
    assert_eq!(answer(DbError::from(sqlx::Error::RowNotFound)), (500, None));
    assert_eq!(answer(DbError::Finished), (500, None));
}

/// Terminates its own transaction's PostgreSQL backend, then succeeds: the
/// commit finds the connection gone.
#[get("/lost")]
async fn lose_connection(
    Depends(db): Depends<Db>,
    State(pool): State<DbPool>,
) -> Result<Json<i64>, ferrapi::Error> {
    let pid: i32 = db
        .fetch_one(db.query("SELECT pg_backend_pid() AS pid"))
        .await?
        .try_get("pid")?;
    pool.execute(pool.query("SELECT pg_terminate_backend(?)").bind(pid))
        .await?;
    // Let the backend exit before the commit is sent.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(Json(i64::from(pid)))
}

#[tokio::test]
async fn a_commit_on_a_lost_connection_is_503() {
    let Some(url) = std::env::var("TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        println!("skipped: TEST_POSTGRES_URL not set");
        return;
    };
    let pool = DbPool::connect_url(&url).await.unwrap();
    let app = App::new().state(pool.clone()).route(lose_connection);
    let res = TestClient::new(app).get("/lost").send().await;
    assert_eq!(res.status(), 503, "{}", res.text());
    assert_eq!(
        res.json::<serde_json::Value>(),
        serde_json::json!({"detail": "Database unavailable"})
    );
    // The pool recovers: the next query gets a fresh connection.
    pool.fetch_one(pool.query("SELECT 1 AS one")).await.unwrap();
}
