//! [`Json`]: a JSON request body validated into a model, and a JSON response.

use super::{FromRequest, Rejection, Request, RequestContext};
use crate::openapi::{DescribeInput, OperationBuilder};
use crate::validation;
use ferrapi_core::extract::read_body;
use ferrapi_core::validation::model_attributes_type;
use http::header;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A JSON body validated into `T` — or, returned from a handler, a JSON
/// response with the route's declared status.
///
/// As a request body, `T` derives `Deserialize`, `JsonSchema` and
/// `garde::Validate`. The body is parsed strictly first (the fast path);
/// when that fails, every failing field is reported at once as FastAPI's
/// 422, with pydantic's lax coercion (`"30"` is accepted for an integer).
/// A body of another content type is a 422 `model_attributes_type`; an
/// empty body is a 422 `missing`; malformed JSON is a 422 `json_invalid`.
///
/// ```
/// use ferrapi::prelude::*;
///
/// #[derive(Deserialize, JsonSchema, Validate)]
/// struct Item {
///     #[garde(length(chars, min = 1))]
///     name: String,
///     #[garde(range(min = 0.0))]
///     price: f64,
/// }
///
/// #[post("/items", status = 201)]
/// async fn create(Json(item): Json<Item>) -> Json<serde_json::Value> {
///     Json(serde_json::json!({ "name": item.name }))
/// }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

/// True for `application/json` and `application/*+json`.
fn is_json(content_type: &str) -> bool {
    let mime = content_type.split(';').next().unwrap_or("").trim();
    let Some((ty, sub)) = mime.split_once('/') else {
        return false;
    };
    ty.eq_ignore_ascii_case("application")
        && (sub.eq_ignore_ascii_case("json") || sub.to_ascii_lowercase().ends_with("+json"))
}

impl<T> FromRequest for Json<T>
where
    T: DeserializeOwned + JsonSchema + ferrapi_core::validation::Validate + Send + 'static,
{
    async fn from_request(req: Request, cx: &RequestContext) -> Result<Self, Rejection> {
        // As FastAPI: no content type is read as JSON; another one is not JSON.
        let json = match req.headers().get(header::CONTENT_TYPE) {
            None => true,
            Some(v) => v.to_str().is_ok_and(is_json),
        };
        let bytes = read_body(req, cx).await?;
        if !json && !bytes.is_empty() {
            let input = Value::String(String::from_utf8_lossy(&bytes).into_owned());
            return Err(Rejection::Invalid(vec![model_attributes_type(input)]));
        }
        validation::parse_json::<T>(&bytes)
            .map(Json)
            .map_err(Rejection::Invalid)
    }
}

impl<T: JsonSchema> DescribeInput for Json<T> {
    fn describe(op: &mut OperationBuilder<'_>) {
        op.request_body::<T>("application/json", true);
        op.plan.buffers_body = true;
    }
}

#[cfg(test)]
mod tests {
    use super::is_json;

    #[test]
    fn json_content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("application/json; charset=utf-8"));
        assert!(is_json("Application/JSON"));
        assert!(is_json("application/problem+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/x-www-form-urlencoded"));
        assert!(!is_json("json"));
    }
}
