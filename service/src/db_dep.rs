//! `Db`: the request-scoped database dependency — one transaction per
//! request, committed when the handler succeeds, rolled back when it fails,
//! panics or the client goes away (ferrapi's `defer`).

use ferrapi::HttpError;
use ferrapi::extract::{Dependency, Rejection, RequestContext, defer};
use ferrapi::http::request::Parts;
use sqlx::{Sqlite, SqlitePool, Transaction};
use std::sync::Arc;
use tokio::sync::{Mutex, MutexGuard};

/// The application's pool (application scope, registered with `App::state`).
#[derive(Clone, Debug)]
pub struct Pool(pub SqlitePool);

/// This request's transaction. Cheap to clone: clones share it.
#[derive(Clone, Debug)]
pub struct Db {
    tx: Arc<Mutex<Option<Transaction<'static, Sqlite>>>>,
}

/// Why the transaction cannot be used (it was already finished).
#[derive(Debug, thiserror::Error)]
#[error("the request's transaction is already finished")]
pub struct Finished;

/// A lock on the transaction: use `&mut *guard` as an executor.
pub struct TxGuard<'a>(MutexGuard<'a, Option<Transaction<'static, Sqlite>>>);

impl TxGuard<'_> {
    /// The connection of the transaction.
    pub fn conn(&mut self) -> Result<&mut sqlx::SqliteConnection, Finished> {
        self.0.as_deref_mut().ok_or(Finished)
    }
}

impl Db {
    /// Locks the transaction for a query or several.
    pub async fn lock(&self) -> TxGuard<'_> {
        TxGuard(self.tx.lock().await)
    }
}

impl Dependency for Db {
    async fn resolve(parts: &mut Parts, cx: &RequestContext) -> Result<Self, Rejection> {
        let Some(Pool(pool)) = cx.state::<Pool>() else {
            return Err(HttpError::internal().into());
        };
        let tx = match pool.begin().await {
            Ok(tx) => tx,
            Err(e) => {
                tracing::error!(error = %e, "cannot begin a transaction");
                return Err(HttpError::new(
                    ferrapi::http::StatusCode::SERVICE_UNAVAILABLE,
                    "Database unavailable",
                )
                .into());
            }
        };
        let tx = Arc::new(Mutex::new(Some(tx)));
        let finish = tx.clone();
        defer(parts, move |outcome| async move {
            let Some(tx) = finish.lock().await.take() else {
                return Ok(());
            };
            if outcome.is_success() {
                tx.commit().await.map_err(ferrapi::Error::from)
            } else {
                tx.rollback().await.map_err(ferrapi::Error::from)
            }
        });
        Ok(Db { tx })
    }
}
