//! The model contract: [`Validate`], the rules that `#[derive(Validate)]`
//! and `#[derive(JsonSchema)]` (ferrapi's, from `ferrapi::prelude`) read
//! from one `#[garde(...)]` attribute, and the two sides each rule has:
//! the check ([`rules`]) and the schema ([`constrain`]).
//!
//! # Why ferrapi interprets the rules itself
//!
//! garde checks `#[garde(...)]` and schemars reads the same attribute into
//! the JSON Schema, each with its own reading: `inner(...)` on an
//! `Option<Vec<String>>` is the `Vec` for garde and the strings for
//! schemars; `length(max = 3)` on a string counts bytes for garde and
//! characters in JSON Schema. The schema is what documents the field and
//! what the 422 messages are computed from ([`validate`](super::validate)),
//! so a disagreement is silent: the docs, the check and the message each
//! say something else. Here one parser (ferrapi's derive macros) reads the
//! attribute once, and each rule has exactly two implementations side by
//! side in this module: [`rules`] (the check on the typed value) and
//! [`constrain`] (the schema keywords, which drive the messages). A rule
//! that has no schema form is either check-only by nature (`custom`,
//! `matches`: pydantic's field and model validators, reported as
//! `value_error`) or refused at compile time.

use garde::{Error, Path, Report};
use serde_json::{Map, Value, json};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

/// A type whose values are checked after they are parsed: the rules of a
/// `#[derive(Validate)]` type's fields, its nested models' rules, and its
/// `custom` rules.
///
/// Derive it (from `ferrapi::prelude`) on request models; the framework
/// implements it for the standard types (numbers, strings, collections,
/// `Option`, `serde_json::Value`, …), which have no rules of their own.
///
/// ```
/// use ferrapi_core::validation::Validate;
///
/// assert!(42_i64.validate().is_ok());
/// assert!(vec!["a".to_owned()].validate().is_ok());
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement ferrapi's `Validate`",
    label = "`{Self}` needs `#[derive(Validate)]`",
    note = "add `Validate` to the type's derives: `#[derive(Deserialize, JsonSchema, Validate)]` with `use ferrapi::prelude::*;` (ferrapi's derive, which keeps the schema, the check and the 422 message in agreement)"
)]
pub trait Validate {
    /// Checks `self`, appending each failure to `report` under the path
    /// `parent()` (called only when there is a failure to report).
    fn validate_into(&self, parent: &mut dyn FnMut() -> Path, report: &mut Report);

    /// Checks the fields of a value that did not parse as a whole (another
    /// field failed): each field that parses on its own is checked, so that
    /// its `custom` rules are reported beside the other fields' errors, as
    /// pydantic runs a field's validators whenever that field parsed.
    /// Rules that need the whole value (container `custom` rules,
    /// `matches`) are not run. The default checks nothing.
    fn validate_fields(_value: &Value, _parent: &mut dyn FnMut() -> Path, _report: &mut Report)
    where
        Self: Sized,
    {
    }

    /// Checks `self`: `Ok` or every failure.
    fn validate(&self) -> Result<(), Report> {
        let mut report = Report::new();
        self.validate_into(&mut Path::empty, &mut report);
        if report.is_empty() {
            Ok(())
        } else {
            Err(report)
        }
    }
}

/// The path of a child (`key` below `parent`), built only when a failure
/// is reported.
#[doc(hidden)]
pub fn nested<'a, C>(parent: &'a mut dyn FnMut() -> Path, key: C) -> impl FnMut() -> Path + 'a
where
    C: garde::error::PathComponentKind + Clone + 'a,
{
    garde::util::__make_nested_path(parent, key)
}

macro_rules! no_rules {
    ($($t:ty),* $(,)?) => {$(
        impl Validate for $t {
            #[inline]
            fn validate_into(&self, _: &mut dyn FnMut() -> Path, _: &mut Report) {}
        }
    )*};
}

no_rules!(
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    str,
    String,
    (),
    Value,
    std::net::IpAddr,
    std::net::Ipv4Addr,
    std::net::Ipv6Addr,
    std::path::PathBuf,
    std::time::Duration,
);

impl<T: Validate + ?Sized> Validate for &T {
    fn validate_into(&self, parent: &mut dyn FnMut() -> Path, report: &mut Report) {
        (**self).validate_into(parent, report);
    }
}

impl<T: Validate + ?Sized> Validate for Box<T> {
    fn validate_into(&self, parent: &mut dyn FnMut() -> Path, report: &mut Report) {
        (**self).validate_into(parent, report);
    }
}

impl<T: Validate + ?Sized> Validate for std::sync::Arc<T> {
    fn validate_into(&self, parent: &mut dyn FnMut() -> Path, report: &mut Report) {
        (**self).validate_into(parent, report);
    }
}

impl<T: Validate + ToOwned + ?Sized> Validate for Cow<'_, T> {
    fn validate_into(&self, parent: &mut dyn FnMut() -> Path, report: &mut Report) {
        self.as_ref().validate_into(parent, report);
    }
}

impl<T: Validate> Validate for Option<T> {
    fn validate_into(&self, parent: &mut dyn FnMut() -> Path, report: &mut Report) {
        if let Some(v) = self {
            v.validate_into(parent, report);
        }
    }

    fn validate_fields(value: &Value, parent: &mut dyn FnMut() -> Path, report: &mut Report) {
        if !value.is_null() {
            T::validate_fields(value, parent, report);
        }
    }
}

/// Checks each element of a list under its index.
fn each<'a, T: Validate + 'a>(
    items: impl Iterator<Item = &'a T>,
    parent: &mut dyn FnMut() -> Path,
    report: &mut Report,
) {
    for (i, item) in items.enumerate() {
        let mut path = nested(&mut *parent, i);
        item.validate_into(&mut path, report);
    }
}

fn each_value<T: Validate>(value: &Value, parent: &mut dyn FnMut() -> Path, report: &mut Report) {
    if let Value::Array(items) = value {
        for (i, item) in items.iter().enumerate() {
            let mut path = nested(&mut *parent, i);
            T::validate_fields(item, &mut path, report);
        }
    }
}

macro_rules! list {
    ($($t:ident),*) => {$(
        impl<T: Validate> Validate for $t<T> {
            fn validate_into(&self, parent: &mut dyn FnMut() -> Path, report: &mut Report) {
                each(self.iter(), parent, report);
            }
            fn validate_fields(value: &Value, parent: &mut dyn FnMut() -> Path, report: &mut Report) {
                each_value::<T>(value, parent, report);
            }
        }
    )*};
}

list!(Vec, VecDeque, BTreeSet);

impl<T: Validate, S> Validate for HashSet<T, S> {
    fn validate_into(&self, parent: &mut dyn FnMut() -> Path, report: &mut Report) {
        each(self.iter(), parent, report);
    }
}

impl<T: Validate> Validate for [T] {
    fn validate_into(&self, parent: &mut dyn FnMut() -> Path, report: &mut Report) {
        each(self.iter(), parent, report);
    }
}

impl<T: Validate, const N: usize> Validate for [T; N] {
    fn validate_into(&self, parent: &mut dyn FnMut() -> Path, report: &mut Report) {
        each(self.iter(), parent, report);
    }
}

impl<K: std::fmt::Display, V: Validate, S> Validate for HashMap<K, V, S> {
    fn validate_into(&self, parent: &mut dyn FnMut() -> Path, report: &mut Report) {
        for (k, v) in self {
            let mut path = nested(&mut *parent, k.to_string());
            v.validate_into(&mut path, report);
        }
    }
}

impl<K: std::fmt::Display, V: Validate> Validate for BTreeMap<K, V> {
    fn validate_into(&self, parent: &mut dyn FnMut() -> Path, report: &mut Report) {
        for (k, v) in self {
            let mut path = nested(&mut *parent, k.to_string());
            v.validate_into(&mut path, report);
        }
    }
}

macro_rules! tuple {
    ($(($($n:tt $t:ident),+))*) => {$(
        impl<$($t: Validate),+> Validate for ($($t,)+) {
            fn validate_into(&self, parent: &mut dyn FnMut() -> Path, report: &mut Report) {
                $({
                    let mut path = nested(&mut *parent, $n);
                    self.$n.validate_into(&mut path, report);
                })+
            }
        }
    )*};
}

tuple! {
    (0 A)
    (0 A, 1 B)
    (0 A, 1 B, 2 C)
    (0 A, 1 B, 2 C, 3 D)
}

/// The checks of each rule on a typed value (the other side of each rule
/// is in [`constrain`]). Called by the code that `#[derive(Validate)]`
/// generates; the messages are pydantic's, though the framework reports
/// schema-expressed failures from the schema walk.
pub mod rules {
    use super::*;

    /// A value with a length: characters for strings (as JSON Schema's
    /// `maxLength` and pydantic count), elements for lists, sets and maps.
    /// `None` (an absent `Option`) has no length and passes.
    pub trait Length {
        /// The length, or `None` for an absent optional value.
        fn length(&self) -> Option<usize>;
    }

    impl Length for str {
        fn length(&self) -> Option<usize> {
            Some(self.chars().count())
        }
    }
    impl Length for String {
        fn length(&self) -> Option<usize> {
            Some(self.chars().count())
        }
    }
    impl Length for Cow<'_, str> {
        fn length(&self) -> Option<usize> {
            Some(self.chars().count())
        }
    }
    impl<T> Length for [T] {
        fn length(&self) -> Option<usize> {
            Some(self.len())
        }
    }
    impl<T, const N: usize> Length for [T; N] {
        fn length(&self) -> Option<usize> {
            Some(N)
        }
    }
    macro_rules! len {
        ($($t:ty => [$($g:tt)*]),*) => {$(
            impl<$($g)*> Length for $t {
                fn length(&self) -> Option<usize> {
                    Some(self.len())
                }
            }
        )*};
    }
    len!(Vec<T> => [T], VecDeque<T> => [T], BTreeSet<T> => [T], HashSet<T, S> => [T, S],
        BTreeMap<K, V> => [K, V], HashMap<K, V, S> => [K, V, S]);
    impl<T: Length + ?Sized> Length for &T {
        fn length(&self) -> Option<usize> {
            (**self).length()
        }
    }
    impl<T: Length + ?Sized> Length for Box<T> {
        fn length(&self) -> Option<usize> {
            (**self).length()
        }
    }
    impl<T: Length> Length for Option<T> {
        fn length(&self) -> Option<usize> {
            self.as_ref().and_then(Length::length)
        }
    }

    /// `length(min = …, max = …)`.
    pub fn length<T: Length + ?Sized>(v: &T, min: usize, max: usize) -> Result<(), Error> {
        match v.length() {
            Some(n) if n < min => Err(Error::new(format!("length is lower than {min}"))),
            Some(n) if n > max => Err(Error::new(format!("length is greater than {max}"))),
            _ => Ok(()),
        }
    }

    /// A value compared with bounds: numbers (and `Option`s of them).
    pub trait Bounded {
        /// The type of the bounds.
        type Bound: PartialOrd + std::fmt::Display;
        /// The value, or `None` for an absent optional value.
        fn value(&self) -> Option<&Self::Bound>;
    }
    macro_rules! bounded {
        ($($t:ty),*) => {$(
            impl Bounded for $t {
                type Bound = $t;
                fn value(&self) -> Option<&$t> {
                    Some(self)
                }
            }
        )*};
    }
    bounded!(
        u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64
    );
    impl<T: Bounded> Bounded for Option<T> {
        type Bound = T::Bound;
        fn value(&self) -> Option<&T::Bound> {
            self.as_ref().and_then(Bounded::value)
        }
    }
    impl<T: Bounded + ?Sized> Bounded for &T {
        type Bound = T::Bound;
        fn value(&self) -> Option<&T::Bound> {
            (**self).value()
        }
    }

    /// `range(min = …, max = …)` (inclusive, as JSON Schema's `minimum`
    /// and `maximum` and pydantic's `ge` and `le`).
    pub fn range<T: Bounded + ?Sized>(
        v: &T,
        min: Option<T::Bound>,
        max: Option<T::Bound>,
    ) -> Result<(), Error> {
        let Some(v) = v.value() else { return Ok(()) };
        if let Some(min) = min
            && *v < min
        {
            return Err(Error::new(format!("greater than or equal to {min}")));
        }
        if let Some(max) = max
            && *v > max
        {
            return Err(Error::new(format!("less than or equal to {max}")));
        }
        Ok(())
    }

    /// A value checked as text: strings (and `Option`s of them).
    pub trait Text {
        /// The text, or `None` for an absent optional value.
        fn text(&self) -> Option<&str>;
    }
    impl Text for str {
        fn text(&self) -> Option<&str> {
            Some(self)
        }
    }
    impl Text for String {
        fn text(&self) -> Option<&str> {
            Some(self)
        }
    }
    impl Text for Cow<'_, str> {
        fn text(&self) -> Option<&str> {
            Some(self)
        }
    }
    impl<T: Text + ?Sized> Text for &T {
        fn text(&self) -> Option<&str> {
            (**self).text()
        }
    }
    impl<T: Text + ?Sized> Text for Box<T> {
        fn text(&self) -> Option<&str> {
            (**self).text()
        }
    }
    impl<T: Text> Text for Option<T> {
        fn text(&self) -> Option<&str> {
            self.as_ref().and_then(Text::text)
        }
    }

    /// `pattern("…")`: the regular expression matches somewhere in the
    /// text (JSON Schema's `pattern`, unanchored).
    pub fn pattern<T: Text + ?Sized>(v: &T, re: &regex::Regex) -> Result<(), Error> {
        match v.text() {
            Some(s) if !re.is_match(s) => Err(Error::new(format!(
                "String should match pattern '{}'",
                re.as_str()
            ))),
            _ => Ok(()),
        }
    }

    /// `email`: pydantic's `EmailStr` check (the schema's `format: email`).
    pub fn email<T: Text + ?Sized>(v: &T) -> Result<(), Error> {
        match v.text().map(crate::validation::validate_email) {
            Some(Err(reason)) => Err(Error::new(format!(
                "value is not a valid email address: {reason}"
            ))),
            _ => Ok(()),
        }
    }

    /// `url`: pydantic's `AnyUrl` check (the schema's `format: uri`).
    pub fn url<T: Text + ?Sized>(v: &T) -> Result<(), Error> {
        match v.text().map(crate::validation::formats::check_url) {
            Some(Err(reason)) => Err(Error::new(format!("Input should be a valid URL, {reason}"))),
            _ => Ok(()),
        }
    }

    /// `ip`, `ipv4`, `ipv6`: the schema's `format: ipv4`/`ipv6`
    /// (`ipvanyaddress` for either, as pydantic's `IPvAnyAddress`).
    pub fn ip<T: Text + ?Sized>(v: &T, kind: IpKind) -> Result<(), Error> {
        match v.text() {
            Some(s) if !kind.accepts(s) => Err(Error::new(kind.message())),
            _ => Ok(()),
        }
    }

    /// Which addresses `ip` accepts.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum IpKind {
        /// IPv4 or IPv6.
        Any,
        /// IPv4 only.
        V4,
        /// IPv6 only.
        V6,
    }

    impl IpKind {
        /// Whether `s` is an address of this kind.
        pub fn accepts(self, s: &str) -> bool {
            match self {
                IpKind::Any => s.parse::<std::net::IpAddr>().is_ok(),
                IpKind::V4 => s.parse::<std::net::Ipv4Addr>().is_ok(),
                IpKind::V6 => s.parse::<std::net::Ipv6Addr>().is_ok(),
            }
        }
        /// The JSON Schema `format`.
        pub fn format(self) -> &'static str {
            match self {
                IpKind::Any => "ipvanyaddress",
                IpKind::V4 => "ipv4",
                IpKind::V6 => "ipv6",
            }
        }
        /// pydantic's `(type, message)` for a refused address.
        pub fn pydantic(self) -> (&'static str, &'static str) {
            match self {
                IpKind::Any => (
                    "ip_any_address",
                    "value is not a valid IPv4 or IPv6 address",
                ),
                IpKind::V4 => ("ip_v4_address", "Input is not a valid IPv4 address"),
                IpKind::V6 => ("ip_v6_address", "Input is not a valid IPv6 address"),
            }
        }
        fn message(self) -> &'static str {
            self.pydantic().1
        }
    }

    /// A value that may be absent: `Option` (and `ferrapi::Patch`).
    pub trait Presence {
        /// Whether a value is there.
        fn is_present(&self) -> bool;
    }
    impl<T> Presence for Option<T> {
        fn is_present(&self) -> bool {
            self.is_some()
        }
    }

    /// `required` on an `Option`: the value must be present.
    pub fn required<T: Presence + ?Sized>(v: &T) -> Result<(), Error> {
        if v.is_present() {
            Ok(())
        } else {
            Err(Error::new("Field required"))
        }
    }

    /// `matches(other)`: two fields hold the same value.
    pub fn matches<T: PartialEq + ?Sized>(v: &T, other: &T, name: &str) -> Result<(), Error> {
        if v == other {
            Ok(())
        } else {
            Err(Error::new(format!("does not match {name} field")))
        }
    }

    /// garde's `inner(...)` traversal: the elements of a list, the contents
    /// of an `Option`.
    pub use garde::rules::inner::apply as inner;
}

/// Literal text as a regular expression (for `contains`, `prefix`,
/// `suffix`, which are patterns in the schema).
pub fn escape(s: &str) -> String {
    regex::escape(s)
}

/// The rule of a field, in schema terms, as the derive macros describe it
/// to [`constrain`].
#[derive(Debug, Clone)]
pub enum Rule {
    /// `length(min, max)`: `minLength`/`maxLength` on strings,
    /// `minItems`/`maxItems` on lists, `minProperties`/`maxProperties` on
    /// maps.
    Length {
        /// The least length, if any.
        min: Option<usize>,
        /// The greatest length, if any.
        max: Option<usize>,
    },
    /// `range(min, max)`: `minimum`/`maximum` (JSON numbers).
    Range {
        /// The least value, if any.
        min: Option<Value>,
        /// The greatest value, if any.
        max: Option<Value>,
    },
    /// A regular expression (`pattern`, and `contains`, `prefix`,
    /// `suffix`, `ascii`, `alphanumeric` as patterns).
    Pattern(Cow<'static, str>),
    /// A string `format` (`email`, `uri`, `ipv4`, `ipv6`,
    /// `ipvanyaddress`).
    Format(&'static str),
    /// `required` on an `Option`: the property is required and not
    /// nullable.
    Required,
    /// `inner(...)`: the contents of an `Option`, or the items of a list.
    Inner(Vec<Rule>),
}

/// A field's rules: its property name (after serde's renames) and rules.
#[derive(Debug, Clone)]
pub struct FieldRules {
    /// The property (`None` for the single field of a newtype, whose
    /// schema is the type's).
    pub property: Option<&'static str>,
    /// The rules, in the order written.
    pub rules: Vec<Rule>,
}

/// Writes the rules of each field into the schema of its type (the
/// object `schema`, whose `properties` hold the fields): the schema side
/// of each rule that [`rules`] checks.
///
/// `inner(...)` follows garde's reading: on an `Option` (a nullable
/// schema) it is the option's contents, the same schema; on a list it is
/// the items.
///
/// ```
/// use ferrapi_core::validation::{FieldRules, Rule, constrain};
/// use serde_json::json;
///
/// // `#[garde(inner(length(max = 3), inner(length(min = 1, max = 5))))]`
/// // on `tags: Option<Vec<String>>`:
/// let mut schema = json!({"type": "object", "properties": {
///     "tags": {"type": ["array", "null"], "items": {"type": "string"}}
/// }});
/// let rules = [FieldRules {
///     property: Some("tags"),
///     rules: vec![Rule::Inner(vec![
///         Rule::Length { min: None, max: Some(3) },
///         Rule::Inner(vec![Rule::Length { min: Some(1), max: Some(5) }]),
///     ])],
/// }];
/// constrain(schema.as_object_mut().unwrap(), &rules);
/// assert_eq!(schema["properties"]["tags"], json!({
///     "type": ["array", "null"], "maxItems": 3,
///     "items": {"type": "string", "minLength": 1, "maxLength": 5}
/// }));
/// ```
pub fn constrain(schema: &mut Map<String, Value>, fields: &[FieldRules]) {
    for field in fields {
        if field.rules.is_empty() {
            continue;
        }
        match field.property {
            None => apply(schema, &field.rules, true),
            Some(name) => {
                if field.rules.iter().any(|r| matches!(r, Rule::Required)) {
                    match schema.get_mut("required") {
                        Some(Value::Array(req)) => {
                            if !req.iter().any(|r| r == name) {
                                req.push(json!(name));
                            }
                        }
                        _ => {
                            schema.insert("required".into(), json!([name]));
                        }
                    }
                }
                if let Some(Value::Object(node)) =
                    schema.get_mut("properties").and_then(|p| p.get_mut(name))
                {
                    apply(node, &field.rules, true);
                }
            }
        }
    }
}

/// The JSON Schema types a node allows (`type` as a string or a list).
fn types(node: &Map<String, Value>) -> Vec<&str> {
    match node.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The non-null member of a nullable union (`anyOf: [X, {type: null}]`).
fn non_null_member(node: &mut Map<String, Value>) -> Option<&mut Map<String, Value>> {
    let members = node.get_mut("anyOf")?.as_array_mut()?;
    if members.len() != 2 {
        return None;
    }
    let null_at = members
        .iter()
        .position(|m| m.get("type").and_then(Value::as_str) == Some("null"))?;
    members[1 - null_at].as_object_mut()
}

fn is_nullable(node: &Map<String, Value>) -> bool {
    types(node).contains(&"null")
        || node
            .get("anyOf")
            .and_then(Value::as_array)
            .is_some_and(|m| {
                m.iter()
                    .any(|m| m.get("type").and_then(Value::as_str) == Some("null"))
            })
}

/// Applies `rules` to `node`. `option` says whether an `Option` layer may
/// still be unwrapped by `inner` (garde's `inner` on an `Option` is its
/// contents; below that, `inner` is a list's items).
fn apply(node: &mut Map<String, Value>, rules: &[Rule], option: bool) {
    // A nullable union around a referenced or composite schema
    // (`Option<Model>`): the rules are about the non-null member.
    let required = rules.iter().any(|r| matches!(r, Rule::Required));
    if let Some(member) = non_null_member(node) {
        let mut flat = Vec::new();
        for rule in rules {
            match rule {
                Rule::Required => {}
                Rule::Inner(inner) if option => flat.extend(inner.iter().cloned()),
                other => flat.push(other.clone()),
            }
        }
        // `{"$ref": …}` members take sibling keywords (JSON Schema 2020-12).
        apply(member, &flat, false);
        if required {
            strip_null(node);
        }
        return;
    }
    let nullable = is_nullable(node);
    for rule in rules {
        match rule {
            Rule::Length { min, max } => {
                let ts = types(node);
                let (lo, hi) = if ts.contains(&"string") {
                    ("minLength", "maxLength")
                } else if ts.contains(&"array") {
                    ("minItems", "maxItems")
                } else if ts.contains(&"object") {
                    ("minProperties", "maxProperties")
                } else {
                    ("minLength", "maxLength")
                };
                if let Some(min) = min {
                    node.insert(lo.into(), json!(min));
                }
                if let Some(max) = max
                    && *max != usize::MAX
                {
                    node.insert(hi.into(), json!(max));
                }
            }
            Rule::Range { min, max } => {
                if let Some(min) = min {
                    node.insert("minimum".into(), min.clone());
                }
                if let Some(max) = max {
                    node.insert("maximum".into(), max.clone());
                }
            }
            Rule::Pattern(p) => {
                node.insert("pattern".into(), json!(p));
            }
            Rule::Format(f) => {
                node.insert("format".into(), json!(f));
            }
            Rule::Required => strip_null(node),
            Rule::Inner(inner) => {
                // An `Option` is a nullable schema, or (`#[schemars(with =
                // …)]`) no list at all: its contents are the same node.
                let list = node.contains_key("items") || node.contains_key("additionalProperties");
                if option && (nullable || !list) {
                    apply(node, inner, false);
                } else if let Some(Value::Object(items)) = node.get_mut("items") {
                    apply(items, inner, true);
                } else if let Some(Value::Object(values)) = node.get_mut("additionalProperties") {
                    apply(values, inner, true);
                }
            }
        }
    }
}

/// Removes `null` from a node's allowed types (`required` on an `Option`).
fn strip_null(node: &mut Map<String, Value>) {
    match node.get_mut("type") {
        Some(Value::Array(ts)) => {
            ts.retain(|t| t != "null");
            if ts.len() == 1 {
                let t = ts.remove(0);
                node.insert("type".into(), t);
            }
        }
        _ => {
            if let Some(Value::Array(members)) = node.get("anyOf")
                && members.len() == 2
                && let Some(keep) = members
                    .iter()
                    .find(|m| m.get("type").and_then(Value::as_str) != Some("null"))
                    .cloned()
            {
                node.remove("anyOf");
                if let Value::Object(keep) = keep {
                    for (k, v) in keep {
                        node.entry(k).or_insert(v);
                    }
                }
            }
        }
    }
}

/// Adds the failures of a field's check to `report` under the field.
#[doc(hidden)]
pub fn push(report: &mut Report, parent: &mut dyn FnMut() -> Path, result: Result<(), Error>) {
    if let Err(e) = result {
        report.append(parent(), e);
    }
}
