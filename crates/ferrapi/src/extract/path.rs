//! [`Path`]: path template variables, typed and validated.

use super::{FromRequestParts, Rejection, RequestContext};
use crate::openapi::{DescribeInput, OperationBuilder, ParameterIn, PathShape};
use crate::validation::{self, schema_of};
use axum::extract::RawPathParams;
use ferrapi_core::HttpError;
use ferrapi_core::validation::{ErrorItem, Loc, LocItem, Source};
use http::request::Parts;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::borrow::Cow;

/// Path template variables validated into `T`: a scalar for a template with
/// one variable (`Path<i64>`), a tuple for several in template order
/// (`Path<(i64, String)>`), or a struct whose fields are named as the
/// variables. Registration checks that the template and `T` agree.
///
/// A value that does not fit is a 422 with `loc` `["path", <variable>]`.
///
/// ```
/// use ferrapi::prelude::*;
///
/// #[get("/users/{user_id}")]
/// async fn read_user(Path(user_id): Path<i64>) -> Text {
///     Text(format!("user {user_id}"))
/// }
///
/// #[derive(Deserialize, JsonSchema)]
/// struct ItemPath {
///     user_id: i64,
///     item: String,
/// }
///
/// #[get("/users/{user_id}/items/{item}")]
/// async fn read_item(Path(p): Path<ItemPath>) -> Text {
///     Text(format!("{} of {}", p.item, p.user_id))
/// }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Path<T>(pub T);

impl<T> FromRequestParts for Path<T>
where
    T: DeserializeOwned + JsonSchema + Send + 'static,
{
    async fn from_request_parts(parts: &mut Parts, cx: &RequestContext) -> Result<Self, Rejection> {
        let raw = match raw_params(parts) {
            Ok(raw) => raw,
            Err(key) => {
                // Not valid UTF-8 once percent-decoded.
                let loc = Loc::source(Source::Path).join(key);
                return Err(Rejection::Invalid(vec![ErrorItem::new(
                    "string_unicode",
                    loc,
                    "Input should be a valid string, unable to parse raw data as a unicode string",
                    Value::Null,
                )]));
            }
        };
        let raw: Vec<(&str, &str)> = raw.as_ref().map(|r| r.iter().collect()).unwrap_or_default();
        let schema = schema_of::<T>();
        let root = schema.root();
        let is_object = root.get("type").and_then(Value::as_str) == Some("object")
            || root.get("properties").is_some();
        let is_tuple = root.get("prefixItems").is_some();
        if is_object {
            return validation::from_pairs::<T, _>(
                Source::Path,
                raw.iter()
                    .map(|(k, v)| (Cow::Borrowed(*k), Cow::Borrowed(*v))),
            )
            .map(Path)
            .map_err(Rejection::Invalid);
        }
        let names: Vec<&str> = cx.path_variables().iter().map(String::as_str).collect();
        let value = if is_tuple {
            Value::Array(
                raw.iter()
                    .map(|(_, v)| Value::String((*v).to_owned()))
                    .collect(),
            )
        } else {
            match raw.first() {
                Some((_, v)) => Value::String((*v).to_owned()),
                None => {
                    return Err(HttpError::internal().into());
                }
            }
        };
        let mut result = validation::from_value::<T>(&schema, Source::Path, value);
        if let Err(errors) = &mut result {
            // Name each error after its template variable, as FastAPI does.
            let single = names.first().map(|s| (*s).to_owned());
            for e in errors.iter_mut() {
                match e.loc.0.get(1) {
                    Some(LocItem::Index(i)) if is_tuple => {
                        if let Some(name) = names.get(*i) {
                            e.loc.0[1] = LocItem::Key(Cow::Owned((*name).to_owned()));
                        }
                    }
                    None if !is_tuple => {
                        if let Some(name) = &single {
                            e.loc.0.push(LocItem::Key(Cow::Owned(name.clone())));
                        }
                    }
                    _ => {}
                }
            }
        }
        result.map(Path).map_err(Rejection::Invalid)
    }
}

/// axum's matched path parameters: `Ok(None)` when the route has none,
/// `Err(name)` when one is not UTF-8 once percent-decoded.
fn raw_params(parts: &mut Parts) -> Result<Option<RawPathParams>, String> {
    use axum::extract::FromRequestParts as _;
    use axum::extract::rejection::RawPathParamsRejection;
    use futures_util::FutureExt as _;
    // axum's implementation never awaits: it is ready at the first poll.
    match RawPathParams::from_request_parts(parts, &()).now_or_never() {
        Some(Ok(raw)) => Ok(Some(raw)),
        Some(Err(RawPathParamsRejection::InvalidUtf8InPathParam(e))) => Err(e
            .body_text()
            .trim_start_matches("Invalid UTF-8 in `")
            .trim_end_matches('`')
            .to_owned()),
        _ => Ok(None),
    }
}

impl<T: JsonSchema> DescribeInput for Path<T> {
    fn describe(op: &mut OperationBuilder<'_>) {
        let root = ferrapi_openapi::validation_schema::<T>();
        if let Some(props) = root.get("properties").and_then(Value::as_object) {
            op.path_shape = Some(PathShape::Named(props.keys().cloned().collect()));
            op.parameters_from::<T>(ParameterIn::Path, str::to_owned);
        } else if let Some(items) = root.get("prefixItems").and_then(Value::as_array) {
            op.path_shape = Some(PathShape::Tuple(items.len()));
            let vars = op.path_variables.clone();
            for (name, schema) in vars.iter().zip(items) {
                op.parameter(name, ParameterIn::Path, true, schema.clone());
            }
        } else {
            op.path_shape = Some(PathShape::Single);
            let schema = op.registry.schema_for::<T>();
            if let Some(name) = op.path_variables.first().cloned() {
                op.parameter(&name, ParameterIn::Path, true, schema);
            }
        }
    }
}
