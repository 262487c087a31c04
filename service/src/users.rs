//! `/api/v1/users`: create and read users.

use crate::auth::{Admin, CurrentUser};
use crate::events::{UserEvent, publish};
use crate::model::{Timestamp, UserError, UserResponse, row_to_user};
use ferrapi::prelude::*;
use ferrapi_storage::bus::Bus;
use ferrapi_storage::cache::Cache;
use ferrapi_storage::db::{Db, DbPool};
use serde::Deserialize;
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

/// The cache key of a user.
pub fn user_key(id: i64) -> String {
    format!("user:{id}")
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
