//! The schema walker: validates a JSON value against a schemars-derived JSON
//! Schema the way pydantic v2 (lax mode) validates a Python value against a
//! model, coercing lax inputs in place and reporting every failure in
//! pydantic's words.
//!
//! The walker owns the traversal (`$ref`s, objects, lists, tuples, maps,
//! unions, enums and constants) and the schema's constraints (bounds,
//! lengths, patterns, `multipleOf`). What a scalar is in lax mode comes
//! from [`coerce`], string formats from [`formats`], dates and datetimes
//! from [`datetime`], and what the schema says (`$ref` targets, union
//! labels, discriminators) from [`Schema`].

use super::coerce::{self, Int, cmp_int, int_is_multiple, int_number};
use super::datetime::{self, DateError, DateTime};
use super::formats;
use super::messages::{self, error, expected_list, py_repr};
use super::schema::{Keyword, Schema, const_of, format_range, variants};
use super::{ErrorItem, Loc};
use serde_json::{Map, Number, Value, json};
use std::cmp::Ordering;

/// How deep the walker follows schemas (`$ref` hops plus value nesting)
/// before it gives up on a branch: recursive types must not loop forever.
const MAX_DEPTH: usize = 256;
/// How many schema nodes one [`validate`] call may visit while trying union
/// members: each member is tried on a copy of the input, so nested unions
/// could otherwise cost exponential time on hostile input. Past the budget,
/// union members are accepted unchecked (the typed parse that follows still
/// refuses what is wrong). Outside unions the walk is linear in the input.
const MAX_UNION_STEPS: usize = 20_000;

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
    walker.node(schema.root(), value, loc);
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
        if let Some(format) = format
            && let Some(e) = formats::check(format, s, loc, v)
        {
            self.errors.push(e);
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
            Value::String(s) => datetime::parse_datetime(s.as_bytes()).or_else(|_| {
                datetime::parse_date(s.as_bytes())
                    .map(DateTime::midnight)
                    .map_err(|e| ("datetime_from_date_parsing", e))
            }),
            Value::Number(n) => {
                datetime::datetime_from_number(n).map_err(|e| ("datetime_parsing", e))
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
            Value::String(s) => datetime::parse_date_lax(s.as_bytes()),
            Value::Number(n) => datetime::date_from_number(n),
            _ => {
                self.push("date_type", loc, v.clone(), None);
                return;
            }
        };
        match parsed {
            Ok(d) => *v = Value::String(d.to_string()),
            Err(DateError::Inexact) => {
                self.push("date_from_datetime_inexact", loc, v.clone(), None);
            }
            Err(DateError::Parsing(e)) => self.push(
                "date_from_datetime_parsing",
                loc,
                v.clone(),
                Some(json!({ "error": e })),
            ),
        }
    }

    // ---------------------------------------------------------------- numbers

    fn integer(&mut self, m: &'s Map<String, Value>, v: &mut Value, loc: &Loc) {
        let i = match coerce::lax_int(v) {
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
        let f = match coerce::lax_float(v) {
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
        if v.is_boolean() {
            return;
        }
        match coerce::lax_bool(v) {
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
