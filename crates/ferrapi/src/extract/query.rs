//! [`Query`]: query string parameters validated into a model.

use super::{FromRequestParts, Rejection, RequestContext};
use crate::openapi::{DescribeInput, OperationBuilder, ParameterIn};
use crate::validation;
use ferrapi_core::validation::Source;
use http::request::Parts;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

/// Query parameters validated into the struct `T`: each field is one
/// parameter (a `Vec` field takes every repetition, any other field the
/// last), coerced from text as FastAPI does (`?limit=10` fills a `u32`),
/// with every failure reported at once under `loc` `["query", <name>]`.
/// Constraints come from the field's schema (`#[garde(range(...))]`,
/// `#[garde(range(...))]`), optional parameters are `Option` or
/// `#[serde(default)]` fields.
///
/// ```
/// use ferrapi::prelude::*;
///
/// #[derive(Deserialize, JsonSchema, Validate)]
/// struct Page {
///     #[serde(default)]
///     #[garde(range(min = 0))]
///     skip: u64,
///     #[serde(default = "default_limit")]
///     #[garde(range(min = 1, max = 1000))]
///     limit: u32,
/// }
/// fn default_limit() -> u32 { 100 }
///
/// #[get("/users")]
/// async fn list(Query(page): Query<Page>) -> Text {
///     Text(format!("{}..{}", page.skip, page.skip + u64::from(page.limit)))
/// }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T> FromRequestParts for Query<T>
where
    T: DeserializeOwned + JsonSchema + ferrapi_core::validation::Validate + Send + 'static,
{
    async fn from_request_parts(
        parts: &mut Parts,
        _cx: &RequestContext,
    ) -> Result<Self, Rejection> {
        let query = parts.uri.query().unwrap_or("");
        validation::from_pairs::<T, _>(Source::Query, form_urlencoded::parse(query.as_bytes()))
            .map(Query)
            .map_err(Rejection::Invalid)
    }
}

impl<T: JsonSchema> DescribeInput for Query<T> {
    fn describe(op: &mut OperationBuilder<'_>) {
        op.parameters_from::<T>(ParameterIn::Query, str::to_owned);
    }
}
