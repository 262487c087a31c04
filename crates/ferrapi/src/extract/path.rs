//! [`Path`]: path template variables, typed and validated.

use super::{FromRequestParts, Rejection, RequestContext};
use crate::openapi::{DescribeInput, OperationBuilder, ParameterIn, PathShape};
use crate::routing::PathParams;
use crate::validation::{
    self, PairsDeserializer, ParamDeserializer, SeqParams, Shape, TypeSchema, type_schema,
};
use ferrapi_core::HttpError;
use ferrapi_core::validation::{ErrorItem, Loc, LocItem, Source, params_to_value};
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
/// #[derive(Deserialize, JsonSchema, Validate)]
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
    T: DeserializeOwned + JsonSchema + ferrapi_core::validation::Validate + Send + 'static,
{
    async fn from_request_parts(parts: &mut Parts, cx: &RequestContext) -> Result<Self, Rejection> {
        let ts = type_schema::<T>();
        if ts.plain
            && let Some(value) = strict::<T>(parts, cx, ts.shape)
            && ferrapi_core::validation::Validate::validate(&value).is_ok()
        {
            return Ok(Path(value));
        }
        slow(parts, cx, ts)
    }
}

/// The fast path, for a type without constraints beyond its Rust types: the
/// values parsed strictly by serde. `None`: the schema walk decides.
fn strict<T: DeserializeOwned>(parts: &Parts, cx: &RequestContext, shape: Shape) -> Option<T> {
    let params = parts.extensions.get::<PathParams>()?;
    let path = parts.uri.path();
    match shape {
        Shape::Other => {
            let raw = params.values(path).next()?;
            let value = percent_decode(raw)?;
            T::deserialize(ParamDeserializer(&value)).ok()
        }
        Shape::Tuple => {
            let values: Vec<Cow<'_, str>> = params
                .values(path)
                .map(percent_decode)
                .collect::<Option<_>>()?;
            T::deserialize(SeqParams(values.iter().map(AsRef::as_ref))).ok()
        }
        Shape::Object => {
            let values: Vec<Cow<'_, str>> = params
                .values(path)
                .map(percent_decode)
                .collect::<Option<_>>()?;
            T::deserialize(PairsDeserializer {
                pairs: cx
                    .path_variables()
                    .iter()
                    .map(String::as_str)
                    .zip(values.iter().map(AsRef::as_ref)),
                value: None,
            })
            .ok()
        }
    }
}

/// The schema walk: coerces as pydantic does and names every failure after
/// its template variable.
#[cold]
fn slow<T: DeserializeOwned + ferrapi_core::validation::Validate>(
    parts: &Parts,
    cx: &RequestContext,
    ts: &TypeSchema,
) -> Result<Path<T>, Rejection> {
    let raw = match raw_params(parts, cx) {
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
    let schema = &ts.schema;
    let is_tuple = ts.shape == Shape::Tuple;
    if ts.shape == Shape::Object {
        let value = params_to_value(schema, raw.into_iter().map(|(k, v)| (Cow::Borrowed(k), v)));
        return validation::from_value::<T>(schema, Source::Path, value)
            .map(Path)
            .map_err(Rejection::Invalid);
    }
    let names: Vec<&str> = cx.path_variables().iter().map(String::as_str).collect();
    let value = if is_tuple {
        Value::Array(
            raw.into_iter()
                .map(|(_, v)| Value::String(v.into_owned()))
                .collect(),
        )
    } else {
        match raw.into_iter().next() {
            Some((_, v)) => Value::String(v.into_owned()),
            None => {
                return Err(HttpError::internal().into());
            }
        }
    };
    let mut result = validation::from_value::<T>(schema, Source::Path, value);
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

/// The matched path parameters, named after the route's template variables
/// and percent-decoded; `Err(name)` when one is not UTF-8 once decoded.
/// Empty when the request was not routed to a template with variables.
fn raw_params<'a>(
    parts: &'a Parts,
    cx: &'a RequestContext,
) -> Result<Vec<(&'a str, Cow<'a, str>)>, String> {
    let Some(params) = parts.extensions.get::<PathParams>() else {
        return Ok(Vec::new());
    };
    let path = parts.uri.path();
    let mut out = Vec::with_capacity(cx.path_variables().len());
    for (name, raw) in cx.path_variables().iter().zip(params.values(path)) {
        match percent_decode(raw) {
            Some(value) => out.push((name.as_str(), value)),
            None => return Err(name.clone()),
        }
    }
    Ok(out)
}

/// Decodes `%XX` escapes (a `%` not followed by two hex digits stays as it
/// is, as axum decodes); `None` when the result is not UTF-8.
pub(crate) fn percent_decode(raw: &str) -> Option<Cow<'_, str>> {
    if !raw.contains('%') {
        return Some(Cow::Borrowed(raw));
    }
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

impl<T: JsonSchema> DescribeInput for Path<T> {
    fn describe(op: &mut OperationBuilder<'_>) {
        let root = ferrapi_openapi::validation_schema::<T>();
        if let Some(props) = root.get("properties").and_then(Value::as_object) {
            op.plan.path_shape = Some(PathShape::Named(props.keys().cloned().collect()));
            op.parameters_from::<T>(ParameterIn::Path, str::to_owned);
        } else if let Some(items) = root.get("prefixItems").and_then(Value::as_array) {
            op.plan.path_shape = Some(PathShape::Tuple(items.len()));
            let vars = op.path_variables.clone();
            for (name, schema) in vars.iter().zip(items) {
                op.parameter(name, ParameterIn::Path, true, schema.clone());
            }
        } else {
            op.plan.path_shape = Some(PathShape::Single);
            let schema = op.registry.schema_for::<T>();
            if let Some(name) = op.path_variables.first().cloned() {
                op.parameter(&name, ParameterIn::Path, true, schema);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("plain").as_deref(), Some("plain"));
        assert_eq!(percent_decode("a%20b%2Fc").as_deref(), Some("a b/c"));
        assert_eq!(percent_decode("Zo%C3%AB").as_deref(), Some("Zoë"));
        assert_eq!(percent_decode("100%").as_deref(), Some("100%"));
        assert_eq!(percent_decode("%zz%4").as_deref(), Some("%zz%4"));
        assert_eq!(percent_decode("%FF"), None);
    }
}
