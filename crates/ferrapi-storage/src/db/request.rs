//! `Db`: the request-scoped transaction dependency.

use super::{Backend, DbError, DbPool, Query, trace};
use ferrapi_core::HttpError;
use ferrapi_core::extract::{Dependency, Rejection, RequestContext, defer};
use http::request::Parts;
use sqlx::any::{AnyQueryResult, AnyRow};
use sqlx::{Any, Transaction};
use sqlx::{AnyConnection, Executor as _};
use std::sync::Arc;
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

/// One transaction: in a handler, the request's (`Depends<Db>`) — begun at
/// its first query, committed after the handler answers with a status below
/// 400, rolled back when it answers an error, panics, or the client goes
/// away (ferrapi's `defer` with the outcome). A failed commit turns the
/// response into an error, so a write that did not happen is never
/// reported as done: 503 `Database unavailable` when the database went
/// away under it ([`DbError::Unavailable`]; the client may retry), 503
/// `Database busy` with `Retry-After` for SQLite's [`DbError::Busy`], 500
/// for any other failure.
///
/// Begun at the first query, not when the handler is called: a request
/// holds no connection while it validates, hashes a password or waits on
/// another service before touching the database, and one that never
/// queries costs nothing. When no connection can be had within the pool's
/// acquire timeout, that first query fails with [`DbError::Unavailable`]
/// (answer it 503 if you like: `App::exception_handler`, or your error
/// type's mapping).
///
/// Cheap to clone: clones (and every dependency of the request asking for
/// `Db`) share the one transaction. Queries are written with `?`
/// placeholders (see [`Backend::sql`]). The [`DbPool`] must be registered
/// with `App::state`; without it the request is answered 500.
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
    tx: Arc<Mutex<Tx>>,
    pool: DbPool,
    after_commit: AfterCommit,
}

/// The answer for a request whose transaction could not be ended: 503
/// `Database unavailable` (or `Database busy`, with `Retry-After`) when the
/// database is unavailable, the error itself (a 500) otherwise.
fn finish_error(e: DbError) -> ferrapi_core::response::Error {
    ferrapi_core::response::ResponseError::into_error(e)
}

/// Where the transaction is in its life.
#[derive(Debug)]
enum Tx {
    /// Not begun yet: begun on the pool at the first query.
    Lazy,
    /// Begun.
    Open(Transaction<'static, Any>),
    /// Committed or rolled back.
    Finished,
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
    fn with(tx: Tx, pool: &DbPool) -> Db {
        Db {
            tx: Arc::new(Mutex::new(tx)),
            pool: pool.clone(),
            after_commit: AfterCommit::default(),
        }
    }

    /// A transaction on `pool` begun at its first query (what `Depends<Db>`
    /// gives a handler).
    pub fn lazy(pool: &DbPool) -> Db {
        Self::with(Tx::Lazy, pool)
    }

    /// Begins a transaction on `pool` outside a request (a worker, a
    /// startup task); finish it with [`Db::commit`] or [`Db::rollback`]
    /// (dropped unfinished, it rolls back).
    pub async fn begin(pool: &DbPool) -> Result<Db, DbError> {
        let tx = pool.begin().await?;
        Ok(Self::with(Tx::Open(tx), pool))
    }

    /// [`Db::begin`] holding the write lock from the start on SQLite
    /// (`BEGIN IMMEDIATE`, see [`DbPool::begin_write`]): for read-then-write
    /// work outside requests.
    pub async fn begin_write(pool: &DbPool) -> Result<Db, DbError> {
        let tx = pool.begin_write().await?;
        Ok(Self::with(Tx::Open(tx), pool))
    }

    /// The engine behind the transaction.
    pub fn backend(&self) -> Backend {
        self.pool.backend()
    }

    /// A query written with `?` placeholders, in the backend's style.
    /// `sql` is text written in the program ([`StaticSql`](super::StaticSql)):
    /// SQL built at run time, such as a `WHERE` assembled from optional
    /// filters, goes through [`query_dynamic`](Self::query_dynamic), with
    /// every value bound.
    ///
    /// ```
    /// # async fn run(db: ferrapi_storage::db::Db) -> Result<(), ferrapi_storage::db::DbError> {
    /// let row = db.fetch_optional(db.query("SELECT id FROM notes WHERE id = ?").bind(7_i64)).await?;
    /// # Ok(()) }
    /// ```
    pub fn query(&self, sql: impl super::StaticSql) -> Query {
        sqlx::query(self.backend().sql(sql.text()))
    }

    /// A query built at run time (an `IN (?, ?, …)` list of variable
    /// length, a table name from configuration), rewritten for the backend
    /// at each call. Like sqlx's `AssertSqlSafe`, the caller vouches that
    /// no untrusted input was pasted into `sql`: values still go through
    /// `.bind(…)`.
    pub fn query_dynamic(&self, sql: &str) -> Query {
        sqlx::query(sqlx::AssertSqlSafe(
            self.backend().rewrite(sql).into_owned(),
        ))
    }

    /// Locks the transaction's connection, for sqlx calls this type does
    /// not wrap: `query.fetch_one(&mut *db.conn().await?)`.
    pub async fn conn(&self) -> Result<DbConn<'_>, DbError> {
        let mut guard = self.tx.lock().await;
        if let Tx::Lazy = &*guard {
            let tx = self.pool.begin().await?;
            *guard = Tx::Open(tx);
        }
        MutexGuard::try_map(guard, |tx| match tx {
            Tx::Open(tx) => Some(&mut **tx),
            Tx::Lazy | Tx::Finished => None,
        })
        .map_err(|_| DbError::Finished)
    }

    /// Runs `query` in the transaction.
    pub async fn execute(&self, query: Query) -> Result<AnyQueryResult, DbError> {
        let mut conn = self.conn().await?;
        trace::run(self.pool.target(), query, |q| conn.execute(q)).await
    }

    /// Runs `query` and returns its rows.
    pub async fn fetch_all(&self, query: Query) -> Result<Vec<AnyRow>, DbError> {
        let mut conn = self.conn().await?;
        trace::run(self.pool.target(), query, |q| conn.fetch_all(q)).await
    }

    /// Runs `query` and returns its first row, if any.
    pub async fn fetch_optional(&self, query: Query) -> Result<Option<AnyRow>, DbError> {
        let mut conn = self.conn().await?;
        trace::run(self.pool.target(), query, |q| conn.fetch_optional(q)).await
    }

    /// Runs `query` and returns its first row (an error if none).
    pub async fn fetch_one(&self, query: Query) -> Result<AnyRow, DbError> {
        let mut conn = self.conn().await?;
        trace::run(self.pool.target(), query, |q| conn.fetch_one(q)).await
    }

    /// Commits now (a request's transaction is committed for you; this is
    /// for transactions begun with [`Db::begin`]). Further use of this `Db`
    /// and its clones fails with [`DbError::Finished`].
    pub async fn commit(&self) -> Result<(), DbError> {
        let taken = std::mem::replace(&mut *self.tx.lock().await, Tx::Finished);
        match taken {
            Tx::Open(tx) => {
                let span = self.pool.target().tx_span("COMMIT");
                trace::in_span(span, tx.commit()).await?;
            }
            // Never begun: nothing to write.
            Tx::Lazy => {}
            Tx::Finished => return Err(DbError::Finished),
        }
        self.after_commit.run();
        Ok(())
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
        let taken = std::mem::replace(&mut *self.tx.lock().await, Tx::Finished);
        match taken {
            Tx::Open(tx) => {
                let span = self.pool.target().tx_span("ROLLBACK");
                trace::in_span(span, tx.rollback()).await
            }
            Tx::Lazy => Ok(()),
            Tx::Finished => Err(DbError::Finished),
        }
    }

    /// True while the transaction can still be used.
    pub async fn is_open(&self) -> bool {
        !matches!(*self.tx.lock().await, Tx::Finished)
    }

    /// True once a query began the transaction (and until it finished).
    pub async fn is_begun(&self) -> bool {
        matches!(*self.tx.lock().await, Tx::Open(_))
    }
}

impl Dependency for Db {
    /// A route taking `Depends<Db>` needs a [`DbPool`] registered with
    /// `App::state`: `App::build` fails naming the route without one.
    fn describe(op: &mut ferrapi_core::describe::OperationBuilder<'_>) {
        op.require_state::<DbPool>();
    }

    async fn resolve(parts: &mut Parts, cx: &RequestContext) -> Result<Self, Rejection> {
        let Some(pool) = cx.state::<DbPool>() else {
            tracing::error!("Depends<Db> needs a DbPool registered with App::state");
            return Err(HttpError::internal().into());
        };
        let db = Db::lazy(pool);
        let finish = db.clone();
        defer(parts, move |outcome| async move {
            let result = if outcome.is_success() {
                finish.commit().await
            } else {
                finish.rollback().await
            };
            match result {
                // Already finished by the handler (an explicit commit).
                Ok(()) | Err(DbError::Finished) => Ok(()),
                // The database went away (or SQLite was busy) under the
                // commit: 503, the client may retry, as a request that
                // could not begin gets. Other failures stay a 500.
                Err(e) => {
                    tracing::error!(error = %e, ?outcome, "ending the request's transaction failed");
                    Err(finish_error(e))
                }
            }
        });
        Ok(db)
    }
}
