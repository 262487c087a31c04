//! The validation pipeline shared by the extractors.
//!
//! Fast path first: a strict serde parse (and garde's check, for JSON
//! bodies) costs what a hand-written axum handler pays. Only when it fails
//! does the slow path run: the input is parsed to a JSON value and walked
//! against the type's JSON Schema ([`ferrapi_core::validation::validate`]),
//! which coerces lax inputs as pydantic does and reports every failure in
//! FastAPI's words. Parameters (path, query, header, cookie, form) arrive as
//! strings and always take the schema walk, which is what coerces them.

use ferrapi_core::validation::{
    self, ErrorItem, Loc, LocItem, MissingInput, Schema, Source, from_garde, json_invalid,
    params_to_value,
};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::any::TypeId;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

static SCHEMAS: LazyLock<RwLock<HashMap<TypeId, Arc<Schema>>>> =
    LazyLock::new(|| RwLock::new(HashMap::new()));

/// The validation schema of `T`, computed once per type.
pub(crate) fn schema_of<T: JsonSchema + 'static>() -> Arc<Schema> {
    let id = TypeId::of::<T>();
    if let Some(s) = SCHEMAS
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .get(&id)
    {
        return s.clone();
    }
    let schema = Arc::new(Schema::new(ferrapi_openapi::validation_schema::<T>()));
    SCHEMAS
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .entry(id)
        .or_insert(schema)
        .clone()
}

/// When the schema walk found nothing but serde still refused the value
/// (a shape the schema does not express), one error says what serde said.
fn serde_fallback(loc: Loc, err: &serde_json::Error, input: Value) -> ErrorItem {
    let msg = err.to_string();
    ErrorItem::new("value_error", loc, format!("Value error, {msg}"), input)
        .with_ctx(serde_json::json!({ "error": msg }))
}

/// Parses and validates a JSON body.
pub(crate) fn parse_json<T>(bytes: &[u8]) -> Result<T, Vec<ErrorItem>>
where
    T: DeserializeOwned + JsonSchema + garde::Validate + 'static,
    T::Context: Default,
{
    if bytes.is_empty() {
        return Err(vec![validation::missing_body()]);
    }
    let report = match serde_json::from_slice::<T>(bytes) {
        Ok(value) => match value.validate() {
            Ok(()) => return Ok(value),
            Err(report) => Some(report),
        },
        Err(_) => None,
    };
    slow_json::<T>(bytes, report)
}

#[cold]
fn slow_json<T>(bytes: &[u8], report: Option<garde::Report>) -> Result<T, Vec<ErrorItem>>
where
    T: DeserializeOwned + JsonSchema + garde::Validate + 'static,
    T::Context: Default,
{
    let mut value: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => return Err(vec![json_invalid(bytes, &e)]),
    };
    let schema = schema_of::<T>();
    let loc = Loc::source(Source::Body);
    let original = value.clone();
    let mut errors = Vec::new();
    validation::validate(&schema, &mut value, &loc, MissingInput::Parent, &mut errors);
    if let Some(report) = report {
        from_garde(&report, &schema, &original, &loc, &mut errors);
        return Err(errors);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let parsed: T = match serde_json::from_value(value) {
        Ok(v) => v,
        Err(e) => return Err(vec![serde_fallback(loc, &e, original)]),
    };
    match parsed.validate() {
        Ok(()) => Ok(parsed),
        Err(report) => {
            from_garde(&report, &schema, &original, &loc, &mut errors);
            Err(errors)
        }
    }
}

/// Validates string parameters (query, form, headers, cookies) into `T`.
pub(crate) fn from_pairs<'a, T, I>(source: Source, pairs: I) -> Result<T, Vec<ErrorItem>>
where
    T: DeserializeOwned + JsonSchema + 'static,
    I: IntoIterator<Item = (Cow<'a, str>, Cow<'a, str>)>,
{
    let schema = schema_of::<T>();
    let value = params_to_value(&schema, pairs);
    from_value(&schema, source, value)
}

/// Validates an already assembled value (strings to be coerced) into `T`.
pub(crate) fn from_value<T: DeserializeOwned>(
    schema: &Schema,
    source: Source,
    mut value: Value,
) -> Result<T, Vec<ErrorItem>> {
    let loc = Loc::source(source);
    let mut errors = Vec::new();
    validation::validate(schema, &mut value, &loc, MissingInput::Null, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    // Deserialize from a borrow: the value is only needed again on failure.
    T::deserialize(&value).map_err(|e| vec![serde_fallback(loc, &e, value)])
}

/// Renames the element after the source in each error's `loc`
/// (`["path", 0]` → `["path", "user_id"]`, `["header", "user_agent"]` →
/// `["header", "user-agent"]`).
pub(crate) fn rename_loc(errors: &mut [ErrorItem], rename: impl Fn(&LocItem) -> Option<String>) {
    for e in errors {
        if let Some(item) = e.loc.0.get_mut(1)
            && let Some(new) = rename(item)
        {
            *item = LocItem::Key(Cow::Owned(new));
        }
    }
}
