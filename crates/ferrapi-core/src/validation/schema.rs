//! A JSON Schema prepared for validation: the [`Schema`] built once per type,
//! `$ref` and `Option` resolution, keyword lookup, union labels and
//! discriminators (shared by the walker, the garde mapping and the parameter
//! assembly), and [`Schema::is_plain`], which tells the extractors when a
//! strict serde parse alone decides a type.

use super::messages::py_repr;
use regex::Regex;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// How many `$ref` hops [`Schema::resolve`] follows in a row.
const MAX_REF_HOPS: usize = 32;

/// A JSON Schema (draft 2020-12, as schemars emits it) prepared for
/// validation: built once per type and reused for every request.
///
/// ```
/// use ferrapi_core::validation::Schema;
/// use serde_json::json;
///
/// let schema = Schema::new(json!({
///     "type": "object",
///     "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
///     "required": ["name"]
/// }));
/// assert_eq!(schema.property_names(), ["name", "age"]);
/// ```
#[derive(Debug)]
pub struct Schema {
    root: Value,
    patterns: HashMap<String, Regex>,
}

impl Schema {
    /// Prepares `root`: every `pattern` in it is compiled once here (a
    /// pattern that does not compile is never checked).
    pub fn new(root: Value) -> Schema {
        let mut patterns = HashMap::new();
        let mut stack: Vec<&Value> = vec![&root];
        while let Some(node) = stack.pop() {
            match node {
                Value::Object(m) => {
                    if let Some(Value::String(p)) = m.kw("pattern")
                        && !patterns.contains_key(p)
                        && let Ok(re) = Regex::new(p)
                    {
                        patterns.insert(p.clone(), re);
                    }
                    stack.extend(m.values());
                }
                Value::Array(a) => stack.extend(a.iter()),
                _ => {}
            }
        }
        Schema { root, patterns }
    }

    /// The schema as given to [`Schema::new`].
    pub fn root(&self) -> &Value {
        &self.root
    }

    /// Top-level object property names in declaration order (after
    /// resolving a `$ref` root); empty if the root is not an object schema.
    pub fn property_names(&self) -> Vec<&str> {
        self.resolve(&self.root)
            .kw("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// The target of a `$ref` (`#` or a JSON pointer such as `#/$defs/Name`).
    pub(crate) fn lookup(&self, reference: &str) -> Option<&Value> {
        if reference == "#" {
            return Some(&self.root);
        }
        reference
            .strip_prefix('#')
            .and_then(|pointer| self.root.pointer(pointer))
    }

    /// Follows `$ref`s from `node` to a schema that is not a reference.
    pub(crate) fn resolve<'a>(&'a self, mut node: &'a Value) -> &'a Value {
        for _ in 0..MAX_REF_HOPS {
            match node
                .kw("$ref")
                .and_then(Value::as_str)
                .and_then(|r| self.lookup(r))
            {
                Some(target) => node = target,
                None => return node,
            }
        }
        node
    }

    /// Like [`Schema::resolve`], and also looks through `Option<T>`
    /// (`anyOf: [T, {type: null}]`) to `T`.
    pub(crate) fn resolve_nullable<'a>(&'a self, node: &'a Value) -> &'a Value {
        let mut node = self.resolve(node);
        for _ in 0..MAX_REF_HOPS {
            let Some(vars) = variants(node) else {
                return node;
            };
            let mut non_null = vars.iter().filter(|v| !self.is_null_schema(v));
            match (non_null.next(), non_null.next()) {
                (Some(only), None) => node = self.resolve(only),
                _ => return node,
            }
        }
        node
    }

    pub(crate) fn is_null_schema(&self, node: &Value) -> bool {
        let node = self.resolve(node);
        node.kw("type").and_then(Value::as_str) == Some("null")
    }

    /// The properties of an object schema (after `$ref` and `Option`).
    pub(crate) fn properties<'a>(&'a self, node: &'a Value) -> Option<&'a Map<String, Value>> {
        self.resolve_nullable(node)
            .kw("properties")
            .and_then(Value::as_object)
    }

    pub(super) fn regex(&self, pattern: &str) -> Option<&Regex> {
        self.patterns.get(pattern)
    }

    /// Whether the type has no constraint that a strict serde parse does not
    /// itself enforce: every node is a type (strings, integers and floats of
    /// any width, booleans, `Option`, objects with declared properties,
    /// tuples, lists, enums of strings) with no bound, length, pattern or
    /// format other than what the Rust type implies (`format: uint8`,
    /// `minimum: 0`, `maximum: 255` for a `u8`).
    ///
    /// For such a type, an input that a strict parse accepts is one this
    /// walker would accept unchanged, to the same value: extractors parse
    /// well-formed parameters with serde alone and walk the schema only when
    /// that parse fails (to coerce, or to report every error).
    ///
    /// ```
    /// use ferrapi_core::validation::Schema;
    /// use serde_json::json;
    ///
    /// assert!(Schema::new(json!({"type": "integer", "format": "uint8", "minimum": 0, "maximum": 255})).is_plain());
    /// assert!(!Schema::new(json!({"type": "integer", "format": "int64", "minimum": 1})).is_plain());
    /// assert!(!Schema::new(json!({"type": "string", "minLength": 2})).is_plain());
    /// ```
    pub fn is_plain(&self) -> bool {
        self.plain_node(&self.root, 0)
    }

    fn plain_node(&self, node: &Value, depth: usize) -> bool {
        if depth > 32 {
            return false;
        }
        let Value::Object(m) = node else {
            return false;
        };
        if let Some(r) = m.kw("$ref") {
            let rest_is_doc = m
                .keys()
                .all(|k| k == "$ref" || DOC_KEYWORDS.contains(&k.as_str()));
            return rest_is_doc
                && r.as_str()
                    .and_then(|r| self.lookup(r))
                    .is_some_and(|target| self.plain_node(target, depth + 1));
        }
        if let Some(vars) = variants(node) {
            // Only `Option<T>`: `T` or null.
            let mut non_null = vars.iter().filter(|v| !self.is_null_schema(v));
            let only = match (non_null.next(), non_null.next()) {
                (Some(only), None) => only,
                _ => return false,
            };
            let rest_is_doc = m
                .keys()
                .all(|k| k == "anyOf" || k == "oneOf" || DOC_KEYWORDS.contains(&k.as_str()));
            return rest_is_doc && self.plain_node(only, depth + 1);
        }
        let types: Vec<&str> = match m.kw("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => return false,
        };
        let Some(main) = types.iter().copied().find(|t| *t != "null") else {
            return false;
        };
        if types.iter().any(|t| *t != "null" && *t != main) {
            return false;
        }
        let format = m.kw("format").and_then(Value::as_str);
        let range = format.and_then(format_range);
        let implied = |key: &str, v: &Value| {
            let Some((lo, hi)) = range else {
                return false;
            };
            let bound = if key == "minimum" { lo } else { hi };
            v.as_i64().map(i128::from).or(v.as_u64().map(i128::from)) == Some(bound)
        };
        let tuple_len = m.kw("prefixItems").and_then(Value::as_array).map(Vec::len);
        for (key, v) in m {
            let ok = match key.as_str() {
                "type" | "required" => true,
                k if DOC_KEYWORDS.contains(&k) => true,
                "format" => match main {
                    "integer" => range.is_some(),
                    "number" => matches!(format, Some("double" | "float")),
                    _ => false,
                },
                "minimum" | "maximum" => main == "integer" && implied(key, v),
                "enum" => {
                    main == "string"
                        && v.as_array()
                            .is_some_and(|vals| vals.iter().all(Value::is_string))
                }
                "properties" => {
                    main == "object"
                        && v.as_object()
                            .is_some_and(|p| p.values().all(|s| self.plain_node(s, depth + 1)))
                }
                "additionalProperties" => *v == Value::Bool(false),
                "prefixItems" => {
                    main == "array"
                        && v.as_array()
                            .is_some_and(|p| p.iter().all(|s| self.plain_node(s, depth + 1)))
                }
                "items" => {
                    main == "array"
                        && (*v == Value::Bool(false)
                            || (tuple_len.is_none() && self.plain_node(v, depth + 1)))
                }
                "minItems" | "maxItems" => {
                    tuple_len.is_some() && v.as_u64() == tuple_len.map(|n| n as u64)
                }
                _ => false,
            };
            if !ok {
                return false;
            }
        }
        match main {
            "object" => m.kw("properties").is_some(),
            "array" => m.kw("items").is_some() || tuple_len.is_some(),
            "string" | "integer" | "number" | "boolean" => true,
            _ => false,
        }
    }

    /// The label pydantic puts in the `loc` of a failed union member.
    pub(crate) fn union_label(&self, node: &Value) -> String {
        if let Some(r) = node.kw("$ref").and_then(Value::as_str) {
            if r == "#" {
                return self
                    .root
                    .kw("title")
                    .and_then(Value::as_str)
                    .unwrap_or("Model")
                    .to_owned();
            }
            return r.rsplit('/').next().unwrap_or(r).to_owned();
        }
        if let Some(c) = node.kw("const") {
            return format!("literal[{}]", py_repr(c));
        }
        if let Some(Value::Array(vals)) = node.kw("enum") {
            let reprs: Vec<String> = vals.iter().map(py_repr).collect();
            return format!("literal[{}]", reprs.join(","));
        }
        let ty = match node.kw("type") {
            Some(Value::String(t)) => t.as_str(),
            Some(Value::Array(ts)) => ts
                .iter()
                .filter_map(Value::as_str)
                .find(|t| *t != "null")
                .unwrap_or("null"),
            _ if node.kw("properties").is_some() => "object",
            _ => "any",
        };
        match ty {
            "string" => "str".into(),
            "integer" => "int".into(),
            "number" => "float".into(),
            "boolean" => "bool".into(),
            "null" => "none".into(),
            "array" => match node.kw("items") {
                Some(items) => format!("list[{}]", self.union_label(items)),
                None => "list[any]".into(),
            },
            "object" => {
                if node.kw("properties").is_some() {
                    node.kw("title")
                        .and_then(Value::as_str)
                        .unwrap_or("model")
                        .to_owned()
                } else {
                    match node.kw("additionalProperties") {
                        Some(s @ Value::Object(_)) => format!("dict[str,{}]", self.union_label(s)),
                        _ => "dict[str,any]".into(),
                    }
                }
            }
            other => other.to_owned(),
        }
    }

    /// An internally tagged union (`#[serde(tag = "...")]`): every member an
    /// object whose property `key` is a string constant. Returns the key and
    /// each member's tag.
    pub(crate) fn discriminator<'a>(
        &'a self,
        vars: &[&'a Value],
    ) -> Option<(&'a str, Vec<(&'a Value, &'a Value)>)> {
        let first = self.resolve(vars.first()?);
        let props = first.kw("properties")?.as_object()?;
        'keys: for key in props.keys() {
            let mut tags = Vec::with_capacity(vars.len());
            for var in vars {
                let Some(tag) = self
                    .resolve(var)
                    .kw("properties")
                    .and_then(|p| p.get(key))
                    .map(|s| self.resolve(s))
                    .and_then(const_of)
                else {
                    continue 'keys;
                };
                tags.push((tag, *var));
            }
            return Some((key.as_str(), tags));
        }
        None
    }
}

/// Looks a keyword up in a schema object. Schema objects hold a handful of
/// keywords, and serde_json's maps hash every key with SipHash: comparing
/// them all costs less than hashing one (it made up a sixth of a 422).
/// Property maps and input objects, which can be large, are looked up by
/// hash as before.
pub(crate) trait Keyword {
    /// The value of `key`, if the node is an object that has it.
    fn kw(&self, key: &str) -> Option<&Value>;
}

impl Keyword for Map<String, Value> {
    #[inline]
    fn kw(&self, key: &str) -> Option<&Value> {
        self.iter()
            .find(|(k, _)| k.len() == key.len() && k.as_str() == key)
            .map(|(_, v)| v)
    }
}

impl Keyword for Value {
    #[inline]
    fn kw(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(m) => m.kw(key),
            _ => None,
        }
    }
}

/// Keywords that document a schema without constraining its values.
const DOC_KEYWORDS: [&str; 11] = [
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$schema",
    "$defs",
    "$id",
    "$comment",
];

/// The single allowed value of a schema (`const`, or a one-value `enum`).
pub(super) fn const_of(node: &Value) -> Option<&Value> {
    if let Some(c) = node.kw("const") {
        return Some(c);
    }
    match node.kw("enum") {
        Some(Value::Array(vals)) if vals.len() == 1 => vals.first(),
        _ => None,
    }
}

/// The members of an `anyOf` / `oneOf`.
pub(super) fn variants(node: &Value) -> Option<&Vec<Value>> {
    node.kw("anyOf")
        .or_else(|| node.kw("oneOf"))
        .and_then(Value::as_array)
}

/// The range of schemars' integer formats.
pub(super) fn format_range(format: &str) -> Option<(i128, i128)> {
    Some(match format {
        "int8" => (i128::from(i8::MIN), i128::from(i8::MAX)),
        "int16" => (i128::from(i16::MIN), i128::from(i16::MAX)),
        "int32" => (i128::from(i32::MIN), i128::from(i32::MAX)),
        "int64" | "int" => (i128::from(i64::MIN), i128::from(i64::MAX)),
        "uint8" => (0, i128::from(u8::MAX)),
        "uint16" => (0, i128::from(u16::MAX)),
        "uint32" => (0, i128::from(u32::MAX)),
        "uint64" | "uint" => (0, i128::from(u64::MAX)),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::Schema;
    use serde_json::json;

    fn plain(v: serde_json::Value) -> bool {
        Schema::new(v).is_plain()
    }

    #[test]
    fn plain_types() {
        assert!(plain(
            json!({"type": "integer", "format": "int64", "title": "int64"})
        ));
        assert!(plain(
            json!({"type": "integer", "format": "uint32", "minimum": 0})
        ));
        assert!(plain(
            json!({"type": ["integer", "null"], "format": "int32"})
        ));
        assert!(plain(json!({
            "type": "array",
            "prefixItems": [{"type": "integer", "format": "int64"}, {"type": "string"}],
            "minItems": 2, "maxItems": 2
        })));
        assert!(plain(json!({
            "type": "object",
            "properties": {
                "user_id": {"type": "integer", "format": "int64"},
                "tags": {"type": ["array", "null"], "items": {"type": "string"}},
                "color": {"$ref": "#/$defs/Color"},
                "f": {"type": "number", "format": "double"}
            },
            "required": ["user_id"],
            "$defs": {"Color": {"type": "string", "enum": ["Red", "Green"]}}
        })));
        assert!(plain(json!({
            "anyOf": [{"$ref": "#/$defs/C"}, {"type": "null"}],
            "$defs": {"C": {"type": "string", "enum": ["a"]}}
        })));
    }

    #[test]
    fn constrained_types() {
        // Bounds other than the type's own.
        assert!(!plain(
            json!({"type": "integer", "format": "uint32", "minimum": 1})
        ));
        assert!(!plain(
            json!({"type": "integer", "format": "int64", "maximum": 10})
        ));
        assert!(!plain(json!({"type": "string", "maxLength": 3})));
        assert!(!plain(json!({"type": "string", "pattern": "^a"})));
        assert!(!plain(json!({"type": "string", "format": "email"})));
        assert!(!plain(json!({"type": "string", "format": "date-time"})));
        assert!(!plain(json!({"type": "number", "exclusiveMinimum": 0})));
        assert!(!plain(json!({"const": 1})));
        // A constrained field makes the object constrained.
        assert!(!plain(json!({
            "type": "object",
            "properties": {"limit": {"type": "integer", "format": "uint32", "minimum": 1}}
        })));
        // Maps, untyped values, real unions.
        assert!(!plain(
            json!({"type": "object", "additionalProperties": {"type": "string"}})
        ));
        assert!(!plain(json!({})));
        assert!(!plain(json!(true)));
        assert!(!plain(
            json!({"anyOf": [{"type": "string"}, {"type": "integer"}]})
        ));
        // A reference cycle is not followed forever.
        assert!(!plain(json!({"$ref": "#"})));
    }
}
