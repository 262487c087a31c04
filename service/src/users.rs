//! `/api/v1/users`: create and read users.

use crate::db_dep::{Db, Finished};
use chrono::{DateTime, SecondsFormat, Utc};
use ferrapi::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sqlx::Row;

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
#[derive(Debug, Clone, Serialize, JsonSchema)]
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
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Password hashing failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// The request's transaction was already finished.
    #[error(transparent)]
    Finished(#[from] Finished),
}

fn row_to_user(row: &sqlx::sqlite::SqliteRow) -> Result<UserResponse, sqlx::Error> {
    let created: String = row.try_get("created_at")?;
    let created_at = DateTime::parse_from_rfc3339(&created)
        .map(|t| Timestamp(t.with_timezone(&Utc)))
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok(UserResponse {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        created_at,
    })
}

/// Hashes a password with Argon2id on the blocking pool (it is CPU work).
async fn hash_password(password: String) -> Result<String, UserError> {
    tokio::task::spawn_blocking(move || {
        use argon2::password_hash::PasswordHasher;
        argon2::Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| UserError::Hash(e.to_string()))
    })
    .await
    .map_err(|e| UserError::Hash(e.to_string()))?
}

/// Create a user.
///
/// Answers 201 with the user and its `Location`; 409 when the e-mail address
/// is already registered.
#[post("/users", status = 201, tags = ["users"])]
pub async fn create_user(
    Depends(db): Depends<Db>,
    Json(user): Json<UserCreate>,
) -> Result<Created<UserResponse>, UserError> {
    let password_hash = match user.password {
        Some(p) => Some(hash_password(p).await?),
        None => None,
    };
    let created_at = Timestamp::now();
    let result = sqlx::query(
        "INSERT INTO users (name, email, age, password_hash, created_at) VALUES (?, ?, ?, ?, ?) \
         RETURNING id",
    )
    .bind(&user.name)
    .bind(&user.email)
    .bind(user.age)
    .bind(password_hash)
    .bind(created_at.to_rfc3339())
    .fetch_one(db.lock().await.conn()?)
    .await;
    let id: i64 = match result {
        Ok(row) => row.try_get("id")?,
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Err(UserError::EmailTaken);
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Created::new(
        format!("/api/v1/users/{id}"),
        UserResponse {
            id,
            name: user.name,
            email: user.email,
            created_at,
        },
    ))
}

/// Read a user.
#[get("/users/{user_id}", tags = ["users"])]
pub async fn read_user(
    Depends(db): Depends<Db>,
    Path(user_id): Path<i64>,
) -> Result<Json<UserResponse>, UserError> {
    let row = sqlx::query("SELECT id, name, email, created_at FROM users WHERE id = ?")
        .bind(user_id)
        .fetch_optional(db.lock().await.conn()?)
        .await?;
    match row {
        Some(row) => Ok(Json(row_to_user(&row)?)),
        None => Err(UserError::NotFound),
    }
}

/// Paging of the users list.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Page {
    /// How many users to skip.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub skip: i64,
    /// How many users to return, 1 to 1000.
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = 1000))]
    pub limit: i64,
}

fn default_limit() -> i64 {
    100
}

/// List users, ordered by id.
#[get("/users", tags = ["users"])]
pub async fn list_users(
    Depends(db): Depends<Db>,
    Query(page): Query<Page>,
) -> Result<Json<Vec<UserResponse>>, UserError> {
    let rows =
        sqlx::query("SELECT id, name, email, created_at FROM users ORDER BY id LIMIT ? OFFSET ?")
            .bind(page.limit)
            .bind(page.skip)
            .fetch_all(db.lock().await.conn()?)
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
        .route(read_user)
}
