//! `/api/v2/users`: keyset pagination.
//!
//! The cursor is opaque to clients: it is the last id of the page, encoded
//! as `u<id>`. Paging by `id > cursor` means that deleting a row already
//! returned never shifts the next page (unlike `OFFSET`).

use crate::auth::CurrentUser;
use crate::model::{Timestamp, UserError};
use ferrapi::prelude::*;
use ferrapi::{ErrorItem, Loc, Source, ValidationErrors};
use ferrapi_storage::db::Db;
use sqlx::Row;

/// Paging of the v2 list.
#[derive(Debug, Deserialize, JsonSchema, Validate)]
pub struct KeysetPage {
    /// How many users to return, 1 to 1000.
    #[serde(default = "default_limit")]
    #[garde(range(min = 1, max = 1000))]
    pub limit: i64,
    /// Where to continue: `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

fn default_limit() -> i64 {
    50
}

/// A user in the v2 list.
#[derive(Debug, Serialize, JsonSchema)]
pub struct UserV2 {
    /// Identifier.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// E-mail address.
    pub email: String,
    /// Age in years.
    pub age: i64,
    /// Creation time, UTC, whole seconds, `Z` suffix.
    pub created_at: Timestamp,
}

/// One page of users.
#[derive(Debug, Serialize, JsonSchema)]
pub struct UserPage {
    /// The users, ordered by id.
    pub items: Vec<UserV2>,
    /// The cursor of the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

fn decode_cursor(cursor: &str) -> Option<i64> {
    let digits = cursor.strip_prefix('u')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<i64>().ok()
}

/// List users, keyset-paginated.
#[get("/users", tags = ["users"], responses(422 = "Validation Error"))]
pub async fn list_users_v2(
    Depends(_caller): Depends<CurrentUser>,
    Depends(db): Depends<Db>,
    Query(page): Query<KeysetPage>,
) -> Result<Json<UserPage>, ferrapi::Error> {
    let after = match page.cursor.as_deref() {
        None | Some("") => 0,
        Some(c) => decode_cursor(c).ok_or_else(|| {
            ValidationErrors(vec![
                ErrorItem::new(
                    "value_error",
                    Loc::source(Source::Query).join("cursor"),
                    "Value error, invalid cursor",
                    serde_json::Value::String(c.to_owned()),
                )
                .with_ctx(serde_json::json!({"error": "invalid cursor"})),
            ])
        })?,
    };
    fetch_page(&db, after, page.limit)
        .await
        .map(Json)
        .map_err(ferrapi::ResponseError::into_error)
}

async fn fetch_page(db: &Db, after: i64, limit: i64) -> Result<UserPage, UserError> {
    // One extra row tells whether there is a next page.
    let rows = db
        .fetch_all(
            db.query(
                "SELECT id, name, email, age, created_at FROM users WHERE id > ? ORDER BY id LIMIT ?",
            )
            .bind(after)
            .bind(limit + 1),
        )
        .await?;
    let more = rows.len() as i64 > limit;
    let mut items = Vec::with_capacity(rows.len());
    for row in rows.iter().take(usize::try_from(limit).unwrap_or(0)) {
        let created: String = row.try_get("created_at")?;
        let created_at = Timestamp::parse(&created)?;
        items.push(UserV2 {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            email: row.try_get("email")?,
            age: row.try_get("age")?,
            created_at,
        });
    }
    let next_cursor = if more {
        items.last().map(|u| format!("u{}", u.id))
    } else {
        None
    };
    Ok(UserPage { items, next_cursor })
}

/// The v2 router.
pub fn router() -> Router {
    Router::new().prefix("/api/v2").route(list_users_v2)
}
