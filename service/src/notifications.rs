//! Welcome notifications through the durable task queue.
//!
//! Creating a user enqueues a [`Welcome`] task *in the request's
//! transaction* (the transactional outbox): the task exists if and only if
//! the user does, and it survives a SIGKILL between the response and its
//! run — the queue lives in the database, so it runs on the next start, or
//! on any other instance sharing the database (its worker claims it once
//! the lease of the dead one runs out). Workers run in every `serve`
//! process and in `worker` processes. The task is idempotent: the
//! notification is unique per user and kind, so a retried or re-run task
//! leaves exactly one.
//!
//! The queue is the SQL one even with `NATS_URL` set: enqueueing inside the
//! user's transaction is what makes "not lost" hold, and NATS cannot take
//! part in a database transaction. NATS carries the events (see
//! [`crate::events`]).

use crate::auth::CurrentUser;
use crate::model::{Timestamp, UserError};
use ferrapi::prelude::*;
use ferrapi_storage::db::{DbError, DbPool};
use ferrapi_storage::queue::{Queue, QueueConfig, QueueError, Task, TaskInfo, WorkerHandle};
use sqlx::Row;
use std::time::Duration;

/// The task: welcome user `user_id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Welcome {
    /// The new user.
    pub user_id: i64,
}

impl Task for Welcome {
    const KIND: &'static str = "welcome";
}

/// The notifications queue (application state).
#[derive(Clone)]
pub struct Notifications {
    /// The queue.
    pub queue: Queue,
    /// How long after its creation a welcome task may run at the earliest
    /// (`NOTIFICATION_DELAY_MS`, default 0).
    pub delay: Duration,
}

impl std::fmt::Debug for Notifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifications")
            .field("delay", &self.delay)
            .finish_non_exhaustive()
    }
}

impl Notifications {
    /// Opens the queue on `pool` (its tables are created if missing).
    pub async fn open(pool: &DbPool, delay: Duration) -> Result<Self, QueueError> {
        let config = QueueConfig::default()
            .poll_interval(Duration::from_millis(250))
            .visibility_timeout(Duration::from_secs(30))
            .max_attempts(10)
            .backoff(Duration::from_millis(500), Duration::from_secs(60));
        let queue = Queue::sql(pool, "notifications", config).await?;
        Ok(Self { queue, delay })
    }

    /// Starts a worker running welcome tasks against `pool`.
    pub fn start_worker(&self, pool: DbPool) -> WorkerHandle {
        self.queue
            .worker()
            .concurrency(2)
            .grace_period(Duration::from_secs(20))
            // Completed tasks stay a week (idempotency keys), then go.
            .purge_completed(Duration::from_secs(7 * 86_400))
            .handle(move |task: Welcome, info: TaskInfo| {
                let pool = pool.clone();
                async move { deliver_welcome(&pool, task.user_id, &info).await }
            })
            .start()
    }
}

/// Records the welcome notification (once, whatever the retries).
async fn deliver_welcome(pool: &DbPool, user_id: i64, info: &TaskInfo) -> Result<(), DbError> {
    if !crate::model::user_exists(pool, user_id).await? {
        // Deleted before its welcome: nothing to do.
        return Ok(());
    }
    let result = pool
        .execute(
            pool.query("INSERT INTO notifications (user_id, kind, created_at) VALUES (?, ?, ?)")
                .bind(user_id)
                .bind("welcome")
                .bind(Timestamp::now().to_rfc3339()),
        )
        .await;
    match result {
        Ok(_) => {
            tracing::info!(user_id, attempt = info.attempt, "welcome notification sent");
            Ok(())
        }
        // A previous run got there first.
        Err(e) if e.is_unique_violation() => Ok(()),
        Err(e) => Err(e),
    }
}

/// A notification.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Notification {
    /// What kind (`welcome`).
    pub kind: String,
    /// When it was recorded, UTC, whole seconds, `Z` suffix.
    pub created_at: Timestamp,
}

/// A user's notifications, oldest first.
#[get("/users/{user_id}/notifications", tags = ["users"])]
pub async fn list_notifications(
    Depends(_caller): Depends<CurrentUser>,
    State(pool): State<DbPool>,
    Path(user_id): Path<i64>,
) -> Result<Json<Vec<Notification>>, UserError> {
    if !crate::model::user_exists(&pool, user_id).await? {
        return Err(UserError::NotFound);
    }
    let rows = pool
        .fetch_all(
            pool.query("SELECT kind, created_at FROM notifications WHERE user_id = ? ORDER BY id")
                .bind(user_id),
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let created: String = row.try_get("created_at")?;
        out.push(Notification {
            kind: row.try_get("kind")?,
            created_at: Timestamp::parse(&created)?,
        });
    }
    Ok(Json(out))
}

/// The notifications router.
pub fn router() -> Router {
    Router::new().prefix("/api/v1").route(list_notifications)
}
