//! [`Form`]: a form body validated into a model (the raw-body extractors
//! and the body reader are in `ferrapi-core`).

use super::{FromRequest, Rejection, Request, RequestContext};
use crate::openapi::{DescribeInput, OperationBuilder};
use crate::validation;
use ferrapi_core::extract::read_body;
use ferrapi_core::validation::Source;
use http::header;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

/// A form body (`application/x-www-form-urlencoded`) validated into `T`,
/// as FastAPI's `Form()` fields: lax coercion, every error at once, `loc`
/// starting with `body`.
///
/// ```
/// use ferrapi::prelude::*;
///
/// #[derive(Deserialize, JsonSchema, Validate)]
/// struct Login {
///     username: String,
///     password: String,
/// }
///
/// #[post("/token")]
/// async fn token(Form(login): Form<Login>) -> Text {
///     Text(login.username)
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Form<T>(pub T);

impl<T> FromRequest for Form<T>
where
    T: DeserializeOwned + JsonSchema + ferrapi_core::validation::Validate + Send + 'static,
{
    async fn from_request(req: Request, cx: &RequestContext) -> Result<Self, Rejection> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                ct.split(';').next().is_some_and(|m| {
                    m.trim()
                        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
                })
            });
        let bytes = read_body(req, cx).await?;
        // Another content type carries no form fields: each required field is
        // then reported missing, as FastAPI does.
        let body: &[u8] = if is_form { &bytes } else { &[] };
        validation::from_pairs::<T, _>(Source::Body, form_urlencoded::parse(body))
            .map(Form)
            .map_err(Rejection::Invalid)
    }
}

impl<T: JsonSchema> DescribeInput for Form<T> {
    fn describe(op: &mut OperationBuilder<'_>) {
        op.request_body::<T>("application/x-www-form-urlencoded", true);
        op.plan.buffers_body = true;
        let root = ferrapi_openapi::validation_schema::<T>();
        if let Some(props) = root
            .get("properties")
            .and_then(serde_json::Value::as_object)
        {
            for (name, schema) in props {
                // Resolved against the standalone schema's `$defs`.
                let schema = match schema.get("$ref").and_then(serde_json::Value::as_str) {
                    Some(r) => r
                        .strip_prefix("#/$defs/")
                        .and_then(|n| root.get("$defs").and_then(|d| d.get(n)))
                        .unwrap_or(schema),
                    None => schema,
                };
                if let Some(p) =
                    crate::openapi::not_flat(ferrapi_openapi::ParameterIn::Query, name, schema)
                {
                    let p = p.replacen("query parameter", "form field", 1);
                    if !op.problems.contains(&p) {
                        op.problems.push(p);
                    }
                }
            }
        }
    }
}
