//! The SQL backend: one table, leases, `FOR UPDATE SKIP LOCKED` where the
//! engine has it (PostgreSQL, MySQL/MariaDB), SQLite's write lock where not.

use super::{
    DeadTask, Enqueued, Job, NewTask, QueueError, QueueStats, Receipt, now_ms, random_u64,
};
use crate::db::{Backend, Db, DbPool, Migration, Migrations};
use sqlx::Row;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Task states.
// (0 ready, 1 running, 2 done, 3 dead: the SQL below writes them literally.)
const READY: i64 = 0;
const DEAD: i64 = 3;

static MIGRATIONS: Migrations = Migrations::new(&[Migration::new(1, "ferrapi_tasks")
    .sqlite(
        "CREATE TABLE ferrapi_tasks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            queue TEXT NOT NULL,
            kind TEXT NOT NULL,
            payload TEXT NOT NULL,
            idem_key TEXT,
            state INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0,
            max_attempts INTEGER NOT NULL,
            run_at INTEGER NOT NULL,
            lease INTEGER,
            last_error TEXT,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        );
        CREATE UNIQUE INDEX ferrapi_tasks_key ON ferrapi_tasks (queue, idem_key);
        CREATE INDEX ferrapi_tasks_due ON ferrapi_tasks (queue, state, run_at);",
    )
    .postgres(
        "CREATE TABLE ferrapi_tasks (
            id BIGSERIAL PRIMARY KEY,
            queue TEXT NOT NULL,
            kind TEXT NOT NULL,
            payload TEXT NOT NULL,
            idem_key TEXT,
            state BIGINT NOT NULL DEFAULT 0,
            attempts BIGINT NOT NULL DEFAULT 0,
            max_attempts BIGINT NOT NULL,
            run_at BIGINT NOT NULL,
            lease BIGINT,
            last_error TEXT,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
        );
        CREATE UNIQUE INDEX ferrapi_tasks_key ON ferrapi_tasks (queue, idem_key);
        CREATE INDEX ferrapi_tasks_due ON ferrapi_tasks (queue, state, run_at);",
    )
    .mysql(
        "CREATE TABLE ferrapi_tasks (
            id BIGINT AUTO_INCREMENT PRIMARY KEY,
            queue VARCHAR(64) NOT NULL,
            kind VARCHAR(200) NOT NULL,
            payload LONGTEXT NOT NULL,
            idem_key VARCHAR(255),
            state BIGINT NOT NULL DEFAULT 0,
            attempts BIGINT NOT NULL DEFAULT 0,
            max_attempts BIGINT NOT NULL,
            run_at BIGINT NOT NULL,
            lease BIGINT,
            last_error TEXT,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            UNIQUE KEY ferrapi_tasks_key (queue, idem_key),
            KEY ferrapi_tasks_due (queue, state, run_at)
        )",
    )])
.table("_ferrapi_queue_migrations");

pub(crate) struct SqlQueue {
    pool: DbPool,
    name: String,
    /// Completions go to a batcher: one `UPDATE … WHERE id IN (…)` (one
    /// commit, one fsync) for all the tasks that finished meanwhile.
    completions: mpsc::UnboundedSender<(i64, oneshot::Sender<Result<(), String>>)>,
}

/// Most completions written by one statement.
const COMPLETION_BATCH: usize = 256;

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// Writes completions in batches until every sender is gone.
async fn complete_in_batches(
    pool: DbPool,
    mut rx: mpsc::UnboundedReceiver<(i64, oneshot::Sender<Result<(), String>>)>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        // What arrived while the previous batch was written: no waiting, so
        // a lone completion is written at once.
        while batch.len() < COMPLETION_BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let sql = format!(
            "UPDATE ferrapi_tasks SET state = 2, lease = NULL, updated_at = ? WHERE state = 1 AND id IN ({})",
            placeholders(batch.len())
        );
        // A batch can meet a transient failure (a MySQL/MariaDB deadlock
        // with a concurrent claim): retry it a few times before giving up
        // (then the tasks stay leased and run again after the lease).
        let mut result = Err(String::new());
        for attempt in 0..5u64 {
            let mut query = pool.query_dynamic(&sql).bind(now_ms());
            for (id, _) in &batch {
                query = query.bind(*id);
            }
            result = pool
                .execute(query)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string());
            match &result {
                Ok(()) => break,
                Err(e) => {
                    tracing::debug!(error = %e, attempt, "recording completions failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(20 * (attempt + 1))).await;
                }
            }
        }
        for (_, reply) in batch {
            let _ = reply.send(result.clone());
        }
    }
}

fn count(row: &sqlx::any::AnyRow, col: &str) -> Result<u64, QueueError> {
    let n: i64 = row.try_get(col)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

impl SqlQueue {
    pub(crate) async fn open(pool: &DbPool, name: &str) -> Result<Self, QueueError> {
        pool.migrate(&MIGRATIONS).await?;
        let (completions, rx) = mpsc::unbounded_channel();
        tokio::spawn(complete_in_batches(pool.clone(), rx));
        Ok(SqlQueue {
            pool: pool.clone(),
            name: name.to_owned(),
            completions,
        })
    }

    fn backend(&self) -> Backend {
        self.pool.backend()
    }

    pub(crate) async fn enqueue(
        &self,
        db: Option<&Db>,
        new: NewTask,
    ) -> Result<Enqueued, QueueError> {
        let now = now_ms();
        // A duplicate key is skipped without an error: an error would
        // abort the caller's transaction on PostgreSQL.
        let (insert, returning) = match self.backend() {
            Backend::Sqlite | Backend::Postgres => (
                "INSERT INTO ferrapi_tasks (queue, kind, payload, idem_key, state, attempts, \
                 max_attempts, run_at, created_at, updated_at) VALUES (?, ?, ?, ?, 0, 0, ?, ?, ?, ?) \
                 ON CONFLICT (queue, idem_key) DO NOTHING RETURNING id",
                true,
            ),
            // `ON DUPLICATE KEY UPDATE` reports a found row as affected
            // (sqlx asks for found rows); an ignored insert affects none.
            // What IGNORE would also hide (truncation) cannot happen: kinds
            // and keys are checked against the column sizes first.
            Backend::MySql => (
                "INSERT IGNORE INTO ferrapi_tasks (queue, kind, payload, idem_key, state, attempts, \
                 max_attempts, run_at, created_at, updated_at) VALUES (?, ?, ?, ?, 0, 0, ?, ?, ?, ?)",
                false,
            ),
        };
        let query = self
            .pool
            .query(insert)
            .bind(self.name.clone())
            .bind(new.kind)
            .bind(new.payload)
            .bind(new.key.clone())
            .bind(i64::from(new.max_attempts))
            .bind(new.run_at_ms)
            .bind(now)
            .bind(now);
        let inserted: Option<i64> = if returning {
            let row = match db {
                Some(db) => db.fetch_optional(query).await?,
                None => self.pool.fetch_optional(query).await?,
            };
            row.map(|r| r.try_get::<i64, _>("id")).transpose()?
        } else {
            let done = match db {
                Some(db) => db.execute(query).await?,
                None => self.pool.execute(query).await?,
            };
            (done.rows_affected() == 1)
                .then(|| done.last_insert_id())
                .flatten()
        };
        if let Some(id) = inserted {
            return Ok(Enqueued {
                id: id.to_string(),
                duplicate: false,
            });
        }
        let select = self
            .pool
            .query("SELECT id FROM ferrapi_tasks WHERE queue = ? AND idem_key = ?")
            .bind(self.name.clone())
            .bind(new.key);
        let row = match db {
            Some(db) => db.fetch_one(select).await?,
            None => self.pool.fetch_one(select).await?,
        };
        Ok(Enqueued {
            id: row.try_get::<i64, _>("id")?.to_string(),
            duplicate: true,
        })
    }

    /// Claims up to `max` due tasks (ready, or running with an expired
    /// lease) in one transaction.
    pub(crate) async fn claim(&self, max: usize, lease: Duration) -> Result<Vec<Job>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let now = now_ms();
        let token = i64::from_ne_bytes(random_u64().to_ne_bytes());
        let until = now + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        let select = match self.backend() {
            // Under BEGIN IMMEDIATE: no other writer until commit.
            Backend::Sqlite => {
                "SELECT id, kind, payload, idem_key, attempts, max_attempts FROM ferrapi_tasks \
                 WHERE queue = ? AND state IN (0, 1) AND run_at <= ? ORDER BY run_at, id LIMIT ?"
            }
            Backend::Postgres | Backend::MySql => {
                "SELECT id, kind, payload, idem_key, attempts, max_attempts FROM ferrapi_tasks \
                 WHERE queue = ? AND state IN (0, 1) AND run_at <= ? ORDER BY run_at, id LIMIT ? \
                 FOR UPDATE SKIP LOCKED"
            }
        };
        // A plain read first: an idle queue (the common case of a polling
        // worker) costs no transaction, and on SQLite no write lock taken
        // from the request handlers.
        let due = self
            .pool
            .fetch_optional(
                self.pool
                    .query(
                        "SELECT id FROM ferrapi_tasks WHERE queue = ? AND state IN (0, 1) \
                         AND run_at <= ? LIMIT 1",
                    )
                    .bind(self.name.clone())
                    .bind(now),
            )
            .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let db = Db::begin_write(&self.pool).await?;
        let rows = db
            .fetch_all(
                db.query(select)
                    .bind(self.name.clone())
                    .bind(now)
                    .bind(i64::try_from(max).unwrap_or(i64::MAX)),
            )
            .await?;
        let mut jobs = Vec::with_capacity(rows.len());
        let mut buried = Vec::new();
        for row in rows {
            let id: i64 = row.try_get("id")?;
            let attempts: i64 = row.try_get("attempts")?;
            let max_attempts: i64 = row.try_get("max_attempts")?;
            if attempts >= max_attempts {
                // Every attempt's lease expired: its handler keeps killing
                // workers. Stop here.
                buried.push(id);
                continue;
            }
            jobs.push(Job {
                id: id.to_string(),
                kind: row.try_get("kind")?,
                payload: row.try_get("payload")?,
                key: row.try_get("idem_key")?,
                attempt: u32::try_from(attempts + 1).unwrap_or(u32::MAX),
                max_attempts: u32::try_from(max_attempts).unwrap_or(u32::MAX),
                receipt: Receipt::Sql { lease: token },
            });
        }
        if !jobs.is_empty() {
            let sql = format!(
                "UPDATE ferrapi_tasks SET state = 1, attempts = attempts + 1, run_at = ?, \
                 lease = ?, updated_at = ? WHERE id IN ({})",
                placeholders(jobs.len())
            );
            let mut update = db.query_dynamic(&sql).bind(until).bind(token).bind(now);
            for job in &jobs {
                update = update.bind(job.id.parse::<i64>().unwrap_or(-1));
            }
            db.execute(update).await?;
        }
        if !buried.is_empty() {
            tracing::warn!(queue = %self.name, ids = ?buried,
                "task dead-lettered: its lease expired at every attempt");
            let sql = format!(
                "UPDATE ferrapi_tasks SET state = 3, lease = NULL, updated_at = ?, \
                 last_error = ? WHERE id IN ({})",
                placeholders(buried.len())
            );
            let mut update = db
                .query_dynamic(&sql)
                .bind(now)
                .bind("the worker stopped before finishing, at every attempt (lease expired)");
            for id in buried {
                update = update.bind(id);
            }
            db.execute(update).await?;
        }
        db.commit().await?;
        Ok(jobs)
    }

    fn lease(job: &Job) -> Result<(i64, i64), QueueError> {
        let id: i64 = job
            .id
            .parse()
            .map_err(|_| QueueError::Unsupported("a non-SQL task id", "sql"))?;
        match job.receipt {
            Receipt::Sql { lease } => Ok((id, lease)),
            #[cfg(feature = "nats")]
            Receipt::Nats(_) => Err(QueueError::Unsupported("a NATS receipt", "sql")),
        }
    }

    /// Renews a lease; false when it was lost (expired and claimed again).
    pub(crate) async fn extend(&self, job: &Job, lease: Duration) -> Result<bool, QueueError> {
        let (id, token) = Self::lease(job)?;
        let until = now_ms() + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        let done = self
            .pool
            .execute(
                self.pool
                    .query("UPDATE ferrapi_tasks SET run_at = ? WHERE id = ? AND lease = ? AND state = 1")
                    .bind(until)
                    .bind(id)
                    .bind(token),
            )
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn finish(
        &self,
        job: &Job,
        state: i64,
        run_at: Option<i64>,
        error: Option<&str>,
    ) -> Result<(), QueueError> {
        let (id, token) = Self::lease(job)?;
        let now = now_ms();
        let done = self
            .pool
            .execute(
                self.pool
                    .query(
                        "UPDATE ferrapi_tasks SET state = ?, run_at = COALESCE(?, run_at), \
                         lease = NULL, last_error = COALESCE(?, last_error), updated_at = ? \
                         WHERE id = ? AND lease = ?",
                    )
                    .bind(state)
                    .bind(run_at)
                    .bind(error.map(str::to_owned))
                    .bind(now)
                    .bind(id)
                    .bind(token),
            )
            .await?;
        if done.rows_affected() == 0 {
            // The lease ran out and another worker has the task: its run
            // decides (at least once).
            tracing::warn!(queue = %self.name, id, "lease lost before the task finished");
        }
        Ok(())
    }

    /// Marks a task done. Without a lease check, unlike a retry: the task
    /// succeeded once, which is what at-least-once promises, even if its
    /// lease ran out meanwhile.
    pub(crate) async fn complete(&self, job: &Job) -> Result<(), QueueError> {
        let (id, _) = Self::lease(job)?;
        let (tx, rx) = oneshot::channel();
        let closed = || QueueError::Backend("the completion writer has stopped".into());
        self.completions.send((id, tx)).map_err(|_| closed())?;
        rx.await
            .map_err(|_| closed())?
            .map_err(|e| QueueError::Backend(format!("cannot record completions: {e}")))
    }

    pub(crate) async fn retry(&self, job: &Job, at_ms: i64, error: &str) -> Result<(), QueueError> {
        self.finish(job, READY, Some(at_ms), Some(error)).await
    }

    pub(crate) async fn bury(&self, job: &Job, error: &str) -> Result<(), QueueError> {
        self.finish(job, DEAD, None, Some(error)).await
    }

    pub(crate) async fn stats(&self) -> Result<QueueStats, QueueError> {
        let now = now_ms();
        let row = self
            .pool
            .fetch_one(
                self.pool
                    .query(
                        "SELECT \
                         COUNT(CASE WHEN state = 0 THEN 1 END) AS pending, \
                         COUNT(CASE WHEN state = 0 AND run_at > ? THEN 1 END) AS scheduled, \
                         COUNT(CASE WHEN state = 0 AND attempts > 0 THEN 1 END) AS retrying, \
                         COUNT(CASE WHEN state = 1 THEN 1 END) AS running, \
                         COUNT(CASE WHEN state = 3 THEN 1 END) AS dead \
                         FROM ferrapi_tasks WHERE queue = ? AND state <> 2",
                    )
                    .bind(now)
                    .bind(self.name.clone()),
            )
            .await?;
        Ok(QueueStats {
            pending: count(&row, "pending")?,
            scheduled: Some(count(&row, "scheduled")?),
            retrying: Some(count(&row, "retrying")?),
            running: count(&row, "running")?,
            dead: count(&row, "dead")?,
        })
    }

    pub(crate) async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadTask>, QueueError> {
        let rows = self
            .pool
            .fetch_all(
                self.pool
                    .query(
                        "SELECT id, kind, payload, idem_key, attempts, last_error, updated_at \
                         FROM ferrapi_tasks WHERE queue = ? AND state = 3 ORDER BY updated_at, id LIMIT ?",
                    )
                    .bind(self.name.clone())
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX)),
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(DeadTask {
                    id: row.try_get::<i64, _>("id")?.to_string(),
                    kind: row.try_get("kind")?,
                    payload: row.try_get("payload")?,
                    key: row.try_get("idem_key")?,
                    attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(0),
                    error: row
                        .try_get::<Option<String>, _>("last_error")?
                        .unwrap_or_default(),
                    died_at_ms: row.try_get("updated_at")?,
                })
            })
            .collect()
    }

    pub(crate) async fn redrive(&self, id: Option<&str>) -> Result<u64, QueueError> {
        let now = now_ms();
        let done = match id {
            Some(id) => {
                let Ok(id) = id.parse::<i64>() else {
                    return Ok(0);
                };
                self.pool
                    .execute(
                        self.pool
                            .query(
                                "UPDATE ferrapi_tasks SET state = 0, attempts = 0, run_at = ?, \
                                 updated_at = ? WHERE queue = ? AND id = ? AND state = 3",
                            )
                            .bind(now)
                            .bind(now)
                            .bind(self.name.clone())
                            .bind(id),
                    )
                    .await?
            }
            None => {
                self.pool
                    .execute(
                        self.pool
                            .query(
                                "UPDATE ferrapi_tasks SET state = 0, attempts = 0, run_at = ?, \
                                 updated_at = ? WHERE queue = ? AND state = 3",
                            )
                            .bind(now)
                            .bind(now)
                            .bind(self.name.clone()),
                    )
                    .await?
            }
        };
        Ok(done.rows_affected())
    }

    pub(crate) async fn purge_completed(&self, older_than: Duration) -> Result<u64, QueueError> {
        let before = now_ms() - i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX / 2);
        let done = self
            .pool
            .execute(
                self.pool
                    .query("DELETE FROM ferrapi_tasks WHERE queue = ? AND state = 2 AND updated_at <= ?")
                    .bind(self.name.clone())
                    .bind(before),
            )
            .await?;
        Ok(done.rows_affected())
    }
}
