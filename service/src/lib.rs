//! The ferrapi reference service: a users API that exercises every layer
//! of the framework (see `shared/spec/reference-service.md`).
//!
//! The binary (`src/main.rs`) reads the configuration, opens the database,
//! and serves [`app`]; tests build [`app`] around their own database.
#![deny(missing_docs)]

pub mod admin;
pub mod auth;
pub mod avatars;
pub mod config;
pub mod db;
pub mod events;
pub mod health;
pub mod model;
pub mod notifications;
pub mod users;
pub mod users_v2;

use ferrapi::App;
use ferrapi::middleware::{
    ClientIpLayer, CorsConfig, Next, RateLimitKey, RateLimitLayer, Stack, from_fn_with_state,
};
use std::sync::Arc;

/// What the application shares across requests and instances: the
/// database pool, the cache (in memory, or Redis with `REDIS_URL`), the
/// message bus (in process; NATS with `NATS_URL`, else Redis pub/sub with
/// `REDIS_URL`) and the WebSocket hub it feeds.
#[derive(Clone)]
pub struct Resources {
    /// The database.
    pub pool: ferrapi_storage::db::DbPool,
    /// The cache.
    pub cache: ferrapi_storage::cache::Cache,
    /// The message bus.
    pub bus: ferrapi_storage::bus::Bus,
    /// This instance's WebSocket hub.
    pub hub: ferrapi::ws::Hub,
    /// The durable notifications queue.
    pub notifications: notifications::Notifications,
    /// Where uploads go (`STORAGE_URL`).
    pub files: ferrapi_storage::files::FileStore,
    /// The rate limiter's shared store (Redis with `REDIS_URL`; else each
    /// instance counts in memory).
    pub rate_limit_store: Option<Arc<dyn ferrapi::middleware::RateLimitStore>>,
    /// The Prometheus registry served at `/metrics`.
    pub metrics: Arc<ferrapi::metrics::Metrics>,
    /// Whether migrations and bootstrap are done.
    pub startup: health::Startup,
}

impl std::fmt::Debug for Resources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resources")
            .field("pool", &self.pool)
            .field("cache", &self.cache)
            .field("bus", &self.bus)
            .field("files", &self.files)
            .field("shared_rate_limit", &self.rate_limit_store.is_some())
            .finish_non_exhaustive()
    }
}

impl Resources {
    /// Connects the cache and the bus named by `config` around `pool`, and
    /// starts the task that feeds bus events to this instance's WebSockets.
    /// Servers are not waited for: an unreachable Redis or NATS makes the
    /// readiness check fail until it answers.
    pub async fn connect(
        pool: ferrapi_storage::db::DbPool,
        config: &config::Config,
    ) -> anyhow::Result<Self> {
        let cache = match &config.redis_url {
            Some(url) => ferrapi_storage::cache::Cache::connect(url)
                .map_err(|e| anyhow::anyhow!("REDIS_URL: {e}"))?,
            None => ferrapi_storage::cache::Cache::memory(),
        }
        .namespace(config.namespace.clone())
        .default_ttl(std::time::Duration::from_secs(300));
        let bus = match (&config.nats_url, &config.redis_url) {
            (Some(url), _) => ferrapi_storage::bus::Bus::connect(url)
                .await
                .map_err(|e| anyhow::anyhow!("NATS_URL: {e}"))?,
            (None, Some(url)) => ferrapi_storage::bus::Bus::connect(url)
                .await
                .map_err(|e| anyhow::anyhow!("REDIS_URL: {e}"))?,
            (None, None) => ferrapi_storage::bus::Bus::in_process(),
        };
        let bus = bus
            .namespace(&config.namespace)
            .map_err(|e| anyhow::anyhow!("SHARED_NAMESPACE: {e}"))?;
        let hub = ferrapi::ws::Hub::new();
        tokio::spawn(events::bridge(bus.clone(), hub.clone()));
        let notifications =
            notifications::Notifications::open(&pool, config.notification_delay).await?;
        let files = ferrapi_storage::files::FileStore::from_url(&config.storage_url)
            .await
            .map_err(|e| anyhow::anyhow!("STORAGE_URL: {e}"))?;
        let rate_limit_store = match &config.redis_url {
            Some(url) => {
                let conn = ferrapi_storage::cache::RedisConnection::open(url)
                    .map_err(|e| anyhow::anyhow!("REDIS_URL: {e}"))?;
                let store = ferrapi_storage::rate_limit::RedisRateLimitStore::new(conn)
                    .namespace(config.namespace.clone());
                Some(Arc::new(store) as Arc<dyn ferrapi::middleware::RateLimitStore>)
            }
            None => None,
        };
        let metrics = ferrapi::metrics::Metrics::new();
        let metrics = match &config.statsd {
            Some(statsd) => metrics
                .statsd(statsd.clone())
                .map_err(|e| anyhow::anyhow!("STATSD_HOST: {e}"))?,
            None => metrics,
        };
        let metrics = Arc::new(metrics);
        let resources = Self {
            pool,
            cache,
            bus,
            hub,
            notifications,
            files,
            rate_limit_store,
            metrics,
            startup: health::Startup::new(),
        };
        tokio::spawn(resources.clone().record_gauges());
        Ok(resources)
    }

    /// Every 5 s: database pool, task queue, cache and WebSocket gauges in
    /// the `/metrics` registry. Ends with the runtime.
    async fn record_gauges(self) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.record_once().await;
        }
    }

    /// Records the gauges once (also right before a scrape would be ideal;
    /// five seconds of staleness is the trade-off for not querying the queue
    /// on every scrape).
    pub async fn record_once(&self) {
        let m = &self.metrics;
        self.pool.record_metrics(m);
        if let Err(e) = self.notifications.queue.record_metrics(m).await {
            tracing::debug!(error = %e, "task queue gauges not recorded");
        }
        let stats = self.cache.stats();
        let backend = self.cache.backend_name();
        for (kind, value) in [
            ("hit", stats.hits),
            ("miss", stats.misses),
            ("coalesced", stats.coalesced),
            ("error", stats.errors),
        ] {
            m.gauge(
                "cache_operations",
                &[("backend", backend), ("result", kind)],
            )
            .set(value as f64);
        }
        m.gauge("websocket_connections", &[("topic", "users")])
            .set(self.hub.subscriber_count("users") as f64);
    }
}

/// The application, around an opened and migrated database.
pub fn app(resources: Resources, config: &config::Config) -> App {
    let auth = Arc::new(auth::Auth::new(
        config.jwt_secret.expose().as_bytes(),
        std::time::Duration::from_secs(config.access_token_ttl),
        ferrapi::middleware::password::PasswordHasher::new(),
    ));
    app_with_auth(resources, config, auth)
}

/// The application with a given [`auth::Auth`] (tests use a fast hasher).
pub fn app_with_auth(resources: Resources, config: &config::Config, auth: Arc<auth::Auth>) -> App {
    // Authenticated requests count against the user's bucket, anonymous
    // ones against the client address.
    // The stack's JWT layer verified the token (once per request).
    let user_key = RateLimitKey::from_fn(|parts| {
        auth::verified_user_id(&parts.extensions).map(|id| format!("user:{id}"))
    });
    let mut stack = Stack::defaults()
        .jwt(auth.layer())
        .access_log(
            config
                .access_log
                .then(ferrapi::middleware::AccessLogLayer::new),
        )
        .client_ip(ClientIpLayer::new(config.forwarded_allow_ips.clone()))
        .rate_limit({
            let layer = RateLimitLayer::new(config.rate_limit)
                .key(user_key.or(RateLimitKey::client_ip(config.forwarded_allow_ips.clone())))
                .exempt("/health")
                .exempt("/metrics")
                // Redis down: serve rather than refuse (logged).
                .on_store_error(ferrapi::middleware::FailMode::Open);
            match resources.rate_limit_store.clone() {
                Some(store) => layer.shared_store(store),
                None => layer,
            }
        });
    if let Some(origins) = &config.cors_origins
        && let Ok(cors) = CorsConfig::new().allow_origin_list(origins).build()
    {
        stack = stack.cors(cors);
    }
    let stats = Arc::new(admin::Stats::default());
    App::new()
        .title("ferrapi reference service")
        .version(env!("CARGO_PKG_VERSION"))
        .description("A users API built with ferrapi, exercising every layer of the framework.")
        .tag(
            "auth",
            "OAuth2 password flow: exchange an e-mail address and password for a bearer token.",
        )
        .tag("users", "Create, read, update and delete users.")
        .tag("admin", "Administrator-only statistics.")
        .tag("internal", "Operator endpoints guarded by a shared secret.")
        .tag("health", "Liveness, readiness and startup checks.")
        .tag("observability", "Prometheus metrics.")
        .tag(
            "events",
            "User events in real time (described in full by `/asyncapi.json`).",
        )
        .document("v1", "/api/v1")
        .document("v2", "/api/v2")
        // The bus prefixes every topic with the namespace: the document
        // names the subject on the wire.
        .publishes::<events::UserEvent>(
            format!("{}.{}", config.namespace, events::USER_EVENTS.name()),
            "User events: one per user created or deleted, published by the instance that made \
             the change. The subject is `<SHARED_NAMESPACE>.users` (the namespace is `ferrapi` by default).",
        )
        .subscribes::<events::UserEvent>(
            format!("{}.{}", config.namespace, events::USER_EVENTS.name()),
            "Every instance forwards the topic's events to its WebSocket clients.",
        )
        .metrics("/metrics", resources.metrics.clone())
        .state(resources.pool)
        .state(resources.cache)
        .state(resources.bus)
        .state(resources.hub)
        .state(resources.notifications)
        .state(resources.files)
        .state(resources.startup.clone())
        .state(auth)
        .state(stats.clone())
        .state(admin::InternalToken(
            config
                .internal_token
                .as_ref()
                .map(|t| t.expose().to_owned()),
        ))
        .state(Arc::new(admin::EffectiveConfig::from_config(config)))
        .body_limit(config.max_body_bytes)
        .include(health::router())
        .include(auth::router())
        .include(users::router())
        .include(users_v2::router())
        .include(admin::router())
        .include(events::router())
        .include(notifications::router())
        .include(avatars::router())
        // gzip and deflate request bodies, decoded for the extractors: the
        // decoded bytes count against the body limits, and a bomb is
        // refused 413 without being inflated. No brotli: its decoder may
        // hold a window of up to 16 MiB per request in flight.
        .layer(ferrapi::middleware::DecompressionLayer::new().br(false))
        .layer(from_fn_with_state(stats, count_request))
        .layer(from_fn_with_state(resources.startup, starting_gate))
        .middleware(stack)
}

/// While migrations run, everything but `/health/*` and `/metrics`
/// answers 503 `{"detail": "Service is starting"}` with `Retry-After: 1`.
async fn starting_gate(
    ferrapi::axum::extract::State(startup): ferrapi::axum::extract::State<health::Startup>,
    request: ferrapi::axum::extract::Request,
    next: Next,
) -> ferrapi::axum::response::Response {
    let path = request.uri().path();
    if startup.is_done() || path.starts_with("/health/") || path == "/metrics" {
        return next.run(request).await;
    }
    use ferrapi::axum::response::IntoResponse as _;
    (
        ferrapi::http::StatusCode::SERVICE_UNAVAILABLE,
        [(ferrapi::http::header::RETRY_AFTER, "1")],
        ferrapi::axum::Json(serde_json::json!({"detail": "Service is starting"})),
    )
        .into_response()
}

async fn count_request(
    ferrapi::axum::extract::State(stats): ferrapi::axum::extract::State<Arc<admin::Stats>>,
    request: ferrapi::axum::extract::Request,
    next: Next,
) -> ferrapi::axum::response::Response {
    stats.count();
    next.run(request).await
}

// The startup gate and the readiness check, on the whole application.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ferrapi::testing::TestClient;

    /// The service on an in-memory SQLite database (not migrated), without
    /// Redis or NATS.
    async fn resources() -> (ferrapi_storage::db::DbPool, config::Config, Resources) {
        let pool = db::connect("sqlite::memory:").await.unwrap();
        let mut config = config::Config::from_env().unwrap();
        config.storage_url = "memory://".to_owned();
        config.redis_url = None;
        config.nats_url = None;
        let resources = Resources::connect(pool.clone(), &config).await.unwrap();
        (pool, config, resources)
    }

    #[tokio::test]
    async fn startup_and_the_api_answer_503_until_migrations_are_done() {
        let (pool, config, resources) = resources().await;
        let startup = resources.startup.clone();
        let client = TestClient::new(app(resources, &config));
        let res = client.get("/health/startup").send().await;
        assert_eq!(res.status(), 503);
        assert_eq!(res.json::<serde_json::Value>()["status"], "starting");
        assert_eq!(client.get("/health/ready").send().await.status(), 503);
        let res = client.get("/api/v1/users").send().await;
        assert_eq!(res.status(), 503);
        assert_eq!(
            res.json::<serde_json::Value>(),
            serde_json::json!({"detail": "Service is starting"})
        );
        assert_eq!(res.header("retry-after"), Some("1"));
        assert_eq!(client.get("/health/live").send().await.status(), 200);

        db::migrate(&pool).await.unwrap();
        startup.mark_done();
        assert_eq!(client.get("/health/startup").send().await.status(), 200);
        assert_eq!(client.get("/health/ready").send().await.status(), 200);
        assert_eq!(client.get("/api/v1/users").send().await.status(), 401);
    }

    #[tokio::test]
    async fn readiness_answers_503_once_the_server_drains() {
        let (pool, config, resources) = resources().await;
        db::migrate(&pool).await.unwrap();
        resources.startup.mark_done();
        let draining = ferrapi::Draining::new();
        let client = TestClient::new(app(resources, &config).state(draining.clone()));
        assert_eq!(client.get("/health/ready").send().await.status(), 200);
        draining.start();
        let res = client.get("/health/ready").send().await;
        assert_eq!(res.status(), 503);
        assert_eq!(
            res.json::<serde_json::Value>(),
            serde_json::json!({
                "detail": "shutdown: draining",
                "status": "unavailable",
                "checks": {"shutdown": "draining"}
            })
        );
        assert_eq!(client.get("/health/live").send().await.status(), 200);
    }
}
