//! `/api/v1/users`: create and read users.

use crate::auth::{Admin, CurrentUser};
use crate::events::{UserEvent, publish};
use chrono::{DateTime, SecondsFormat, Utc};
use ferrapi::prelude::*;
use ferrapi_storage::bus::Bus;
use ferrapi_storage::cache::Cache;
use ferrapi_storage::db::{Db, DbError, DbPool};
use ferrapi_storage::queue::QueueError;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

/// A new user. Unknown fields are ignored; `age` accepts `"30"` as FastAPI's
/// lax mode does.
#[derive(Debug, Deserialize, JsonSchema, Validate)]
pub struct UserCreate {
    /// Display name, 2 to 50 characters.
    #[garde(length(chars, min = 2, max = 50))]
    pub name: String,
    /// E-mail address, unique among users.
    #[garde(email)]
    pub email: String,
    /// Age in years, 18 to 120.
    #[garde(range(min = 18, max = 120))]
    pub age: i64,
    /// Password for the OAuth2 password flow, 8 to 128 characters. A user
    /// created without one cannot log in.
    #[garde(inner(length(chars, min = 8, max = 128)))]
    #[serde(default)]
    pub password: Option<String>,
}

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

/// The cache key of a user.
pub fn user_key(id: i64) -> String {
    format!("user:{id}")
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

/// Hashes a password with Argon2id on the blocking pool (it is CPU work).
async fn hash_password(password: String) -> Result<String, UserError> {
    // The framework's hasher (Argon2id, OWASP parameters, as
    // `Argon2::default()`) bounds the hashes running at once process-wide.
    ferrapi::middleware::password::PasswordHasher::new()
        .hash_blocking(password)
        .await
        .map_err(|e| UserError::Hash(e.to_string()))
}

/// Create a user.
///
/// Answers 201 with the user and its `Location`; 409 when the e-mail address
/// is already registered.
#[post("/users", status = 201, tags = ["users"])]
pub async fn create_user(
    Depends(_caller): Depends<CurrentUser>,
    Depends(db): Depends<Db>,
    State(bus): State<Bus>,
    State(notifications): State<crate::notifications::Notifications>,
    Json(user): Json<UserCreate>,
) -> Result<Created<UserResponse>, UserError> {
    let password_hash = match user.password {
        Some(p) => Some(hash_password(p).await?),
        None => None,
    };
    let created_at = Timestamp::now();
    let result = db
        .fetch_one(
            db.query(
                "INSERT INTO users (name, email, age, password_hash, created_at) \
                 VALUES (?, ?, ?, ?, ?) RETURNING id",
            )
            .bind(user.name.clone())
            .bind(user.email.clone())
            .bind(user.age)
            .bind(password_hash)
            .bind(created_at.to_rfc3339()),
        )
        .await;
    let id: i64 = match result {
        Ok(row) => row.try_get("id")?,
        Err(e) if e.is_unique_violation() => return Err(UserError::EmailTaken),
        Err(e) => return Err(e.into()),
    };
    // In the same transaction: the welcome exists if and only if the user does.
    notifications
        .queue
        .enqueue_in(
            &db,
            &crate::notifications::Welcome { user_id: id },
            ferrapi_storage::queue::Enqueue::new()
                .key(format!("welcome:{id}"))
                .delay(notifications.delay),
        )
        .await?;
    let created = UserResponse {
        id,
        name: user.name,
        email: user.email,
        created_at,
    };
    publish(&bus, UserEvent::Created(created.clone())).await;
    Ok(Created::new(format!("/api/v1/users/{id}"), created))
}

/// Read a user.
#[get("/users/{user_id}", tags = ["users"])]
pub async fn read_user(
    Depends(_caller): Depends<CurrentUser>,
    State(pool): State<DbPool>,
    State(cache): State<Cache>,
    Path(user_id): Path<i64>,
) -> Result<Json<UserResponse>, UserError> {
    cached_user(&cache, &pool, user_id).await.map(Json)
}

/// The user, from the cache when it is there (no database query), else
/// from the database (then cached). Updates and deletes invalidate it.
async fn cached_user(
    cache: &Cache,
    pool: &DbPool,
    user_id: i64,
) -> Result<UserResponse, UserError> {
    cache
        .get_or_compute(&user_key(user_id), || async move {
            let row = pool
                .fetch_optional(
                    pool.query("SELECT id, name, email, created_at FROM users WHERE id = ?")
                        .bind(user_id),
                )
                .await?;
            match row {
                Some(row) => Ok(row_to_user(&row)?),
                None => Err(UserError::NotFound),
            }
        })
        .await
}

/// The caller.
#[get("/users/me", tags = ["users"])]
pub async fn read_me(
    Depends(caller): Depends<CurrentUser>,
    State(pool): State<DbPool>,
    State(cache): State<Cache>,
) -> Result<Json<UserResponse>, UserError> {
    cached_user(&cache, &pool, caller.id).await.map(Json)
}

/// Changes to a user: any subset of the creation fields. A field sent as
/// `null` is a 422, as is a field that breaks the creation rules.
#[derive(Debug, Deserialize, JsonSchema, Validate)]
#[schemars(transform = no_null_defaults)]
pub struct UserUpdate {
    /// New display name, 2 to 50 characters.
    #[garde(inner(length(chars, min = 2, max = 50)))]
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "String")]
    pub name: Option<String>,
    /// New e-mail address, unique among users.
    #[garde(inner(email))]
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "String")]
    pub email: Option<String>,
    /// New age, 18 to 120.
    #[garde(inner(range(min = 18, max = 120)))]
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "i64")]
    pub age: Option<i64>,
    /// New password, 8 to 128 characters.
    #[garde(inner(length(chars, min = 8, max = 128)))]
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "String")]
    pub password: Option<String>,
}

/// An absent field is simply not changed: drop the `default: null` the
/// schema would otherwise show for fields that refuse `null`.
fn no_null_defaults(schema: &mut schemars::Schema) {
    if let Some(props) = schema.get_mut("properties").and_then(|p| p.as_object_mut()) {
        for prop in props.values_mut() {
            if let Some(obj) = prop.as_object_mut()
                && obj.get("default") == Some(&serde_json::Value::Null)
            {
                obj.remove("default");
            }
        }
    }
}

/// A field that was sent: `null` is refused like any other wrong type.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// Update a user (only the fields sent).
///
/// A user may change only themselves unless they are an administrator.
#[patch("/users/{user_id}", tags = ["users"])]
pub async fn update_user(
    Depends(caller): Depends<CurrentUser>,
    Depends(db): Depends<Db>,
    State(cache): State<Cache>,
    Path(user_id): Path<i64>,
    Json(update): Json<UserUpdate>,
) -> Result<Json<UserResponse>, UserError> {
    if caller.id != user_id && !caller.is_admin {
        return Err(UserError::Forbidden);
    }
    let password_hash = match update.password {
        Some(p) => Some(hash_password(p).await?),
        None => None,
    };
    let result = db
        .fetch_optional(
            db.query(
                "UPDATE users SET name = COALESCE(?, name), email = COALESCE(?, email), \
                 age = COALESCE(?, age), password_hash = COALESCE(?, password_hash) \
                 WHERE id = ? RETURNING id, name, email, created_at",
            )
            .bind(update.name)
            .bind(update.email)
            .bind(update.age)
            .bind(password_hash)
            .bind(user_id),
        )
        .await;
    invalidate(&cache, user_id).await;
    match result {
        Ok(Some(row)) => Ok(Json(row_to_user(&row)?)),
        Ok(None) => Err(UserError::NotFound),
        Err(e) if e.is_unique_violation() => Err(UserError::EmailTaken),
        Err(e) => Err(e.into()),
    }
}

/// Delete a user (administrators only).
#[delete("/users/{user_id}", status = 204, tags = ["users"])]
pub async fn delete_user(
    Depends(_admin): Depends<Admin>,
    Depends(db): Depends<Db>,
    State(cache): State<Cache>,
    State(bus): State<Bus>,
    State(files): State<ferrapi_storage::files::FileStore>,
    Path(user_id): Path<i64>,
) -> Result<NoContent, UserError> {
    let done = db
        .execute(db.query("DELETE FROM users WHERE id = ?").bind(user_id))
        .await?;
    if done.rows_affected() > 0 {
        db.execute(
            db.query("DELETE FROM notifications WHERE user_id = ?")
                .bind(user_id),
        )
        .await?;
    }
    if done.rows_affected() == 0 {
        return Err(UserError::NotFound);
    }
    invalidate(&cache, user_id).await;
    crate::avatars::remove_avatar(&files, user_id).await;
    publish(&bus, UserEvent::Deleted { id: user_id }).await;
    Ok(NoContent)
}

/// Drops the cached user and principal (logged when the cache fails: the
/// entries then expire by their TTL).
async fn invalidate(cache: &Cache, user_id: i64) {
    for key in [user_key(user_id), crate::auth::principal_key(user_id)] {
        if let Err(e) = cache.delete(&key).await {
            tracing::warn!(error = %e, key, "cache invalidation failed");
        }
    }
}

/// Paging of the users list.
#[derive(Debug, Deserialize, JsonSchema, Validate)]
pub struct Page {
    /// How many users to skip.
    #[serde(default)]
    #[garde(range(min = 0))]
    pub skip: i64,
    /// How many users to return, 1 to 1000.
    #[serde(default = "default_limit")]
    #[garde(range(min = 1, max = 1000))]
    pub limit: i64,
}

fn default_limit() -> i64 {
    100
}

/// List users, ordered by id.
#[get("/users", tags = ["users"])]
pub async fn list_users(
    Depends(_caller): Depends<CurrentUser>,
    Depends(db): Depends<Db>,
    Query(page): Query<Page>,
) -> Result<Json<Vec<UserResponse>>, UserError> {
    let rows = db
        .fetch_all(
            db.query("SELECT id, name, email, created_at FROM users ORDER BY id LIMIT ? OFFSET ?")
                .bind(page.limit)
                .bind(page.skip),
        )
        .await?;
    let users = rows
        .iter()
        .map(row_to_user)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(users))
}

/// The v1 users router.
pub fn router() -> Router {
    Router::new()
        .prefix("/api/v1")
        .route(create_user)
        .route(list_users)
        .route(read_me)
        .route(read_user)
        .route(update_user)
        .route(delete_user)
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
