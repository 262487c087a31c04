//! The users' shared model: the API's [`UserResponse`] and [`Timestamp`],
//! the [`UserError`] every users route answers with, and the mapping of a
//! `users` row. The route modules (`users`, `users_v2`, `notifications`,
//! `avatars`, `events`, `auth`) import it; it imports none of them.

use chrono::{DateTime, SecondsFormat, Utc};
use ferrapi::prelude::*;
use ferrapi_storage::db::{DbError, DbPool};
use ferrapi_storage::queue::QueueError;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

/// A user as the API shows it (never the password).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Validate)]
pub struct UserResponse {
    /// Identifier.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// E-mail address.
    pub email: String,
    /// Creation time, UTC, whole seconds, `Z` suffix.
    pub created_at: Timestamp,
}

/// A UTC instant written `2023-12-07T10:30:00Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    /// Now, truncated to whole seconds.
    pub fn now() -> Self {
        let now = Utc::now();
        Timestamp(DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now))
    }
    /// Reads a stored `2023-12-07T10:30:00Z`.
    pub fn parse(text: &str) -> Result<Self, sqlx::Error> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| Timestamp(t.with_timezone(&Utc)))
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))
    }
    /// `2023-12-07T10:30:00Z`.
    pub fn to_rfc3339(self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::Secs, true)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| Timestamp(t.with_timezone(&Utc)))
            .map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Timestamp {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Timestamp".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "format": "date-time"})
    }
}

/// The users API's errors: each variant with a status is answered
/// `{"detail": <message>}` and documented in the operation; the others are
/// logged and answered 500.
#[derive(Debug, thiserror::Error, ferrapi::ApiError)]
pub enum UserError {
    /// No user with that id.
    #[error("User not found")]
    #[api(status = 404)]
    NotFound,
    /// The e-mail address is taken.
    #[error("Email already registered")]
    #[api(status = 409)]
    EmailTaken,
    /// The caller may not change this user.
    #[error("Not enough privileges")]
    #[api(status = 403)]
    Forbidden,
    /// The database cannot be reached (down, or no connection within the
    /// pool's wait).
    #[error("Database unavailable")]
    #[api(status = 503)]
    Unavailable,
    /// The database failed.
    #[error("database error: {0}")]
    Database(DbError),
    /// A row could not be read.
    #[error("cannot read a row: {0}")]
    Row(#[from] sqlx::Error),
    /// The welcome notification could not be enqueued (for a reason other
    /// than an unavailable database, which is [`UserError::Unavailable`]).
    #[error("task queue error: {0}")]
    Queue(ferrapi_storage::queue::QueueError),
    /// Password hashing failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
}

impl From<DbError> for UserError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable(_) | DbError::Busy(_) | DbError::Timeout(_) => {
                tracing::warn!(error = %e, "database unavailable");
                UserError::Unavailable
            }
            other => UserError::Database(other),
        }
    }
}

/// A queue error that wraps an unavailable (or busy) database is
/// [`UserError::Unavailable`] (503, as [`From<DbError>`] maps it): the
/// welcome is enqueued in the request's transaction, so nothing was done.
impl From<QueueError> for UserError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Db(
                db @ (DbError::Unavailable(_) | DbError::Busy(_) | DbError::Timeout(_)),
            ) => db.into(),
            other => UserError::Queue(other),
        }
    }
}

/// Whether user `user_id` exists (outside a request's transaction).
pub(crate) async fn user_exists(pool: &DbPool, user_id: i64) -> Result<bool, DbError> {
    Ok(pool
        .fetch_optional(
            pool.query("SELECT id FROM users WHERE id = ?")
                .bind(user_id),
        )
        .await?
        .is_some())
}

/// A user as the API shows it, from a row with its `id`, `name`, `email`
/// and `created_at` columns.
pub(crate) fn row_to_user(row: &AnyRow) -> Result<UserResponse, sqlx::Error> {
    let created: String = row.try_get("created_at")?;
    let created_at = Timestamp::parse(&created)?;
    Ok(UserResponse {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        created_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrapi::ResponseError as _;

    fn status(e: UserError) -> u16 {
        let err = e.into_error();
        match err.downcast_ref::<HttpError>() {
            Some(http) => http.status().as_u16(),
            None => 500,
        }
    }

    #[test]
    fn a_queue_error_from_an_unavailable_database_is_a_503() {
        let unavailable = UserError::from(QueueError::Db(DbError::Unavailable(
            sqlx::Error::PoolTimedOut,
        )));
        assert!(matches!(unavailable, UserError::Unavailable));
        assert_eq!(status(unavailable), 503);
        let timeout = UserError::from(QueueError::Db(DbError::Timeout(
            std::time::Duration::from_secs(1),
        )));
        assert_eq!(status(timeout), 503);
        // Other queue failures stay 500s.
        let invalid = UserError::from(QueueError::Invalid("bad key"));
        assert!(matches!(invalid, UserError::Queue(_)));
        assert_eq!(status(invalid), 500);
        let query = UserError::from(QueueError::Db(DbError::Query(sqlx::Error::RowNotFound)));
        assert!(matches!(query, UserError::Queue(_)));
        assert_eq!(status(query), 500);
    }
}
