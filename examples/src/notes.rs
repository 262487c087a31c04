//! The later chapters put together: a small notes service with settings from
//! the environment (chapter 13), a database, a cache and a message bus
//! (chapter 12), background work after the response (chapter 9), live
//! updates over a WebSocket fed by the bus (chapter 10), metrics, logs and
//! health checks (chapter 15), run by `App::run` (chapter 16).
//!
//! `cargo run -p ferrapi-examples --bin notes`, then
//! `curl -X POST localhost:8000/api/notes -H 'content-type: application/json' -d '{"body": "hello"}'`
//! and open <http://127.0.0.1:8000/docs>.

use ferrapi::extract::BackgroundTasks;
use ferrapi::http::StatusCode;
use ferrapi::metrics::Metrics;
use ferrapi::middleware::{AccessLogLayer, Stack};
use ferrapi::prelude::*;
use ferrapi::ws::{Hub, WebSocketResponse, WebSocketUpgrade};
use ferrapi_storage::bus::{Bus, BusError, Topic};
use ferrapi_storage::cache::{Cache, CacheError};
use ferrapi_storage::db::{Db, DbError, DbPool, Migration, Migrations};
use sqlx::Row;
use std::sync::Arc;
use std::time::Duration;

/// A variable whose value cannot be used.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {var}: {reason}")]
pub struct SettingsError {
    /// The variable.
    pub var: &'static str,
    /// What is wrong.
    pub reason: String,
}

/// The service's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `DATABASE_URL` (default `sqlite://data/notes.db`).
    pub database_url: String,
    /// `CACHE_URL` (default `memory://`; `redis://…` with ferrapi-storage's `redis` feature).
    pub cache_url: String,
    /// `BUS_URL` (default `memory://`; `nats://…` with the `nats` feature).
    pub bus_url: String,
    /// `CACHE_TTL_SECONDS`, 1 to 86400 (default 60).
    pub cache_ttl: Duration,
}

impl Settings {
    /// From the process's environment.
    ///
    /// # Errors
    /// The first variable with a value that cannot be used.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// From any lookup (a map, in tests).
    ///
    /// # Errors
    /// The first variable with a value that cannot be used.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let var = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let url = |name: &'static str, default: &str| {
            let value = var(name).unwrap_or_else(|| default.to_owned());
            match value.split_once(':') {
                Some((scheme, rest)) if !scheme.is_empty() && !rest.is_empty() => Ok(value),
                _ => Err(SettingsError {
                    var: name,
                    reason: format!("`{value}` is not a URL"),
                }),
            }
        };
        let cache_ttl = match var("CACHE_TTL_SECONDS") {
            None => Duration::from_secs(60),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|s| (1..=86_400).contains(s))
                .map(Duration::from_secs)
                .ok_or_else(|| SettingsError {
                    var: "CACHE_TTL_SECONDS",
                    reason: format!("`{v}` is not a number of seconds from 1 to 86400"),
                })?,
        };
        Ok(Settings {
            database_url: url("DATABASE_URL", "sqlite://data/notes.db")?,
            cache_url: url("CACHE_URL", "memory://")?,
            bus_url: url("BUS_URL", "memory://")?,
            cache_ttl,
        })
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is invalid.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The database could not be opened or migrated.
    #[error("DATABASE_URL: {0}")]
    Db(#[from] DbError),
    /// The cache URL is unusable.
    #[error("CACHE_URL: {0}")]
    Cache(#[from] CacheError),
    /// The bus URL is unusable.
    #[error("BUS_URL: {0}")]
    Bus(#[from] BusError),
}

static MIGRATIONS: Migrations = Migrations::new(&[Migration::new(1, "notes")
    .sqlite("CREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)")
    .postgres("CREATE TABLE notes (id BIGSERIAL PRIMARY KEY, body TEXT NOT NULL)")
    .mysql("CREATE TABLE notes (id BIGINT AUTO_INCREMENT PRIMARY KEY, body TEXT NOT NULL)")]);

/// What changed, as every instance's WebSocket clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum NoteEvent {
    /// A note was created.
    #[serde(rename = "note.created")]
    Created {
        /// Its id.
        id: i64,
    },
    /// A note was deleted.
    #[serde(rename = "note.deleted")]
    Deleted {
        /// Its id.
        id: i64,
    },
}

/// The bus topic of note events.
pub const NOTE_EVENTS: Topic<NoteEvent> = Topic::new("notes");
/// The hub topic WebSocket clients subscribe to.
const HUB_TOPIC: &str = "notes";

/// Everything the service keeps its data in, opened from the settings.
#[derive(Debug, Clone)]
pub struct Resources {
    /// The database.
    pub pool: DbPool,
    /// The cache of notes by id.
    pub cache: Cache,
    /// The message bus.
    pub bus: Bus,
    /// This instance's WebSocket broadcast.
    pub hub: Hub,
    /// The Prometheus registry.
    pub metrics: Arc<Metrics>,
}

impl Resources {
    /// Opens and migrates the database, connects the cache and the bus, and
    /// starts feeding the bus's note events into the hub. Call it inside a
    /// tokio runtime.
    ///
    /// # Errors
    /// The resource that could not be opened, named by its variable.
    pub async fn connect(settings: &Settings) -> Result<Self, StartError> {
        let pool = DbPool::connect_url(&settings.database_url).await?;
        pool.migrate(&MIGRATIONS).await?;
        let cache = Cache::connect(&settings.cache_url)?
            .namespace("notes")
            .default_ttl(settings.cache_ttl);
        let bus = Bus::connect(&settings.bus_url).await?;
        let hub = Hub::new();
        let mut events = bus.subscribe(&NOTE_EVENTS).await?;
        let feed = hub.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if let Err(e) = feed.publish(HUB_TOPIC, &event) {
                    tracing::warn!(error = %e, "note event not broadcast");
                }
            }
        });
        Ok(Resources {
            pool,
            cache,
            bus,
            hub,
            metrics: Arc::new(Metrics::new()),
        })
    }
}

/// A stored note.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Validate)]
pub struct Note {
    /// Its id.
    pub id: i64,
    /// Its text.
    pub body: String,
}

/// A note as clients send it.
#[derive(Debug, Deserialize, JsonSchema, Validate)]
pub struct NoteIn {
    /// 1 to 1000 characters.
    #[garde(length(chars, min = 1, max = 1000))]
    pub body: String,
}

/// Publishes `event` once the request's transaction has committed (never
/// for a write that was rolled back).
fn publish_after_commit(db: &Db, bus: &Bus, event: NoteEvent) {
    let bus = bus.clone();
    db.after_commit(move || {
        tokio::spawn(async move {
            if let Err(e) = bus.publish(&NOTE_EVENTS, &event).await {
                tracing::warn!(error = %e, "note event not published");
            }
        });
    });
}

/// Create a note.
#[post("/notes", status = 201, tags = ["notes"])]
async fn create_note(
    Depends(db): Depends<Db>,
    State(bus): State<Bus>,
    State(metrics): State<Arc<Metrics>>,
    tasks: BackgroundTasks,
    Json(note): Json<NoteIn>,
) -> Result<Created<Note>, ferrapi::Error> {
    let insert = db
        .query("INSERT INTO notes (body) VALUES (?) RETURNING id")
        .bind(note.body.clone());
    let id: i64 = db.fetch_one(insert).await?.try_get("id")?;
    publish_after_commit(&db, &bus, NoteEvent::Created { id });
    // After the response: nothing the client waits for.
    tasks.add(async move {
        metrics.counter("notes_created_total", &[]).increment(1);
    });
    Ok(Created::new(
        format!("/api/notes/{id}"),
        Note {
            id,
            body: note.body,
        },
    ))
}

/// Read a note (cached).
#[get("/notes/{note_id}", tags = ["notes"])]
async fn read_note(
    State(pool): State<DbPool>,
    State(cache): State<Cache>,
    Path(note_id): Path<i64>,
) -> Result<Json<Note>, ferrapi::Error> {
    let note: Option<Note> = cache
        .get_or_compute(&format!("note:{note_id}"), || async {
            let query = pool
                .query("SELECT id, body FROM notes WHERE id = ?")
                .bind(note_id);
            match pool.fetch_optional(query).await? {
                Some(row) => Ok::<_, ferrapi::Error>(Some(Note {
                    id: row.try_get("id")?,
                    body: row.try_get("body")?,
                })),
                None => Ok(None),
            }
        })
        .await?;
    note.map(Json)
        .ok_or_else(|| HttpError::not_found("Note not found").into())
}

/// Delete a note.
#[delete("/notes/{note_id}", status = 204, tags = ["notes"])]
async fn delete_note(
    Depends(db): Depends<Db>,
    State(cache): State<Cache>,
    State(bus): State<Bus>,
    Path(note_id): Path<i64>,
) -> Result<NoContent, ferrapi::Error> {
    let deleted = db
        .execute(db.query("DELETE FROM notes WHERE id = ?").bind(note_id))
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(HttpError::not_found("Note not found").into());
    }
    // Forget the cached note now, and again once the deletion is committed:
    // a read between the two could cache the row being deleted.
    let key = format!("note:{note_id}");
    let _ = cache.delete(&key).await;
    let cache = cache.clone();
    db.after_commit(move || {
        tokio::spawn(async move {
            let _ = cache.delete(&key).await;
        });
    });
    publish_after_commit(&db, &bus, NoteEvent::Deleted { id: note_id });
    Ok(NoContent)
}

/// Live note events.
#[get("/ws/notes")]
async fn note_events(ws: WebSocketUpgrade, State(hub): State<Hub>) -> WebSocketResponse {
    let events = hub.subscribe(HUB_TOPIC);
    ws.on_upgrade(move |socket| async move {
        let _ = socket.forward(events).await;
    })
}

/// Liveness.
#[get("/health/live", tags = ["health"])]
async fn live() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Readiness: the database and the bus answer.
#[get("/health/ready", tags = ["health"], responses(503 = "A dependency is down"))]
async fn ready(
    State(pool): State<DbPool>,
    State(bus): State<Bus>,
) -> (StatusCode, Json<serde_json::Value>) {
    let limit = Duration::from_secs(2);
    let db = tokio::time::timeout(limit, pool.health()).await;
    let bus = tokio::time::timeout(limit, bus.health()).await;
    if matches!(db, Ok(Ok(()))) && matches!(bus, Ok(Ok(()))) {
        (StatusCode::OK, Json(serde_json::json!({"status": "ok"})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"detail": "A dependency is down"})),
        )
    }
}

/// The application around opened resources.
pub fn app(resources: Resources) -> App {
    let Resources {
        pool,
        cache,
        bus,
        hub,
        metrics,
    } = resources;
    App::new()
        .title("Notes")
        .version("1.0.0")
        .tag("notes", "Short notes, with live updates on /ws/notes.")
        .state(pool)
        .state(cache)
        .state(bus)
        .state(hub)
        .metrics("/metrics", metrics)
        .include(
            Router::new()
                .prefix("/api")
                .route(create_note)
                .route(read_note)
                .route(delete_note),
        )
        .route(note_events)
        .route(live)
        .route(ready)
        .middleware(Stack::defaults().access_log(Some(AccessLogLayer::new())))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ferrapi::testing::{TestClient, TestServer};
    use serde_json::{Value, json};
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    fn in_memory() -> Settings {
        settings(&[("DATABASE_URL", "sqlite::memory:")]).unwrap()
    }

    #[test]
    fn settings_default_and_name_the_bad_variable() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.database_url, "sqlite://data/notes.db");
        assert_eq!(
            (s.cache_url.as_str(), s.bus_url.as_str()),
            ("memory://", "memory://")
        );
        assert_eq!(s.cache_ttl, Duration::from_secs(60));
        let e = settings(&[("CACHE_TTL_SECONDS", "0")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid CACHE_TTL_SECONDS: `0` is not a number of seconds from 1 to 86400"
        );
        assert_eq!(settings(&[("BUS_URL", "nats")]).unwrap_err().var, "BUS_URL");
    }

    #[tokio::test]
    async fn an_unusable_url_is_named_at_start() {
        let bad = settings(&[
            ("DATABASE_URL", "sqlite::memory:"),
            ("CACHE_URL", "memcached://x"),
        ])
        .unwrap();
        let e = Resources::connect(&bad).await.unwrap_err();
        assert!(e.to_string().starts_with("CACHE_URL: "), "{e}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn notes_are_stored_cached_and_announced() {
        let resources = Resources::connect(&in_memory()).await.unwrap();
        let metrics = resources.metrics.clone();
        let server = TestServer::start(app(resources.clone())).await;
        let mut ws = server.websocket("/ws/notes").await;
        let client = TestClient::new(app(resources.clone()));

        let res = client
            .post("/api/notes")
            .json(&json!({"body": "buy milk"}))
            .send()
            .await;
        assert_eq!(res.status(), 201);
        assert_eq!(res.header("location"), Some("/api/notes/1"));
        assert!(res.header("x-request-id").is_some());
        // Announced after the commit, to the WebSocket clients.
        assert_eq!(
            ws.recv_json::<Value>().await,
            json!({"type": "note.created", "id": 1})
        );

        for _ in 0..3 {
            let res = client.get("/api/notes/1").send().await;
            assert_eq!(res.json::<Value>(), json!({"id": 1, "body": "buy milk"}));
        }
        assert_eq!(resources.cache.stats().hits, 2);

        let res = client
            .post("/api/notes")
            .json(&json!({"body": ""}))
            .send()
            .await;
        assert_eq!(res.status(), 422);

        assert_eq!(client.delete("/api/notes/1").send().await.status(), 204);
        assert_eq!(
            ws.recv_json::<Value>().await,
            json!({"type": "note.deleted", "id": 1})
        );
        assert_eq!(client.get("/api/notes/1").send().await.status(), 404);
        assert_eq!(client.delete("/api/notes/1").send().await.status(), 404);

        BackgroundTasks::wait_all().await;
        assert!(
            metrics.render().contains("notes_created_total 1"),
            "{}",
            metrics.render()
        );
        assert_eq!(client.get("/health/ready").send().await.status(), 200);
        let doc: Value = client.get("/openapi.json").send().await.json();
        assert!(doc["paths"]["/api/notes/{note_id}"]["delete"].is_object());
        assert!(doc["paths"].get("/ws/notes").is_none());
        server.stop().await.unwrap();
    }
}
