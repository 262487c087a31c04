//! Avatars: `PUT /api/v1/users/{user_id}/avatar` (multipart field `file`,
//! PNG or JPEG by the part's declared content type, at most 5 MiB whatever
//! `MAX_BODY_BYTES` says) streamed into the file store (`STORAGE_URL`), and
//! `GET` to read it back with its content type.

use crate::auth::CurrentUser;
use crate::model::UserError;
use ferrapi::ResponseError;
use ferrapi::extract::{Multipart, MultipartError, MultipartForm, Part};
use ferrapi::http::StatusCode;
use ferrapi::prelude::*;
use ferrapi::response::Response;
use ferrapi_storage::db::DbPool;
use ferrapi_storage::files::{FileError, FileStore};

/// The largest avatar.
pub const MAX_AVATAR_BYTES: u64 = 5 * 1024 * 1024;

/// The avatar upload form: one PNG or JPEG part named `file`.
pub struct AvatarUpload;

impl MultipartForm for AvatarUpload {
    const NAME: &'static str = "AvatarUpload";
    const PARTS: &'static [Part] = &[Part::file("file")
        .accept(&["image/png", "image/jpeg"])
        .max_size(MAX_AVATAR_BYTES)];
}

fn avatar_key(user_id: i64) -> String {
    format!("avatars/{user_id}")
}

/// A store error as the client should see it: the upload's own error (413,
/// 415, 400) when the part failed, 413 past the limit, else a logged 500.
fn store_error(e: FileError) -> ferrapi::Error {
    match e {
        FileError::TooLarge { .. } => {
            HttpError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large").into()
        }
        FileError::Body(inner) => match inner.downcast::<MultipartError>() {
            Ok(upload) => (*upload).into_error(),
            Err(other) => {
                tracing::warn!(error = %other, "avatar upload stream failed");
                HttpError::new(StatusCode::BAD_REQUEST, "The upload failed").into()
            }
        },
        other => {
            tracing::error!(error = %other, "avatar storage failed");
            HttpError::internal().into()
        }
    }
}

/// Set a user's avatar (PNG or JPEG, at most 5 MiB).
///
/// A user may set only their own avatar unless they are an administrator.
#[put(
    "/users/{user_id}/avatar",
    status = 204,
    tags = ["users"],
    responses(403 = "Not enough privileges", 404 = "User not found")
)]
pub async fn put_avatar(
    Depends(caller): Depends<CurrentUser>,
    State(pool): State<DbPool>,
    State(files): State<FileStore>,
    Path(user_id): Path<i64>,
    mut form: Multipart<AvatarUpload>,
) -> Result<NoContent, ferrapi::Error> {
    if caller.id != user_id && !caller.is_admin {
        return Err(UserError::Forbidden.into_error());
    }
    if !crate::model::user_exists(&pool, user_id)
        .await
        .map_err(ResponseError::into_error)?
    {
        return Err(UserError::NotFound.into_error());
    }
    // 415 (wrong declared type) or 422 (no `file` part) before anything is stored.
    let field = form.field("file").await?;
    let content_type = field
        .content_type()
        .unwrap_or("application/octet-stream")
        .to_owned();
    files
        .put(
            &avatar_key(user_id),
            &content_type,
            field.into_stream(),
            MAX_AVATAR_BYTES,
        )
        .await
        .map_err(store_error)?;
    Ok(NoContent)
}

/// A user's avatar: the bytes with their content type; 404 if none.
#[get(
    "/users/{user_id}/avatar",
    tags = ["users"],
    responses(200 = "The image (image/png or image/jpeg)", 404 = "Avatar not found")
)]
pub async fn get_avatar(
    Depends(_caller): Depends<CurrentUser>,
    State(files): State<FileStore>,
    Path(user_id): Path<i64>,
) -> Result<Response, ferrapi::Error> {
    match files.get(&avatar_key(user_id)).await {
        Ok(Some(file)) => Ok(file.into_response()),
        Ok(None) => Err(HttpError::not_found("Avatar not found").into()),
        Err(e) => Err(store_error(e)),
    }
}

/// Removes a deleted user's avatar (logged when it fails).
pub async fn remove_avatar(files: &FileStore, user_id: i64) {
    if let Err(e) = files.delete(&avatar_key(user_id)).await {
        tracing::warn!(error = %e, user_id, "removing the avatar failed");
    }
}

/// The avatars router.
pub fn router() -> Router {
    Router::new()
        .prefix("/api/v1")
        .route(put_avatar)
        .route(get_avatar)
}
