//! [`Header`]: request headers validated into a model.

use super::{FromRequestParts, Rejection, RequestContext};
use crate::openapi::{DescribeInput, OperationBuilder, ParameterIn};
use crate::validation::{self, schema_of};
use ferrapi_core::validation::{LocItem, Source};
use http::request::Parts;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use std::borrow::Cow;

/// The header a field reads: underscores become hyphens, as FastAPI's
/// `Header()` does (`user_agent` reads `user-agent`; names are
/// case-insensitive).
pub(crate) fn header_name(field: &str) -> String {
    field.replace('_', "-").to_ascii_lowercase()
}

/// Request headers validated into the struct `T`, one field per header
/// (`x_token` reads `X-Token`; a `Vec` field takes every occurrence). Errors
/// are reported under `loc` `["header", "x-token"]`.
///
/// ```
/// use ferrapi::prelude::*;
///
/// #[derive(Deserialize, JsonSchema, Validate)]
/// struct Headers {
///     x_token: String,
///     user_agent: Option<String>,
/// }
///
/// #[get("/items")]
/// async fn items(Header(h): Header<Headers>) -> Text {
///     Text(h.x_token)
/// }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Header<T>(pub T);

impl<T> FromRequestParts for Header<T>
where
    T: DeserializeOwned + JsonSchema + ferrapi_core::validation::Validate + Send + 'static,
{
    async fn from_request_parts(
        parts: &mut Parts,
        _cx: &RequestContext,
    ) -> Result<Self, Rejection> {
        let schema = schema_of::<T>();
        let mut pairs = Vec::new();
        for field in schema.property_names() {
            for value in parts.headers.get_all(header_name(field).as_str()) {
                // Header values that are not visible ASCII are read as Latin-1,
                // as Starlette does.
                let text = match value.to_str() {
                    Ok(s) => Cow::Borrowed(s),
                    Err(_) => Cow::Owned(value.as_bytes().iter().map(|&b| b as char).collect()),
                };
                pairs.push((Cow::Borrowed(field), text));
            }
        }
        let value = ferrapi_core::validation::params_to_value(schema, pairs);
        let mut result = validation::from_value::<T>(schema, Source::Header, value);
        if let Err(errors) = &mut result {
            validation::rename_loc(errors, |item| match item {
                LocItem::Key(k) => Some(header_name(k)),
                LocItem::Index(_) => None,
            });
        }
        result.map(Header).map_err(Rejection::Invalid)
    }
}

impl<T: JsonSchema> DescribeInput for Header<T> {
    fn describe(op: &mut OperationBuilder<'_>) {
        op.parameters_from::<T>(ParameterIn::Header, header_name);
    }
}
