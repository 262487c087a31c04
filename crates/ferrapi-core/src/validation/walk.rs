//! The schema walker: validates a JSON value against a schemars-derived JSON
//! Schema the way pydantic v2 (lax mode) validates a Python value against a
//! model, coercing lax inputs in place and reporting every failure in
//! pydantic's words.

use super::email::validate_email;
use super::messages::{self, error, expected_list, py_repr};
use super::{ErrorItem, Loc};
use regex::Regex;
use serde_json::{Map, Number, Value, json};
use std::cmp::Ordering;
use std::collections::HashMap;

/// How deep the walker follows schemas (`$ref` hops plus value nesting)
/// before it gives up on a branch: recursive types must not loop forever.
const MAX_DEPTH: usize = 256;
/// How many `$ref` hops [`Schema::resolve`] follows in a row.
const MAX_REF_HOPS: usize = 32;
/// How many schema nodes one [`validate`] call may visit while trying union
/// members: each member is tried on a copy of the input, so nested unions
/// could otherwise cost exponential time on hostile input. Past the budget,
/// union members are accepted unchecked (the typed parse that follows still
/// refuses what is wrong). Outside unions the walk is linear in the input.
const MAX_UNION_STEPS: usize = 20_000;

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

    fn regex(&self, pattern: &str) -> Option<&Regex> {
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
fn const_of(node: &Value) -> Option<&Value> {
    if let Some(c) = node.kw("const") {
        return Some(c);
    }
    match node.kw("enum") {
        Some(Value::Array(vals)) if vals.len() == 1 => vals.first(),
        _ => None,
    }
}

/// The members of an `anyOf` / `oneOf`.
fn variants(node: &Value) -> Option<&Vec<Value>> {
    node.kw("anyOf")
        .or_else(|| node.kw("oneOf"))
        .and_then(Value::as_array)
}

/// What `input` a `missing` error carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingInput {
    /// The enclosing object, as pydantic reports it for JSON bodies.
    Parent,
    /// `null`, as FastAPI reports it for query, path, header and cookie
    /// parameters.
    Null,
}

/// Walks `value` against `schema`: coerces lax inputs in place exactly as
/// pydantic v2's lax mode does (`"30"` → `30` for an integer, `"3.5"` → `3.5`
/// for a number, `30.0` → `30` for an integer, `"true"`/`"1"`/`"yes"`/`"on"`
/// → `true` for a boolean, …), checks types and constraints, and pushes every
/// failure (all fields, nested objects, list items) as pydantic would, in
/// field declaration order, with `loc` = the `loc` prefix + the path. The
/// `input` of an error is the original input (before coercion).
///
/// ```
/// use ferrapi_core::validation::{validate, Loc, MissingInput, Schema, Source};
/// use serde_json::json;
///
/// let schema = Schema::new(json!({
///     "type": "object",
///     "properties": {"age": {"type": "integer", "minimum": 18}},
///     "required": ["age"]
/// }));
/// let mut value = json!({"age": "30"});
/// let mut errors = Vec::new();
/// validate(&schema, &mut value, &Loc::source(Source::Body), MissingInput::Parent, &mut errors);
/// assert!(errors.is_empty());
/// assert_eq!(value, json!({"age": 30}));
/// ```
pub fn validate(
    schema: &Schema,
    value: &mut Value,
    loc: &Loc,
    missing: MissingInput,
    errors: &mut Vec<ErrorItem>,
) {
    let mut walker = Walker {
        schema,
        missing,
        errors: Vec::new(),
        depth: 0,
        steps: 0,
        in_union: false,
    };
    walker.node(&schema.root, value, loc);
    errors.append(&mut walker.errors);
}

/// A bound keyword, the error type and ctx key it gives, and when an
/// integer (compared with the bound) fails it.
type IntBound = (
    &'static str,
    &'static str,
    &'static str,
    fn(Ordering) -> bool,
);
/// The same for floats: `fails(value, bound)`.
type FloatBound = (
    &'static str,
    &'static str,
    &'static str,
    fn(f64, f64) -> bool,
);

struct Walker<'s> {
    schema: &'s Schema,
    missing: MissingInput,
    errors: Vec<ErrorItem>,
    depth: usize,
    /// Nodes visited while trying union members (see [`MAX_UNION_STEPS`]).
    steps: usize,
    /// Whether this walker tries a union member.
    in_union: bool,
}

impl<'s> Walker<'s> {
    fn push(&mut self, kind: &'static str, loc: &Loc, input: Value, ctx: Option<Value>) {
        self.errors.push(error(kind, loc.clone(), input, ctx));
    }

    fn node(&mut self, s: &'s Value, v: &mut Value, loc: &Loc) {
        if self.depth >= MAX_DEPTH {
            return;
        }
        if self.in_union {
            if self.steps >= MAX_UNION_STEPS {
                return;
            }
            self.steps += 1;
        }
        self.depth += 1;
        self.node_inner(s, v, loc);
        self.depth -= 1;
    }

    fn node_inner(&mut self, s: &'s Value, v: &mut Value, loc: &Loc) {
        let Value::Object(m) = s else {
            // `true` accepts anything; `false` is never emitted by schemars.
            return;
        };
        if let Some(r) = m.kw("$ref").and_then(Value::as_str) {
            if let Some(target) = self.schema.lookup(r) {
                self.node(target, v, loc);
            }
            return;
        }
        if let Some(Value::Array(subs)) = m.kw("allOf") {
            for sub in subs {
                self.node(sub, v, loc);
            }
        }
        if let Some(vars) = variants(s) {
            self.union(vars, v, loc);
            return;
        }
        if let Some(c) = m.kw("const") {
            if !json_eq(v, c) {
                let expected = py_repr(c);
                self.push(
                    "literal_error",
                    loc,
                    v.clone(),
                    Some(json!({ "expected": expected })),
                );
            }
            return;
        }
        if let Some(Value::Array(vals)) = m.kw("enum") {
            if !vals.iter().any(|x| json_eq(x, v)) {
                let expected = expected_list(vals.iter().filter(|x| !x.is_null()));
                self.push(
                    "enum",
                    loc,
                    v.clone(),
                    Some(json!({ "expected": expected })),
                );
            }
            return;
        }
        let mut types: Vec<&str> = match m.kw("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if types.is_empty() {
            if m.kw("properties").is_some() {
                types.push("object");
            } else if m.kw("items").is_some() || m.kw("prefixItems").is_some() {
                types.push("array");
            } else {
                return;
            }
        }
        let nullable = types.contains(&"null");
        let non_null: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
        if v.is_null() && nullable {
            return;
        }
        match non_null.as_slice() {
            [] => {
                if !v.is_null() {
                    self.push("none_required", loc, v.clone(), None);
                }
            }
            [t] => self.typed(t, m, v, loc),
            several => {
                // A value of several JSON types (rare in schemars output):
                // the first type that accepts it wins.
                for t in several {
                    let mut trial = v.clone();
                    let mut sub = self.sub();
                    sub.typed(t, m, &mut trial, loc);
                    self.steps = sub.steps;
                    if sub.errors.is_empty() {
                        *v = trial;
                        return;
                    }
                }
                if let Some(t) = several.first() {
                    self.typed(t, m, v, loc);
                }
            }
        }
    }

    fn sub(&self) -> Walker<'s> {
        Walker {
            schema: self.schema,
            missing: self.missing,
            errors: Vec::new(),
            depth: self.depth,
            steps: self.steps,
            in_union: true,
        }
    }

    fn typed(&mut self, t: &str, m: &'s Map<String, Value>, v: &mut Value, loc: &Loc) {
        match t {
            "string" => self.string(m, v, loc),
            "integer" => self.integer(m, v, loc),
            "number" => self.number(m, v, loc),
            "boolean" => self.boolean(v, loc),
            "array" => self.array(m, v, loc),
            "object" => self.object(m, v, loc),
            _ => {}
        }
    }

    // ---------------------------------------------------------------- unions

    fn union(&mut self, vars: &'s [Value], v: &mut Value, loc: &Loc) {
        let non_null: Vec<&'s Value> = vars
            .iter()
            .filter(|s| !self.schema.is_null_schema(s))
            .collect();
        let has_null = non_null.len() != vars.len();
        if v.is_null() && has_null {
            return;
        }
        if let [only] = non_null.as_slice() {
            self.node(only, v, loc);
            return;
        }
        // A unit-variant enum whose variants carry docs: `oneOf` of constants.
        let constants: Option<Vec<&Value>> = non_null
            .iter()
            .map(|s| const_of(self.schema.resolve(s)))
            .collect();
        if let Some(values) = constants {
            if !values.iter().any(|c| json_eq(c, v)) {
                let expected = expected_list(values);
                self.push(
                    "enum",
                    loc,
                    v.clone(),
                    Some(json!({ "expected": expected })),
                );
            }
            return;
        }
        if let Some((key, tags)) = self.schema.discriminator(&non_null) {
            self.tagged(key, &tags, v, loc);
            return;
        }
        // pydantic's smart union: an exact (uncoerced) match wins, else the
        // first lax match, else every member's errors under its label.
        let mut lax: Option<Value> = None;
        let mut failures = Vec::new();
        for s in non_null {
            let mut trial = v.clone();
            let mut sub = self.sub();
            let label = self.schema.union_label(s);
            sub.node(s, &mut trial, &loc.join(label));
            self.steps = sub.steps;
            if sub.errors.is_empty() {
                if trial == *v {
                    return;
                }
                if lax.is_none() {
                    lax = Some(trial);
                }
            } else {
                failures.append(&mut sub.errors);
            }
        }
        match lax {
            Some(t) => *v = t,
            None => self.errors.append(&mut failures),
        }
    }

    fn tagged(&mut self, key: &str, tags: &[(&'s Value, &'s Value)], v: &mut Value, loc: &Loc) {
        let Value::Object(obj) = &*v else {
            self.push("model_attributes_type", loc, v.clone(), None);
            return;
        };
        let discriminator = format!("'{key}'");
        let Some(tag) = obj.get(key) else {
            self.push(
                "union_tag_not_found",
                loc,
                v.clone(),
                Some(json!({ "discriminator": discriminator })),
            );
            return;
        };
        let tag_str = messages::display(tag);
        match tags.iter().find(|(t, _)| json_eq(t, tag)) {
            Some((_, variant)) => self.node(variant, v, &loc.join(tag_str)),
            None => {
                let expected: Vec<String> = tags.iter().map(|(t, _)| py_repr(t)).collect();
                self.push(
                    "union_tag_invalid",
                    loc,
                    v.clone(),
                    Some(json!({
                        "discriminator": discriminator,
                        "tag": tag_str,
                        "expected_tags": expected.join(", "),
                    })),
                );
            }
        }
    }

    // ---------------------------------------------------------------- strings

    fn string(&mut self, m: &'s Map<String, Value>, v: &mut Value, loc: &Loc) {
        let format = m.kw("format").and_then(Value::as_str);
        match format {
            Some("date-time") => return self.datetime(v, loc),
            Some("date") => return self.date(v, loc),
            Some("uuid") => return self.uuid(v, loc),
            _ => {}
        }
        let Value::String(s) = &*v else {
            self.push("string_type", loc, v.clone(), None);
            return;
        };
        let min = m.kw("minLength").and_then(Value::as_u64);
        let max = m.kw("maxLength").and_then(Value::as_u64);
        if min.is_some() || max.is_some() {
            let len = s.chars().count() as u64;
            if let Some(min) = min
                && len < min
            {
                self.push(
                    "string_too_short",
                    loc,
                    v.clone(),
                    Some(json!({ "min_length": min })),
                );
                return;
            }
            if let Some(max) = max
                && len > max
            {
                self.push(
                    "string_too_long",
                    loc,
                    v.clone(),
                    Some(json!({ "max_length": max })),
                );
                return;
            }
        }
        if let Some(Value::String(p)) = m.kw("pattern")
            && let Some(re) = self.schema.regex(p)
            && !re.is_match(s)
        {
            self.push(
                "string_pattern_mismatch",
                loc,
                v.clone(),
                Some(json!({ "pattern": p })),
            );
            return;
        }
        match format {
            Some("email" | "idn-email") => {
                if let Err(reason) = validate_email(s) {
                    self.errors.push(ErrorItem {
                        kind: "value_error".into(),
                        loc: loc.clone(),
                        msg: format!("value is not a valid email address: {reason}"),
                        input: v.clone(),
                        ctx: json!({ "reason": reason }).as_object().cloned(),
                    });
                }
            }
            Some("uri" | "url" | "iri") => {
                if let Err(e) = formats::check_url(s) {
                    self.push("url_parsing", loc, v.clone(), Some(json!({ "error": e })));
                }
            }
            Some(f @ ("ipv4" | "ipv6" | "ipvanyaddress")) => {
                use super::model::rules::IpKind;
                let kind = match f {
                    "ipv4" => IpKind::V4,
                    "ipv6" => IpKind::V6,
                    _ => IpKind::Any,
                };
                if !kind.accepts(s) {
                    let (ty, msg) = kind.pydantic();
                    self.errors.push(ErrorItem {
                        kind: ty.into(),
                        loc: loc.clone(),
                        msg: msg.to_owned(),
                        input: v.clone(),
                        ctx: None,
                    });
                }
            }
            _ => {}
        }
    }

    fn uuid(&mut self, v: &mut Value, loc: &Loc) {
        let Value::String(s) = &*v else {
            self.push("uuid_type", loc, v.clone(), None);
            return;
        };
        if let Err(e) = formats::parse_uuid(s) {
            self.push("uuid_parsing", loc, v.clone(), Some(json!({ "error": e })));
        }
    }

    fn datetime(&mut self, v: &mut Value, loc: &Loc) {
        let parsed = match &*v {
            // In lax mode pydantic falls back to a date (at midnight, naive);
            // when that fails too, the date parser's error is reported.
            Value::String(s) => formats::parse_datetime(s.as_bytes()).or_else(|_| {
                formats::parse_date(s.as_bytes())
                    .map(formats::DateTime::midnight)
                    .map_err(|e| ("datetime_from_date_parsing", e))
            }),
            Value::Number(n) => {
                formats::datetime_from_number(n).map_err(|e| ("datetime_parsing", e))
            }
            _ => {
                self.push("datetime_type", loc, v.clone(), None);
                return;
            }
        };
        match parsed {
            Ok(dt) if dt.tz.is_none() => self.push("timezone_aware", loc, v.clone(), None),
            Ok(dt) => *v = Value::String(dt.to_string()),
            Err((kind, e)) => self.push(kind, loc, v.clone(), Some(json!({ "error": e }))),
        }
    }

    fn date(&mut self, v: &mut Value, loc: &Loc) {
        let parsed = match &*v {
            Value::String(s) => formats::parse_date_lax(s.as_bytes()),
            Value::Number(n) => formats::date_from_number(n),
            _ => {
                self.push("date_type", loc, v.clone(), None);
                return;
            }
        };
        match parsed {
            Ok(d) => *v = Value::String(d.to_string()),
            Err(formats::DateError::Inexact) => {
                self.push("date_from_datetime_inexact", loc, v.clone(), None);
            }
            Err(formats::DateError::Parsing(e)) => self.push(
                "date_from_datetime_parsing",
                loc,
                v.clone(),
                Some(json!({ "error": e })),
            ),
        }
    }

    // ---------------------------------------------------------------- numbers

    fn integer(&mut self, m: &'s Map<String, Value>, v: &mut Value, loc: &Loc) {
        let parsed = match &*v {
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Ok(Int::Small(i128::from(i)))
                } else if let Some(u) = n.as_u64() {
                    Ok(Int::Small(i128::from(u)))
                } else {
                    float_as_int(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::Bool(b) => Ok(Int::Small(i128::from(*b))),
            Value::String(s) => str_as_int(s),
            _ => Err("int_type"),
        };
        let i = match parsed {
            Ok(i) => i,
            Err(kind) => {
                self.push(kind, loc, v.clone(), None);
                return;
            }
        };
        if let Some(multiple) = m.kw("multipleOf").and_then(Value::as_number)
            && !int_is_multiple(&i, multiple)
        {
            self.push(
                "multiple_of",
                loc,
                v.clone(),
                Some(json!({ "multiple_of": multiple })),
            );
            return;
        }
        let bounds: [IntBound; 4] = [
            ("maximum", "less_than_equal", "le", |o| {
                o == Ordering::Greater
            }),
            ("exclusiveMaximum", "less_than", "lt", |o| {
                o != Ordering::Less
            }),
            ("minimum", "greater_than_equal", "ge", |o| {
                o == Ordering::Less
            }),
            ("exclusiveMinimum", "greater_than", "gt", |o| {
                o != Ordering::Greater
            }),
        ];
        for (keyword, kind, ctx_key, fails) in bounds {
            if let Some(bound) = m.kw(keyword).and_then(Value::as_number)
                && fails(cmp_int(&i, bound))
            {
                let mut ctx = Map::new();
                ctx.insert(ctx_key.to_owned(), Value::Number(bound.clone()));
                self.push(kind, loc, v.clone(), Some(Value::Object(ctx)));
                return;
            }
        }
        // The Rust type's own range, where the schema does not state it.
        if let Some((lo, hi)) = m
            .kw("format")
            .and_then(Value::as_str)
            .and_then(format_range)
        {
            let value = match i {
                Int::Small(x) => x,
                Int::BigPos => i128::MAX,
                Int::BigNeg => i128::MIN,
            };
            if value > hi && m.kw("maximum").is_none() {
                self.push(
                    "less_than_equal",
                    loc,
                    v.clone(),
                    Some(json!({ "le": int_number(hi) })),
                );
                return;
            }
            if value < lo && m.kw("minimum").is_none() {
                self.push(
                    "greater_than_equal",
                    loc,
                    v.clone(),
                    Some(json!({ "ge": int_number(lo) })),
                );
                return;
            }
        }
        match i {
            Int::Small(x) => {
                let already = matches!(&*v, Value::Number(n) if n.is_i64() || n.is_u64());
                if !already {
                    *v = int_number(x);
                }
            }
            Int::BigPos | Int::BigNeg => {
                self.push("int_parsing_size", loc, v.clone(), None);
            }
        }
    }

    fn number(&mut self, m: &'s Map<String, Value>, v: &mut Value, loc: &Loc) {
        let parsed = match &*v {
            Value::Number(n) => Ok(n.as_f64().unwrap_or(f64::NAN)),
            Value::Bool(b) => Ok(if *b { 1.0 } else { 0.0 }),
            Value::String(s) => str_as_float(s),
            _ => Err("float_type"),
        };
        let f = match parsed {
            Ok(f) => f,
            Err(kind) => {
                self.push(kind, loc, v.clone(), None);
                return;
            }
        };
        if !f.is_finite() {
            self.push("finite_number", loc, v.clone(), None);
            return;
        }
        if let Some(multiple) = m.kw("multipleOf").and_then(Value::as_number)
            && let Some(k) = multiple.as_f64()
            && k != 0.0
        {
            let rem = f % k;
            let threshold = f.abs() / 1e9;
            if rem.abs() > threshold && (rem - k).abs() > threshold {
                self.push(
                    "multiple_of",
                    loc,
                    v.clone(),
                    Some(json!({ "multiple_of": multiple })),
                );
                return;
            }
        }
        let bounds: [FloatBound; 4] = [
            ("maximum", "less_than_equal", "le", |x, b| x > b),
            ("exclusiveMaximum", "less_than", "lt", |x, b| x >= b),
            ("minimum", "greater_than_equal", "ge", |x, b| x < b),
            ("exclusiveMinimum", "greater_than", "gt", |x, b| x <= b),
        ];
        for (keyword, kind, ctx_key, fails) in bounds {
            if let Some(bound) = m.kw(keyword).and_then(Value::as_number)
                && let Some(b) = bound.as_f64()
                && fails(f, b)
            {
                let mut ctx = Map::new();
                ctx.insert(ctx_key.to_owned(), Value::Number(bound.clone()));
                self.push(kind, loc, v.clone(), Some(Value::Object(ctx)));
                return;
            }
        }
        if !v.is_number()
            && let Some(n) = Number::from_f64(f)
        {
            *v = Value::Number(n);
        }
    }

    fn boolean(&mut self, v: &mut Value, loc: &Loc) {
        let parsed = match &*v {
            Value::Bool(_) => return,
            Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(0), _, _) | (_, Some(0), _) => Ok(false),
                (Some(1), _, _) | (_, Some(1), _) => Ok(true),
                (None, None, Some(0.0)) => Ok(false),
                (None, None, Some(1.0)) => Ok(true),
                _ => Err("bool_parsing"),
            },
            Value::String(s) => str_as_bool(s).ok_or("bool_parsing"),
            _ => Err("bool_type"),
        };
        match parsed {
            Ok(b) => *v = Value::Bool(b),
            Err(kind) => self.push(kind, loc, v.clone(), None),
        }
    }

    // ---------------------------------------------------------------- containers

    fn array(&mut self, m: &'s Map<String, Value>, v: &mut Value, loc: &Loc) {
        let prefix = m.kw("prefixItems").and_then(Value::as_array);
        let (type_error, field_type) = if prefix.is_some() {
            ("tuple_type", "Tuple")
        } else if m.kw("uniqueItems") == Some(&Value::Bool(true)) {
            ("set_type", "Set")
        } else {
            ("list_type", "List")
        };
        let len = match &*v {
            Value::Array(a) => a.len(),
            _ => {
                self.push(type_error, loc, v.clone(), None);
                return;
            }
        };
        let max = match prefix {
            Some(p) if !matches!(m.kw("items"), Some(Value::Object(_))) => Some(p.len() as u64),
            _ => m.kw("maxItems").and_then(Value::as_u64),
        };
        if let Some(max) = max
            && len as u64 > max
        {
            self.push(
                "too_long",
                loc,
                v.clone(),
                Some(json!({ "field_type": field_type, "max_length": max, "actual_length": len })),
            );
            return;
        }
        let min = if prefix.is_some() {
            None
        } else {
            m.kw("minItems").and_then(Value::as_u64)
        };
        let original = match min {
            Some(min) if (len as u64) < min => Some(v.clone()),
            _ => None,
        };
        let missing_input = match self.missing {
            MissingInput::Parent if prefix.is_some_and(|p| p.len() > len) => v.clone(),
            _ => Value::Null,
        };
        let before = self.errors.len();
        if let Value::Array(items) = v {
            for (i, item) in items.iter_mut().enumerate() {
                let item_schema = match prefix.and_then(|p| p.get(i)) {
                    Some(s) => Some(s),
                    None => m.kw("items"),
                };
                if let Some(s) = item_schema {
                    self.node(s, item, &loc.join(i));
                }
            }
        }
        if let Some(p) = prefix {
            for i in len..p.len() {
                self.push("missing", &loc.join(i), missing_input.clone(), None);
            }
        }
        if self.errors.len() == before
            && let (Some(min), Some(original)) = (min, original)
        {
            self.push(
                "too_short",
                loc,
                original,
                Some(json!({ "field_type": field_type, "min_length": min, "actual_length": len })),
            );
        }
    }

    fn object(&mut self, m: &'s Map<String, Value>, v: &mut Value, loc: &Loc) {
        let props = m.kw("properties").and_then(Value::as_object);
        let additional = m.kw("additionalProperties");
        let Value::Object(obj) = v else {
            let kind = if props.is_some() {
                "model_attributes_type"
            } else {
                "dict_type"
            };
            self.push(kind, loc, v.clone(), None);
            return;
        };
        let Some(props) = props else {
            let len = obj.len();
            if let Some(max) = m.kw("maxProperties").and_then(Value::as_u64)
                && len as u64 > max
            {
                let ctx =
                    json!({ "field_type": "Dictionary", "max_length": max, "actual_length": len });
                self.push("too_long", loc, v.clone(), Some(ctx));
                return;
            }
            let before = self.errors.len();
            if let Some(s @ Value::Object(_)) = additional {
                for (k, val) in obj.iter_mut() {
                    self.node(s, val, &loc.join(k.clone()));
                }
            }
            if self.errors.len() == before
                && let Some(min) = m.kw("minProperties").and_then(Value::as_u64)
                && (len as u64) < min
            {
                let ctx =
                    json!({ "field_type": "Dictionary", "min_length": min, "actual_length": len });
                self.push("too_short", loc, v.clone(), Some(ctx));
            }
            return;
        };
        let required: Vec<&str> = m
            .kw("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let parent = match self.missing {
            MissingInput::Parent if required.iter().any(|r| !obj.contains_key(*r)) => {
                Value::Object(obj.clone())
            }
            _ => Value::Null,
        };
        for (name, prop) in props {
            match obj.get_mut(name) {
                Some(val) => self.node(prop, val, &loc.join(name.clone())),
                None if required.contains(&name.as_str()) => {
                    self.push("missing", &loc.join(name.clone()), parent.clone(), None);
                }
                None => {}
            }
        }
        match additional {
            Some(Value::Bool(false)) => {
                for (k, val) in obj.iter() {
                    if !props.contains_key(k) {
                        self.push("extra_forbidden", &loc.join(k.clone()), val.clone(), None);
                    }
                }
            }
            Some(s @ Value::Object(_)) => {
                for (k, val) in obj.iter_mut() {
                    if !props.contains_key(k) {
                        self.node(s, val, &loc.join(k.clone()));
                    }
                }
            }
            _ => {}
        }
    }
}

/// JSON equality with numbers compared by value (`1` equals `1.0`).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                x == y
            } else if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                x == y
            } else {
                x.as_f64() == y.as_f64()
            }
        }
        _ => a == b,
    }
}

// -------------------------------------------------------------------- lax int / float / bool

/// An integer as pydantic holds it: exact when it fits an `i128`, else only
/// its sign (Python would keep the big int; no Rust integer can).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Int {
    Small(i128),
    BigPos,
    BigNeg,
}

fn int_number(x: i128) -> Value {
    if let Ok(i) = i64::try_from(x) {
        Value::Number(i.into())
    } else if let Ok(u) = u64::try_from(x) {
        Value::Number(u.into())
    } else {
        Number::from_f64(x as f64).map_or(Value::Null, Value::Number)
    }
}

fn cmp_int(i: &Int, bound: &Number) -> Ordering {
    match i {
        Int::BigPos => Ordering::Greater,
        Int::BigNeg => Ordering::Less,
        Int::Small(x) => {
            if let Some(b) = bound.as_i64() {
                x.cmp(&i128::from(b))
            } else if let Some(b) = bound.as_u64() {
                x.cmp(&i128::from(b))
            } else {
                let b = bound.as_f64().unwrap_or(f64::NAN);
                (*x as f64).partial_cmp(&b).unwrap_or(Ordering::Equal)
            }
        }
    }
}

fn int_is_multiple(i: &Int, multiple: &Number) -> bool {
    let Int::Small(x) = i else {
        return true;
    };
    if let Some(k) = multiple
        .as_i64()
        .map(i128::from)
        .or(multiple.as_u64().map(i128::from))
    {
        return k == 0 || x % k == 0;
    }
    match multiple.as_f64() {
        Some(k) if k != 0.0 => (*x as f64 % k).abs() < f64::EPSILON,
        _ => true,
    }
}

/// The range of schemars' integer formats.
fn format_range(format: &str) -> Option<(i128, i128)> {
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

/// pydantic-core's `float_as_int`.
fn float_as_int(f: f64) -> Result<Int, &'static str> {
    if !f.is_finite() {
        Err("finite_number")
    } else if f % 1.0 != 0.0 {
        Err("int_from_float")
    } else if (i64::MIN as f64) < f && f < (i64::MAX as f64) {
        Ok(Int::Small(f as i128))
    } else {
        Err("int_parsing_size")
    }
}

enum IntSyntax {
    Ok(Int),
    TooLong,
    Invalid,
}

/// jiter's integer grammar: `-?(0|[1-9][0-9]*)` and nothing else.
fn json_int(s: &str) -> IntSyntax {
    let b = s.as_bytes();
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        _ => (false, b),
    };
    match digits {
        [] => return IntSyntax::Invalid,
        [b'0', _, ..] => return IntSyntax::Invalid,
        _ => {}
    }
    if !digits.iter().all(u8::is_ascii_digit) {
        return IntSyntax::Invalid;
    }
    if digits.len() > 4300 {
        return IntSyntax::TooLong;
    }
    match s.parse::<i128>() {
        Ok(x) => IntSyntax::Ok(Int::Small(x)),
        Err(_) if neg => IntSyntax::Ok(Int::BigNeg),
        Err(_) => IntSyntax::Ok(Int::BigPos),
    }
}

/// pydantic-core's `str_as_int`.
fn str_as_int(s: &str) -> Result<Int, &'static str> {
    match json_int(s) {
        IntSyntax::Ok(i) => return Ok(i),
        IntSyntax::TooLong => return Err("int_parsing_size"),
        IntSyntax::Invalid => {}
    }
    match clean_int_str(s) {
        Some(cleaned) => match json_int(&cleaned) {
            IntSyntax::Ok(i) => Ok(i),
            _ => Err("int_parsing"),
        },
        None => Err("int_parsing"),
    }
}

/// pydantic-core's `strip_underscores`.
fn strip_underscores(s: &str) -> Option<String> {
    if s.starts_with('_') || s.ends_with('_') || !s.contains('_') || s.contains("__") {
        None
    } else {
        Some(s.replace('_', ""))
    }
}

/// pydantic-core's `clean_int_str`: trims, drops a `+`, leading zeros, a
/// `.000` fraction and single underscores.
fn clean_int_str(s: &str) -> Option<String> {
    let len_before = s.len();
    let mut s = s.trim();
    if let Some(rest) = s.strip_prefix('+') {
        if rest.starts_with('-') {
            return None;
        }
        s = rest;
    }
    let mut negative = false;
    if let Some(rest) = s.strip_prefix('-') {
        if rest.starts_with('-') || rest.starts_with('+') {
            return None;
        }
        negative = true;
        s = rest;
    }
    s = strip_leading_zeros(s)?;
    if let Some(i) = s.find('.') {
        let decimals = &s[i + 1..];
        if !decimals.is_empty() && decimals.chars().all(|c| c == '0') {
            s = &s[..i];
        }
    }
    let sign = if negative { "-" } else { "" };
    if let Some(stripped) = strip_underscores(s) {
        return Some(format!("{sign}{stripped}"));
    }
    if len_before == s.len() {
        return None;
    }
    Some(format!("{sign}{s}"))
}

/// pydantic-core's `strip_leading_zeros`.
fn strip_leading_zeros(s: &str) -> Option<&str> {
    let mut chars = s.char_indices();
    match chars.next() {
        Some((_, '0')) => {}
        Some((_, c)) if c.is_ascii_digit() || c == '-' => return Some(s),
        _ => return None,
    }
    for (i, c) in chars {
        match c {
            '0' | '_' => {}
            '1'..='9' | '-' => return Some(&s[i..]),
            '.' => return Some(&s[i - 1..]),
            _ => return None,
        }
    }
    Some(&s[s.len() - 1..])
}

/// pydantic-core's `str_as_float` (Rust's `f64` grammar, which also takes
/// `inf` and `nan`, then the underscore-stripped form).
fn str_as_float(s: &str) -> Result<f64, &'static str> {
    if let Ok(f) = s.trim().parse::<f64>() {
        return Ok(f);
    }
    strip_underscores(s)
        .and_then(|t| t.parse::<f64>().ok())
        .ok_or("float_parsing")
}

/// pydantic-core's `str_as_bool`.
fn str_as_bool(s: &str) -> Option<bool> {
    const FALSE: [&str; 5] = ["f", "n", "no", "off", "false"];
    const TRUE: [&str; 5] = ["t", "y", "on", "yes", "true"];
    if s == "0" || FALSE.iter().any(|w| s.eq_ignore_ascii_case(w)) {
        Some(false)
    } else if s == "1" || TRUE.iter().any(|w| s.eq_ignore_ascii_case(w)) {
        Some(true)
    } else {
        None
    }
}

// -------------------------------------------------------------------- formats

/// String formats checked as pydantic checks the corresponding Python
/// types: `uuid.UUID`, `datetime`, `date` (speedate's grammar and words) and
/// URLs.
pub(crate) mod formats {
    use serde_json::Number;
    use std::fmt;

    // ---- UUID (the `uuid` crate's parser and error wording, as bundled in pydantic-core)

    pub(super) fn parse_uuid(s: &str) -> Result<(), String> {
        let b = s.as_bytes();
        let ok = match b.len() {
            32 => b.iter().all(u8::is_ascii_hexdigit),
            36 => hyphenated(b),
            38 => b.first() == Some(&b'{') && b.last() == Some(&b'}') && hyphenated(&b[1..37]),
            45 => b.starts_with(b"urn:uuid:") && hyphenated(&b[9..]),
            _ => false,
        };
        if ok { Ok(()) } else { Err(uuid_error(s)) }
    }

    fn hyphenated(b: &[u8]) -> bool {
        b.len() == 36
            && b.iter().enumerate().all(|(i, c)| {
                if matches!(i, 8 | 13 | 18 | 23) {
                    *c == b'-'
                } else {
                    c.is_ascii_hexdigit()
                }
            })
    }

    fn uuid_error(input: &str) -> String {
        let (body, offset, simple) =
            if input.len() >= 2 && input.starts_with('{') && input.ends_with('}') {
                (&input[1..input.len() - 1], 1, false)
            } else if let Some(rest) = input.strip_prefix("urn:uuid:") {
                (rest, 9, false)
            } else {
                (input, 0, true)
            };
        let mut hyphens = 0usize;
        let mut bounds = [0usize; 4];
        for (index, c) in body.char_indices() {
            if c == '-' {
                if let Some(slot) = bounds.get_mut(hyphens) {
                    *slot = index;
                }
                hyphens += 1;
            } else if !c.is_ascii_hexdigit() {
                return format!(
                    "invalid character: expected an optional prefix of `urn:uuid:` followed by [0-9a-fA-F-], found `{c}` at {}",
                    index + offset + 1
                );
            }
        }
        if hyphens == 0 && simple {
            format!(
                "invalid length: expected length 32 for simple format, found {}",
                input.len()
            )
        } else if hyphens != 4 {
            format!("invalid group count: expected 5, found {}", hyphens + 1)
        } else {
            const STARTS: [usize; 5] = [0, 9, 14, 19, 24];
            const EXPECTED: [usize; 5] = [8, 4, 4, 4, 12];
            for i in 0..4 {
                if bounds[i] != STARTS[i + 1] - 1 {
                    return format!(
                        "invalid group length in group {i}: expected {}, found {}",
                        EXPECTED[i],
                        bounds[i].saturating_sub(STARTS[i])
                    );
                }
            }
            format!(
                "invalid group length in group 4: expected 12, found {}",
                body.len().saturating_sub(STARTS[4])
            )
        }
    }

    // ---- URL (the checks of the `url` crate that a URL most often fails, with its words)

    pub(crate) fn check_url(s: &str) -> Result<(), &'static str> {
        let s = s.trim_matches(|c: char| c <= ' ');
        if s.is_empty() {
            return Err("input is empty");
        }
        let Some(colon) = s.find(':') else {
            return Err("relative URL without a base");
        };
        let scheme = &s[..colon];
        let valid_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !valid_scheme {
            return Err("relative URL without a base");
        }
        let special = matches!(
            scheme.to_ascii_lowercase().as_str(),
            "http" | "https" | "ws" | "wss" | "ftp"
        );
        if !special {
            return Ok(());
        }
        let rest = s[colon + 1..].trim_start_matches(['/', '\\']);
        let authority_end = rest.find(['/', '\\', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = if host_port.starts_with('[') {
            match host_port.find(']') {
                Some(end) => {
                    let after = &host_port[end + 1..];
                    (&host_port[..=end], after.strip_prefix(':'))
                }
                None => return Err("invalid IPv6 address"),
            }
        } else {
            match host_port.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (host_port, None),
            }
        };
        if host.is_empty() {
            return Err("empty host");
        }
        if let Some(port) = port
            && !port.is_empty()
            && (!port.chars().all(|c| c.is_ascii_digit()) || port.parse::<u16>().is_err())
        {
            return Err("invalid port number");
        }
        if host.starts_with('[') {
            let inner = &host[1..host.len() - 1];
            if inner.parse::<std::net::Ipv6Addr>().is_err() {
                return Err("invalid IPv6 address");
            }
            return Ok(());
        }
        const FORBIDDEN: &[char] = &[
            '\0', '\t', '\n', '\r', ' ', '#', '/', ':', '<', '>', '?', '@', '[', '\\', ']', '^',
            '|', '%',
        ];
        if host.contains(FORBIDDEN) {
            return Err("invalid domain character");
        }
        Ok(())
    }

    // ---- dates and datetimes (speedate's grammar and error wording)

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) struct Date {
        year: u16,
        month: u8,
        day: u8,
    }

    impl fmt::Display for Date {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) struct DateTime {
        date: Date,
        hour: u8,
        minute: u8,
        second: u8,
        microsecond: u32,
        pub(super) tz: Option<i32>,
    }

    impl fmt::Display for DateTime {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(
                f,
                "{}T{:02}:{:02}:{:02}",
                self.date, self.hour, self.minute, self.second
            )?;
            if self.microsecond != 0 {
                write!(f, ".{:06}", self.microsecond)?;
            }
            match self.tz {
                Some(0) => f.write_str("Z"),
                Some(offset) => {
                    let sign = if offset < 0 { '-' } else { '+' };
                    let abs = offset.unsigned_abs();
                    write!(f, "{sign}{:02}:{:02}", abs / 3600, abs % 3600 / 60)
                }
                None => Ok(()),
            }
        }
    }

    const TOO_SHORT: &str = "input is too short";
    const EXTRA: &str = "unexpected extra characters at the end of the input";

    fn digit(b: &[u8], i: usize, err: &'static str) -> Result<u8, &'static str> {
        match b.get(i) {
            Some(c) if c.is_ascii_digit() => Ok(c - b'0'),
            _ => Err(err),
        }
    }

    fn parse_date_partial(b: &[u8]) -> Result<Date, &'static str> {
        if b.len() < 10 {
            return Err(TOO_SHORT);
        }
        let mut year: u16 = 0;
        for i in 0..4 {
            year = year * 10 + u16::from(digit(b, i, "invalid character in year")?);
        }
        if b[4] != b'-' {
            return Err("invalid date separator, expected `-`");
        }
        let month = digit(b, 5, "invalid character in month")? * 10
            + digit(b, 6, "invalid character in month")?;
        if b[7] != b'-' {
            return Err("invalid date separator, expected `-`");
        }
        let day = digit(b, 8, "invalid character in day")? * 10
            + digit(b, 9, "invalid character in day")?;
        let leap =
            year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
        let max_day = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return Err("month value is outside expected range of 1-12"),
        };
        if day < 1 || day > max_day {
            return Err("day value is outside expected range");
        }
        Ok(Date { year, month, day })
    }

    fn parse_datetime_rfc3339(b: &[u8]) -> Result<DateTime, &'static str> {
        let date = parse_date_partial(b)?;
        if !matches!(b.get(10), Some(b'T' | b't' | b' ' | b'_')) {
            return Err("invalid datetime separator, expected `T`, `t`, `_` or space");
        }
        let o = 11;
        if b.len() < o + 5 {
            return Err(TOO_SHORT);
        }
        let hour = digit(b, o, "invalid character in hour")? * 10
            + digit(b, o + 1, "invalid character in hour")?;
        if b[o + 2] != b':' {
            return Err("invalid time separator, expected `:`");
        }
        let minute = digit(b, o + 3, "invalid character in minute")? * 10
            + digit(b, o + 4, "invalid character in minute")?;
        if hour > 23 {
            return Err("hour value is outside expected range of 0-23");
        }
        if minute > 59 {
            return Err("minute value is outside expected range of 0-59");
        }
        let mut pos = o + 5;
        let (mut second, mut microsecond) = (0u8, 0u32);
        if b.get(pos) == Some(&b':') {
            second = digit(b, pos + 1, "invalid character in second")? * 10
                + digit(b, pos + 2, "invalid character in second")?;
            if second > 59 {
                return Err("second value is outside expected range of 0-59");
            }
            pos += 3;
            if matches!(b.get(pos), Some(b'.' | b',')) {
                pos += 1;
                let mut n = 0usize;
                while let Some(c) = b.get(pos + n).filter(|c| c.is_ascii_digit()) {
                    if n < 6 {
                        microsecond = microsecond * 10 + u32::from(c - b'0');
                    }
                    n += 1;
                }
                if n == 0 {
                    return Err("second fraction digits missing after `.`");
                }
                if n < 6 {
                    microsecond *= 10u32.pow((6 - n) as u32);
                }
                pos += n;
            }
        }
        let mut tz = None;
        if let Some(&c) = b.get(pos) {
            pos += 1;
            if c == b'Z' || c == b'z' {
                tz = Some(0);
            } else {
                let sign = match c {
                    b'+' => 1,
                    b'-' => -1,
                    0xE2 if b.get(pos) == Some(&0x88) && b.get(pos + 1) == Some(&0x92) => {
                        pos += 2;
                        -1
                    }
                    _ => return Err("invalid timezone sign"),
                };
                let h1 = i32::from(digit(b, pos, "invalid timezone hour")?);
                let h2 = i32::from(digit(b, pos + 1, "invalid timezone hour")?);
                let m1 = match b.get(pos + 2) {
                    Some(b':') => {
                        pos += 3;
                        i32::from(digit(b, pos, "invalid timezone minute")?)
                    }
                    Some(c) if c.is_ascii_digit() => {
                        pos += 2;
                        i32::from(c - b'0')
                    }
                    _ => return Err("invalid timezone minute"),
                };
                let m2 = i32::from(digit(b, pos + 1, "invalid timezone minute")?);
                let minute_seconds = m1 * 600 + m2 * 60;
                if minute_seconds >= 3600 {
                    return Err("timezone minute value is outside expected range of 0-59");
                }
                let offset = sign * (h1 * 36000 + h2 * 3600 + minute_seconds);
                if offset.abs() >= 24 * 3600 {
                    return Err("timezone offset must be less than 24 hours");
                }
                tz = Some(offset);
                pos += 2;
            }
        }
        if b.len() > pos {
            return Err(EXTRA);
        }
        Ok(DateTime {
            date,
            hour,
            minute,
            second,
            microsecond,
            tz,
        })
    }

    /// speedate's `DateTime::parse_bytes`: RFC 3339, else a numeric string
    /// read as a unix timestamp.
    pub(super) fn parse_datetime(b: &[u8]) -> Result<DateTime, &'static str> {
        match parse_datetime_rfc3339(b) {
            Ok(dt) => Ok(dt),
            Err(e) => match numeric(b) {
                Some(ts) => from_timestamp(ts),
                None => Err(e),
            },
        }
    }

    /// A string of the form `-?[0-9]+(\.[0-9]+)?`, as a float.
    fn numeric(b: &[u8]) -> Option<f64> {
        let s = std::str::from_utf8(b).ok()?;
        let digits = s.strip_prefix('-').unwrap_or(s);
        let (int, frac) = digits.split_once('.').unwrap_or((digits, "0"));
        let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit());
        if all_digits(int) && all_digits(frac) {
            s.parse().ok()
        } else {
            None
        }
    }

    pub(super) fn datetime_from_number(n: &Number) -> Result<DateTime, &'static str> {
        match n.as_i64() {
            Some(i) => from_timestamp(i as f64),
            None => from_timestamp(n.as_f64().unwrap_or(f64::NAN)),
        }
    }

    const MS_WATERSHED: f64 = 20_000_000_000.0;
    const UNIX_1600: i64 = -11_676_096_000;
    const UNIX_9999: i64 = 253_402_300_799;

    /// A unix timestamp in seconds, or milliseconds beyond 2e10, as UTC.
    fn from_timestamp(ts: f64) -> Result<DateTime, &'static str> {
        if !ts.is_finite() {
            return Err("dates after 9999 are not supported as unix timestamps");
        }
        let seconds_f = if ts.abs() > MS_WATERSHED {
            ts / 1000.0
        } else {
            ts
        };
        let seconds = seconds_f.floor();
        if seconds < UNIX_1600 as f64 {
            return Err("dates before 1600 are not supported as unix timestamps");
        }
        if seconds > UNIX_9999 as f64 {
            return Err("dates after 9999 are not supported as unix timestamps");
        }
        let seconds = seconds as i64;
        let mut microsecond = ((seconds_f - seconds as f64) * 1_000_000.0).round() as u32;
        let mut seconds = seconds;
        if microsecond >= 1_000_000 {
            seconds += 1;
            microsecond -= 1_000_000;
        }
        let days = seconds.div_euclid(86_400);
        let secs = seconds.rem_euclid(86_400);
        Ok(DateTime {
            date: civil_from_days(days),
            hour: (secs / 3600) as u8,
            minute: (secs % 3600 / 60) as u8,
            second: (secs % 60) as u8,
            microsecond,
            tz: Some(0),
        })
    }

    /// Days since 1970-01-01 to a Gregorian date (Howard Hinnant's algorithm).
    fn civil_from_days(days: i64) -> Date {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as u16;
        Date { year, month, day }
    }

    pub(super) enum DateError {
        Parsing(&'static str),
        Inexact,
    }

    fn date_from_datetime(dt: DateTime) -> Result<Date, DateError> {
        if dt.hour == 0 && dt.minute == 0 && dt.second == 0 && dt.microsecond == 0 {
            Ok(dt.date)
        } else {
            Err(DateError::Inexact)
        }
    }

    /// speedate's `Date::parse_bytes`: `YYYY-MM-DD`, else an integer string
    /// read as a unix timestamp that must fall on midnight.
    pub(super) fn parse_date(b: &[u8]) -> Result<Date, &'static str> {
        let parsed =
            parse_date_partial(b).and_then(|d| if b.len() > 10 { Err(EXTRA) } else { Ok(d) });
        match parsed {
            Ok(d) => Ok(d),
            Err(e) => match numeric(b) {
                Some(ts) if !b.contains(&b'.') => match from_timestamp(ts) {
                    Ok(dt)
                        if dt.hour == 0
                            && dt.minute == 0
                            && dt.second == 0
                            && dt.microsecond == 0 =>
                    {
                        Ok(dt.date)
                    }
                    Ok(_) => Err("Timestamp is not an exact date"),
                    Err(e) => Err(e),
                },
                _ => Err(e),
            },
        }
    }

    impl DateTime {
        /// A date at 00:00:00, without timezone.
        pub(super) fn midnight(date: Date) -> DateTime {
            DateTime {
                date,
                hour: 0,
                minute: 0,
                second: 0,
                microsecond: 0,
                tz: None,
            }
        }
    }

    /// pydantic's lax `date` from a string: a date, else a datetime with a
    /// zero time (whose parse error is the one reported).
    pub(super) fn parse_date_lax(b: &[u8]) -> Result<Date, DateError> {
        if let Ok(d) = parse_date(b) {
            return Ok(d);
        }
        match parse_datetime(b) {
            Ok(dt) => date_from_datetime(dt),
            Err(e) => Err(DateError::Parsing(e)),
        }
    }

    pub(super) fn date_from_number(n: &Number) -> Result<Date, DateError> {
        datetime_from_number(n)
            .map_err(DateError::Parsing)
            .and_then(date_from_datetime)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn datetimes() {
            let ok = |s: &str| parse_datetime(s.as_bytes()).map(|d| d.to_string());
            assert_eq!(
                ok("2024-01-02T03:04:05Z"),
                Ok("2024-01-02T03:04:05Z".into())
            );
            assert_eq!(
                ok("2024-01-02 03:04:05.5+0130"),
                Ok("2024-01-02T03:04:05.500000+01:30".into())
            );
            assert_eq!(ok("2024-01-02T03:04"), Ok("2024-01-02T03:04:00".into()));
            assert_eq!(ok("1700000000"), Ok("2023-11-14T22:13:20Z".into()));
            assert_eq!(ok("2024-01-0"), Err(TOO_SHORT));
            assert_eq!(
                ok("2024-13-01T00:00:00"),
                Err("month value is outside expected range of 1-12")
            );
            assert_eq!(
                ok("2024-01-01x"),
                Err("invalid datetime separator, expected `T`, `t`, `_` or space")
            );
            assert_eq!(
                ok("2012-04-23T00:00:60"),
                Err("second value is outside expected range of 0-59")
            );
            assert_eq!(ok("2012-04-23T00:00X00"), Err("invalid timezone sign"));
            assert_eq!(
                ok("2012-04-23T00:00:00+24:00"),
                Err("timezone offset must be less than 24 hours")
            );
            assert_eq!(
                ok("2012-04-23T00:00:00."),
                Err("second fraction digits missing after `.`")
            );
            assert_eq!(ok("2012-04-23T00:00:00Zx"), Err(EXTRA));
        }

        #[test]
        fn uuids() {
            assert!(parse_uuid("67e55044-10b1-426f-9247-bb680e5fe0c8").is_ok());
            assert!(parse_uuid("67e5504410b1426f9247bb680e5fe0c8").is_ok());
            assert_eq!(
                parse_uuid("123"),
                Err("invalid length: expected length 32 for simple format, found 3".into())
            );
            assert_eq!(
                parse_uuid("not-a-uuid"),
                Err("invalid character: expected an optional prefix of `urn:uuid:` followed by [0-9a-fA-F-], found `n` at 1".into())
            );
            assert_eq!(
                parse_uuid("10c25fc2-835b-4ef3-bb3d-bf44fe496e"),
                Err("invalid group length in group 4: expected 12, found 10".into())
            );
        }

        #[test]
        fn urls() {
            assert_eq!(check_url("https://example.com/x"), Ok(()));
            assert_eq!(check_url("example.com"), Err("relative URL without a base"));
            assert_eq!(check_url("http://"), Err("empty host"));
            assert_eq!(check_url("http://a.com:99999/"), Err("invalid port number"));
            assert_eq!(check_url(""), Err("input is empty"));
            assert_eq!(check_url("mailto:x@y.z"), Ok(()));
        }
    }
}

#[cfg(test)]
mod plain_tests {
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
