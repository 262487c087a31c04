//! String pairs (query string, form body, headers, cookies) to the JSON
//! object that [`validate`](super::validate) checks, guided by the schema.

use super::schema::{Keyword, Schema};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// Builds the JSON object to validate from string pairs (query string, form
/// body, headers, cookies), guided by the schema: a property whose schema is
/// an array collects every value in order; any other property takes the
/// last value (Starlette's behaviour). Keys that are not properties are
/// dropped. Values stay strings: [`validate`](super::validate) coerces them.
///
/// ```
/// use ferrapi_core::validation::{params_to_value, Schema};
/// use serde_json::json;
/// use std::borrow::Cow;
///
/// let schema = Schema::new(json!({
///     "type": "object",
///     "properties": {
///         "tag": {"type": "array", "items": {"type": "string"}},
///         "limit": {"type": "integer"}
///     }
/// }));
/// let pairs = [("tag", "a"), ("limit", "5"), ("tag", "b"), ("limit", "7"), ("other", "x")]
///     .map(|(k, v)| (Cow::Borrowed(k), Cow::Borrowed(v)));
/// assert_eq!(
///     params_to_value(&schema, pairs),
///     json!({"tag": ["a", "b"], "limit": "7"})
/// );
/// ```
pub fn params_to_value<'a, I>(schema: &Schema, pairs: I) -> Value
where
    I: IntoIterator<Item = (Cow<'a, str>, Cow<'a, str>)>,
{
    let mut out = Map::new();
    let Some(props) = schema.properties(schema.root()) else {
        return Value::Object(out);
    };
    for (key, value) in pairs {
        let Some(prop) = props.get(key.as_ref()) else {
            continue;
        };
        let value = Value::String(value.into_owned());
        if is_array(schema, prop) {
            match out.get_mut(key.as_ref()) {
                Some(Value::Array(items)) => items.push(value),
                _ => {
                    out.insert(key.into_owned(), Value::Array(vec![value]));
                }
            }
        } else {
            out.insert(key.into_owned(), value);
        }
    }
    Value::Object(out)
}

/// Whether a property's schema is an array (also through `$ref` and
/// `Option<Vec<T>>`).
fn is_array(schema: &Schema, prop: &Value) -> bool {
    let node = schema.resolve_nullable(prop);
    match node.kw("type") {
        Some(Value::String(t)) => t == "array",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "array"),
        _ => node.kw("items").is_some() || node.kw("prefixItems").is_some(),
    }
}
