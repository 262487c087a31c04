//! `Db`: the request-scoped transaction dependency.

use super::{Backend, DbError, DbPool, Query};
use ferrapi::HttpError;
use ferrapi::extract::{Dependency, Rejection, RequestContext, defer};
use ferrapi::http::StatusCode;
use ferrapi::http::request::Parts;
use sqlx::AnyConnection;
use sqlx::any::{AnyQueryResult, AnyRow};
use sqlx::{Any, Transaction};
use std::sync::Arc;
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

/// One transaction: in a handler, the request's — begun when the handler
/// asks for it (`Depends<Db>`), committed after the handler answers with a
/// status below 400, rolled back when it answers an error, panics, or the
/// client goes away (ferrapi's `defer` with the outcome). A failed commit
/// turns the response into a 500: a write that did not happen is never
/// reported as done.
///
/// Cheap to clone: clones (and every dependency of the request asking for
/// `Db`) share the one transaction. Queries are written with `?`
/// placeholders (see [`Backend::sql`]).
///
/// The [`DbPool`] must be registered with `App::state`; without it the
/// request is answered 500, and when no connection can be had within the
/// pool's acquire timeout, 503 `Database unavailable`.
///
/// ```
/// use ferrapi::prelude::*;
/// use ferrapi_storage::db::Db;
///
/// /// Delete a user and their notes.
/// #[delete("/users/{id}", status = 204)]
/// async fn delete_user(Depends(db): Depends<Db>, Path(id): Path<i64>)
///     -> Result<NoContent, ferrapi::Error>
/// {
///     db.execute(db.query("DELETE FROM notes WHERE user_id = ?").bind(id)).await?;
///     let done = db.execute(db.query("DELETE FROM users WHERE id = ?").bind(id)).await?;
///     if done.rows_affected() == 0 {
///         // An error status: the notes' deletion is rolled back too.
///         return Err(HttpError::not_found("User not found").into());
///     }
///     Ok(NoContent)
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Db {
    tx: Arc<Mutex<Option<Transaction<'static, Any>>>>,
    backend: Backend,
    after_commit: AfterCommit,
}

type Hook = Box<dyn FnOnce() + Send>;

/// Code to run once the transaction has committed.
#[derive(Clone, Default)]
struct AfterCommit(Arc<std::sync::Mutex<Vec<Hook>>>);

impl std::fmt::Debug for AfterCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AfterCommit(..)")
    }
}

impl AfterCommit {
    fn run(&self) {
        let hooks = std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()));
        for hook in hooks {
            hook();
        }
    }
}

/// A lock on a transaction's connection: `&mut *conn` is an executor for
/// sqlx queries. Hold it for one query or a few; other users of the same
/// [`Db`] wait meanwhile.
pub type DbConn<'a> = MappedMutexGuard<'a, AnyConnection>;

impl Db {
    /// Begins a transaction on `pool` outside a request (a worker, a
    /// startup task); finish it with [`Db::commit`] or [`Db::rollback`]
    /// (dropped unfinished, it rolls back).
    pub async fn begin(pool: &DbPool) -> Result<Db, DbError> {
        let tx = pool.begin().await?;
        Ok(Db {
            tx: Arc::new(Mutex::new(Some(tx))),
            backend: pool.backend(),
            after_commit: AfterCommit::default(),
        })
    }

    /// [`Db::begin`] holding the write lock from the start on SQLite
    /// (`BEGIN IMMEDIATE`, see [`DbPool::begin_write`]): for read-then-write
    /// work outside requests.
    pub async fn begin_write(pool: &DbPool) -> Result<Db, DbError> {
        let tx = pool.begin_write().await?;
        Ok(Db {
            tx: Arc::new(Mutex::new(Some(tx))),
            backend: pool.backend(),
            after_commit: AfterCommit::default(),
        })
    }

    /// The engine behind the transaction.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A query written with `?` placeholders, in the backend's style.
    pub fn query(&self, sql: &'static str) -> Query {
        sqlx::query(self.backend.sql(sql))
    }

    /// A query built at run time (an `IN (?, ?, …)` list of variable
    /// length, a table name from configuration), rewritten for the backend
    /// at each call. Like sqlx's `AssertSqlSafe`, the caller vouches that
    /// no untrusted input was pasted into `sql`: values still go through
    /// `.bind(…)`.
    pub fn query_dynamic(&self, sql: &str) -> Query {
        sqlx::query(sqlx::AssertSqlSafe(self.backend.rewrite(sql).into_owned()))
    }

    /// Locks the transaction's connection, for sqlx calls this type does
    /// not wrap: `query.fetch_one(&mut *db.conn().await?)`.
    pub async fn conn(&self) -> Result<DbConn<'_>, DbError> {
        let guard = self.tx.lock().await;
        MutexGuard::try_map(guard, |tx| tx.as_deref_mut()).map_err(|_| DbError::Finished)
    }

    /// Runs `query` in the transaction.
    pub async fn execute(&self, query: Query) -> Result<AnyQueryResult, DbError> {
        Ok(query.execute(&mut *self.conn().await?).await?)
    }

    /// Runs `query` and returns its rows.
    pub async fn fetch_all(&self, query: Query) -> Result<Vec<AnyRow>, DbError> {
        Ok(query.fetch_all(&mut *self.conn().await?).await?)
    }

    /// Runs `query` and returns its first row, if any.
    pub async fn fetch_optional(&self, query: Query) -> Result<Option<AnyRow>, DbError> {
        Ok(query.fetch_optional(&mut *self.conn().await?).await?)
    }

    /// Runs `query` and returns its first row (an error if none).
    pub async fn fetch_one(&self, query: Query) -> Result<AnyRow, DbError> {
        Ok(query.fetch_one(&mut *self.conn().await?).await?)
    }

    /// Commits now (a request's transaction is committed for you; this is
    /// for transactions begun with [`Db::begin`]). Further use of this `Db`
    /// and its clones fails with [`DbError::Finished`].
    pub async fn commit(&self) -> Result<(), DbError> {
        match self.tx.lock().await.take() {
            Some(tx) => {
                tx.commit().await?;
                self.after_commit.run();
                Ok(())
            }
            None => Err(DbError::Finished),
        }
    }

    /// Runs `hook` once the transaction has committed (never if it rolls
    /// back): wake a worker for a task enqueued in it, publish an event
    /// about what it wrote, invalidate a cache entry. Keep it short; it
    /// runs on the committing task.
    pub fn after_commit(&self, hook: impl FnOnce() + Send + 'static) {
        self.after_commit
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Box::new(hook));
    }

    /// Rolls back now.
    pub async fn rollback(&self) -> Result<(), DbError> {
        match self.tx.lock().await.take() {
            Some(tx) => Ok(tx.rollback().await?),
            None => Err(DbError::Finished),
        }
    }

    /// True while the transaction can still be used.
    pub async fn is_open(&self) -> bool {
        self.tx.lock().await.is_some()
    }
}

impl Dependency for Db {
    async fn resolve(parts: &mut Parts, cx: &RequestContext) -> Result<Self, Rejection> {
        let Some(pool) = cx.state::<DbPool>() else {
            tracing::error!("Depends<Db> needs a DbPool registered with App::state");
            return Err(HttpError::internal().into());
        };
        let db = match Db::begin(pool).await {
            Ok(db) => db,
            Err(e) => {
                tracing::error!(error = %e, "cannot begin a transaction");
                return Err(HttpError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Database unavailable",
                )
                .into());
            }
        };
        let finish = db.tx.clone();
        let hooks = db.after_commit.clone();
        defer(parts, move |outcome| async move {
            // Already finished by the handler (an explicit commit): nothing
            // left to do.
            let Some(tx) = finish.lock().await.take() else {
                return Ok(());
            };
            if outcome.is_success() {
                tx.commit().await.map_err(|e| {
                    tracing::error!(error = %e, "commit failed");
                    ferrapi::Error::from(e)
                })?;
                hooks.run();
                Ok(())
            } else {
                tx.rollback().await.map_err(ferrapi::Error::from)
            }
        });
        Ok(db)
    }
}
