//! The validation pipeline of the extractors: how the bytes or strings of a
//! request become a `T`, or every error in FastAPI's words.
//!
//! Fast path first; the slow path runs only when it fails.
//!
//! - JSON bodies ([`parse_json`]): a strict serde parse and garde's check
//!   cost what a hand-written axum handler pays. When either fails, the body
//!   is parsed to a JSON value and walked against the type's JSON Schema
//!   ([`validate`](super::validate)), which coerces lax inputs as pydantic
//!   does and reports every failure.
//! - Parameters arrive as strings. For a type without constraints beyond
//!   its Rust types ([`Schema::is_plain`]), a strict serde parse of the
//!   strings ([`ParamDeserializer`], [`PairsDeserializer`], [`SeqParams`]:
//!   canonical numbers, `true`/`false`, each key once) followed by garde's
//!   check is the answer when both succeed: [`from_pairs`] does this for
//!   query, cookie and form parameters read into a struct, the `Path`
//!   extractor for path variables (a scalar, a tuple or a struct). Anything
//!   else (a constrained type, a lax value such as `?flag=yes` or `007`, a
//!   repeated key, a failed check) takes the schema walk ([`from_value`]),
//!   which is what coerces strings. Headers always take the walk.
//!
//! The items are public for the `ferrapi` crate's extractors, not for
//! applications: the module is hidden from the documentation.

use crate::validation::{
    self, ErrorItem, Loc, LocItem, MissingInput, Schema, Source, Validate, from_garde_with,
    json_invalid, params_to_value,
};
use schemars::JsonSchema;
use serde::de::{self as de, DeserializeOwned, IntoDeserializer, Visitor};
use serde_json::Value;
use std::any::TypeId;
use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{LazyLock, RwLock};

/// What the extractors know of a type, computed once per type: its
/// validation schema, its shape, and whether serde alone decides it.
pub struct TypeSchema {
    /// The validation schema (`ferrapi_openapi::validation_schema`).
    pub schema: Schema,
    /// The shape of its root.
    pub shape: Shape,
    /// See [`Schema::is_plain`]: a strict serde parse that succeeds is the
    /// answer, and the schema is walked only when it fails.
    pub plain: bool,
}

/// The shape of a type's schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// An object with properties (a struct).
    Object,
    /// A tuple (`prefixItems`).
    Tuple,
    /// Anything else (a scalar, a list).
    Other,
}

/// `TypeId`s are hashes already: maps keyed by them use them as they are.
#[derive(Default)]
pub struct TypeIdHasher(u64);

impl Hasher for TypeIdHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
}

type SchemaMap = HashMap<TypeId, &'static TypeSchema, BuildHasherDefault<TypeIdHasher>>;

/// One entry per type for the process's life (types are few and their
/// schemas are needed until exit): leaked, so a lookup hands out a plain
/// reference.
static SCHEMAS: LazyLock<RwLock<SchemaMap>> = LazyLock::new(Default::default);

/// The schema of `T` and what follows from it, computed once per type.
pub fn type_schema<T: JsonSchema + 'static>() -> &'static TypeSchema {
    let id = TypeId::of::<T>();
    if let Some(s) = SCHEMAS
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .get(&id)
    {
        return s;
    }
    let schema = Schema::new(ferrapi_openapi::validation_schema::<T>());
    let root = schema.root();
    let shape = if root.get("type").and_then(Value::as_str) == Some("object")
        || root.get("properties").is_some()
    {
        Shape::Object
    } else if root.get("prefixItems").is_some() {
        Shape::Tuple
    } else {
        Shape::Other
    };
    let plain = schema.is_plain();
    SCHEMAS
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .entry(id)
        .or_insert_with(|| {
            Box::leak(Box::new(TypeSchema {
                schema,
                shape,
                plain,
            }))
        })
}

/// The validation schema of `T`, computed once per type.
pub fn schema_of<T: JsonSchema + 'static>() -> &'static Schema {
    &type_schema::<T>().schema
}

/// When the schema walk found nothing but serde still refused the value
/// (a shape the schema does not express), one error says what serde said.
fn serde_fallback(loc: Loc, err: &serde_json::Error, input: Value) -> ErrorItem {
    let msg = err.to_string();
    ErrorItem::new("value_error", loc, format!("Value error, {msg}"), input)
        .with_ctx(serde_json::json!({ "error": msg }))
}

/// Parses and validates a JSON body.
pub fn parse_json<T>(bytes: &[u8]) -> Result<T, Vec<ErrorItem>>
where
    T: DeserializeOwned + JsonSchema + Validate + 'static,
{
    if bytes.is_empty() {
        return Err(vec![validation::missing_body()]);
    }
    // serde's derived structs also accept a JSON array, field by field in
    // order; pydantic refuses it (`model_attributes_type`). A body that
    // starts with `[` for an object type goes to the schema walk.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
        && type_schema::<T>().shape == Shape::Object
    {
        return slow_json::<T>(bytes, None);
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
    T: DeserializeOwned + JsonSchema + Validate + 'static,
{
    let mut value: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => return Err(vec![json_invalid(bytes, &e)]),
    };
    let schema = schema_of::<T>();
    let loc = Loc::source(Source::Body);
    // The body as received (the walk coerces `value` in place), for the
    // inputs of errors found after the walk: parsed again on those rare
    // paths rather than copied on every failure.
    let original = || serde_json::from_slice::<Value>(bytes).unwrap_or(Value::Null);
    let mut errors = Vec::new();
    validation::validate(schema, &mut value, &loc, MissingInput::Parent, &mut errors);
    if let Some(report) = report {
        from_garde_with(&report, schema, &loc, &mut errors, original);
        if !errors.is_empty() {
            return Err(errors);
        }
        // The check failed only on fields that were not sent (defaults):
        // pydantic does not validate defaults either.
    }
    if !errors.is_empty() {
        // Every failure at once: the fields that did parse still have
        // their own rules checked (pydantic runs a field's validators
        // whenever that field parsed).
        field_rules::<T>(schema, &value, &loc, &mut errors, &original);
        return Err(errors);
    }
    let parsed: T = match T::deserialize(&value) {
        Ok(v) => v,
        Err(e) => return Err(vec![serde_fallback(loc, &e, original())]),
    };
    match parsed.validate() {
        Ok(()) => Ok(parsed),
        Err(report) => {
            from_garde_with(&report, schema, &loc, &mut errors, original);
            if errors.is_empty() {
                Ok(parsed)
            } else {
                Err(errors)
            }
        }
    }
}

/// The rules of the fields of `value` (already coerced by the walk) that
/// parse on their own, added to `errors` where the walk found nothing at
/// the same place.
fn field_rules<T: Validate>(
    schema: &Schema,
    value: &Value,
    loc: &Loc,
    errors: &mut Vec<ErrorItem>,
    original: impl FnOnce() -> Value,
) {
    let mut report = garde::Report::new();
    T::validate_fields(value, &mut garde::Path::empty, &mut report);
    if !report.is_empty() {
        from_garde_with(&report, schema, loc, errors, original);
    }
}

/// Validates string parameters (query, form, headers, cookies) into `T`.
///
/// For a type without constraints beyond its Rust types
/// ([`TypeSchema::plain`]), the pairs are first parsed strictly with serde
/// ([`PairsDeserializer`]): canonical numbers, `true`/`false`, each key once.
/// Anything else (a lax value such as `?flag=yes`, a repeated key, an
/// error) takes the schema walk, which coerces as pydantic does and reports
/// every failure.
pub fn from_pairs<'a, T, I>(source: Source, pairs: I) -> Result<T, Vec<ErrorItem>>
where
    T: DeserializeOwned + JsonSchema + Validate + 'static,
    I: IntoIterator<Item = (Cow<'a, str>, Cow<'a, str>)>,
{
    let ts = type_schema::<T>();
    if ts.plain && ts.shape == Shape::Object {
        let pairs: Vec<(Cow<'a, str>, Cow<'a, str>)> = pairs.into_iter().collect();
        let fast = PairsDeserializer {
            pairs: pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())),
            value: None,
        };
        if let Ok(value) = T::deserialize(fast)
            && value.validate().is_ok()
        {
            return Ok(value);
        }
        // A failed check takes the schema walk, which reports what it
        // expresses in pydantic's words (`missing` for `required`).
        return slow_pairs::<T, _>(&ts.schema, source, pairs);
    }
    slow_pairs::<T, _>(&ts.schema, source, pairs)
}

#[cold]
fn slow_pairs<'a, T, I>(schema: &Schema, source: Source, pairs: I) -> Result<T, Vec<ErrorItem>>
where
    T: DeserializeOwned + Validate,
    I: IntoIterator<Item = (Cow<'a, str>, Cow<'a, str>)>,
{
    let value = params_to_value(schema, pairs);
    from_value(schema, source, value)
}

/// Validates an already assembled value (strings to be coerced) into `T`.
pub fn from_value<T: DeserializeOwned + Validate>(
    schema: &Schema,
    source: Source,
    mut value: Value,
) -> Result<T, Vec<ErrorItem>> {
    let loc = Loc::source(source);
    let mut errors = Vec::new();
    let original = value.clone();
    validation::validate(schema, &mut value, &loc, MissingInput::Null, &mut errors);
    if !errors.is_empty() {
        field_rules::<T>(schema, &value, &loc, &mut errors, || original);
        return Err(errors);
    }
    // Deserialize from a borrow: the value is only needed again on failure.
    match T::deserialize(&value) {
        Ok(parsed) => checked(schema, source, parsed, || original),
        Err(e) => Err(vec![serde_fallback(loc, &e, original)]),
    }
}

/// `value`'s own rules (`custom`, nested models): the schema walk checked
/// every rule the schema expresses, not these.
fn checked<T: Validate>(
    schema: &Schema,
    source: Source,
    value: T,
    original: impl FnOnce() -> Value,
) -> Result<T, Vec<ErrorItem>> {
    match value.validate() {
        Ok(()) => Ok(value),
        Err(report) => {
            let mut errors = Vec::new();
            from_garde_with(&report, schema, &Loc::source(source), &mut errors, original);
            // Only fields that were not sent (defaults) failed: accepted,
            // as pydantic does not validate defaults.
            if errors.is_empty() {
                Ok(value)
            } else {
                Err(errors)
            }
        }
    }
}

/// Renames the element after the source in each error's `loc`
/// (`["path", 0]` → `["path", "user_id"]`, `["header", "user_agent"]` →
/// `["header", "user-agent"]`).
pub fn rename_loc(errors: &mut [ErrorItem], rename: impl Fn(&LocItem) -> Option<String>) {
    for e in errors {
        if let Some(item) = e.loc.0.get_mut(1)
            && let Some(new) = rename(item)
        {
            *item = LocItem::Key(Cow::Owned(new));
        }
    }
}

/// Why the strict parse gave up (the schema walk then decides).
#[derive(Debug)]
pub struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not in strict form")
    }
}

impl std::error::Error for Refused {}

impl de::Error for Refused {
    fn custom<M: std::fmt::Display>(_msg: M) -> Self {
        Refused
    }
}

/// One parameter's text, parsed strictly: integers in canonical decimal
/// (`-?[1-9][0-9]*` or `0`) within the target's range, finite floats in
/// JSON's syntax, `true`/`false`, enum variants by name, any text for a
/// string, `Some` for an `Option`, a one-element list for a `Vec`. Every
/// other input (and any other target) is [`Refused`], so that only values
/// the schema walk would accept unchanged pass.
pub struct ParamDeserializer<'a>(pub &'a str);

macro_rules! strict_int {
    ($($method:ident => $visit:ident: $ty:ty;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
            if !canonical_int(self.0) {
                return Err(Refused);
            }
            visitor.$visit(self.0.parse::<$ty>().map_err(|_| Refused)?)
        }
    )*};
}

/// `0`, or an optional `-` and digits without leading zeros.
#[inline]
fn canonical_int(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let b = digits.as_bytes();
    match b.first() {
        Some(b'0') => s.len() == 1,
        Some(b'1'..=b'9') => b.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// JSON's number syntax: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
#[inline]
fn json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == b.len()
}

impl<'de> de::Deserializer<'de> for ParamDeserializer<'_> {
    type Error = Refused;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Refused> {
        Err(Refused)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        match self.0 {
            "true" => visitor.visit_bool(true),
            "false" => visitor.visit_bool(false),
            _ => Err(Refused),
        }
    }

    strict_int! {
        deserialize_i8 => visit_i8: i8;
        deserialize_i16 => visit_i16: i16;
        deserialize_i32 => visit_i32: i32;
        deserialize_i64 => visit_i64: i64;
        deserialize_i128 => visit_i128: i128;
        deserialize_u8 => visit_u8: u8;
        deserialize_u16 => visit_u16: u16;
        deserialize_u32 => visit_u32: u32;
        deserialize_u64 => visit_u64: u64;
        deserialize_u128 => visit_u128: u128;
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        match self.0.parse::<f32>() {
            Ok(x) if x.is_finite() && json_number(self.0) => visitor.visit_f32(x),
            _ => Err(Refused),
        }
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        match self.0.parse::<f64>() {
            Ok(x) if x.is_finite() && json_number(self.0) => visitor.visit_f64(x),
            _ => Err(Refused),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        let mut chars = self.0.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => visitor.visit_char(c),
            _ => Err(Refused),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        visitor.visit_str(self.0)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        visitor.visit_str(self.0)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Refused> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        visitor.visit_seq(de::value::SeqDeserializer::new(std::iter::once(self)))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Refused> {
        visitor.visit_enum(IntoDeserializer::<Refused>::into_deserializer(self.0))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bytes byte_buf unit unit_struct tuple tuple_struct map struct identifier
    }
}

impl<'de, 'a> IntoDeserializer<'de, Refused> for ParamDeserializer<'a> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

/// Named parameters as a struct, for the strict parse: each pair is one
/// field (a key given twice is refused by the struct itself).
pub struct PairsDeserializer<'a, I: Iterator<Item = (&'a str, &'a str)>> {
    pub pairs: I,
    pub value: Option<&'a str>,
}

impl<'de, 'a, I: Iterator<Item = (&'a str, &'a str)>> de::Deserializer<'de>
    for PairsDeserializer<'a, I>
{
    type Error = Refused;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        visitor.visit_map(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de, 'a, I: Iterator<Item = (&'a str, &'a str)>> de::MapAccess<'de>
    for PairsDeserializer<'a, I>
{
    type Error = Refused;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Refused> {
        match self.pairs.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(IntoDeserializer::<Refused>::into_deserializer(key))
                    .map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Refused> {
        match self.value.take() {
            Some(value) => seed.deserialize(ParamDeserializer(value)),
            None => Err(Refused),
        }
    }
}

/// Positional parameters as a tuple, for the strict parse.
pub struct SeqParams<'a, I: Iterator<Item = &'a str>>(pub I);

impl<'de, 'a, I: Iterator<Item = &'a str>> de::Deserializer<'de> for SeqParams<'a, I> {
    type Error = Refused;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        visitor.visit_seq(de::value::SeqDeserializer::new(
            self.0.map(ParamDeserializer),
        ))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn scalar<T: DeserializeOwned>(s: &str) -> Option<T> {
        T::deserialize(ParamDeserializer(s)).ok()
    }

    #[test]
    fn strict_scalars() {
        assert_eq!(scalar::<i64>("42"), Some(42));
        assert_eq!(scalar::<i64>("-7"), Some(-7));
        assert_eq!(scalar::<i64>("0"), Some(0));
        for lax in ["+1", "007", "-0", " 1", "1_000", "1.0", "", "-"] {
            assert_eq!(scalar::<i64>(lax), None, "{lax:?}");
        }
        assert_eq!(scalar::<u8>("255"), Some(255));
        assert_eq!(scalar::<u8>("256"), None);
        assert_eq!(scalar::<u32>("-1"), None);
        assert_eq!(scalar::<f64>("1.5e3"), Some(1500.0));
        assert_eq!(scalar::<f64>("2"), Some(2.0));
        for lax in ["inf", "NaN", "1e400", ".5", "1.", "0x10", "1e"] {
            assert_eq!(scalar::<f64>(lax), None, "{lax:?}");
        }
        assert_eq!(scalar::<bool>("true"), Some(true));
        assert_eq!(scalar::<bool>("1"), None);
        assert_eq!(scalar::<String>("a b"), Some("a b".to_owned()));
        assert_eq!(scalar::<Option<i32>>("5"), Some(Some(5)));
        assert_eq!(scalar::<Vec<i32>>("5"), Some(vec![5]));
        assert_eq!(scalar::<serde_json::Value>("5"), None);
    }

    #[derive(Debug, PartialEq, Deserialize)]
    enum Color {
        Red,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Params {
        id: i64,
        name: String,
        color: Option<Color>,
        #[serde(default)]
        tags: Vec<String>,
    }

    fn params(pairs: &[(&str, &str)]) -> Option<Params> {
        Params::deserialize(PairsDeserializer {
            pairs: pairs.iter().copied(),
            value: None,
        })
        .ok()
    }

    #[test]
    fn strict_structs() {
        assert_eq!(
            params(&[("id", "1"), ("name", "x"), ("color", "Red"), ("tags", "a")]),
            Some(Params {
                id: 1,
                name: "x".into(),
                color: Some(Color::Red),
                tags: vec!["a".into()],
            })
        );
        assert_eq!(
            params(&[("name", "x"), ("id", "2"), ("other", "y")]).map(|p| p.id),
            Some(2)
        );
        // Missing, repeated, lax or unknown variants: left to the walk.
        assert_eq!(params(&[("name", "x")]), None);
        assert_eq!(params(&[("id", "1"), ("id", "2"), ("name", "x")]), None);
        assert_eq!(params(&[("id", "01"), ("name", "x")]), None);
        assert_eq!(
            params(&[("id", "1"), ("name", "x"), ("color", "Blue")]),
            None
        );
        let t = <(i64, String)>::deserialize(SeqParams(["3", "z"].into_iter())).ok();
        assert_eq!(t, Some((3, "z".to_owned())));
    }
}
