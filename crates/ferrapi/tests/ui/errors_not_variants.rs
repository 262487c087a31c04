use ferrapi::ApiError;
use ferrapi::prelude::*;

#[derive(Debug, thiserror::Error, ApiError)]
enum UserError {
    #[error("User not found")]
    #[api(status = 404)]
    NotFound,
}

/// A name that is no variant of the error type.
#[get("/a", errors(NotFund))]
async fn misspelled() -> Result<Json<i64>, UserError> {
    Err(UserError::NotFound)
}

/// `errors(...)` without a `Result`.
#[get("/b", errors(NotFound))]
async fn not_a_result() -> Json<i64> {
    Json(1)
}

fn main() {}
