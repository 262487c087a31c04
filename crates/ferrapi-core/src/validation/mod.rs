//! FastAPI-shaped validation errors and the schema-driven validator.
//!
//! # The 422 vocabulary
//!
//! A failed request answers `422` with `{"detail": [ErrorItem, …]}`, each
//! item shaped exactly as pydantic v2 shapes its errors:
//! `{"type", "loc", "msg", "input", "ctx"?}`. [`ErrorItem`] is that item,
//! [`Loc`] its location (`["body", "address", "city"]`, `["body", "tags", 0]`,
//! `["query", "limit"]`).
//!
//! # Why a validator of our own
//!
//! serde stops at the first error and has no notion of pydantic's lax mode
//! (`"30"` accepted for an integer); garde reports messages without kinds or
//! parameters, with Rust field names in alphabetical order. The one place that
//! knows every field, its serde name, its declaration order and its
//! constraints is the JSON Schema that schemars derives from the type (it
//! reads `#[garde(...)]` attributes). [`validate`] walks a JSON value against
//! that schema: it coerces lax inputs in place, checks types and constraints
//! of every field, and reports every failure in pydantic's words, in
//! declaration order. No crate on the registry maps JSON Schema failures to
//! pydantic's error types and messages, hence this module.
//!
//! The extractors walk the schema only when they must: a JSON body, or
//! parameters of a type without constraints beyond its Rust types
//! ([`Schema::is_plain`]), are parsed strictly by serde and checked by garde
//! first, and walked only when that fails; parameters of a constrained type
//! and headers arrive as strings and always take the walk, which is what
//! coerces them.
//!
//! # Layout
//!
//! One concern per file: the 422 vocabulary here; `schema` (the prepared
//! [`Schema`]), `walk` (the walker), `coerce` (pydantic's lax scalars),
//! `formats` (uuid, url, e-mail and IP checks), `datetime` (dates and
//! datetimes), `email` (the e-mail check), `messages` (pydantic's words),
//! `params` (string parameters as a JSON value), `json` (errors of a
//! malformed body), `model` (the [`Validate`] trait and its rules),
//! `garde_map` (garde's reports in pydantic's words), and `pipeline`: the
//! extractors' fast and slow paths, public for the `ferrapi` crate and
//! hidden from these docs.

mod coerce;
mod datetime;
mod email;
mod formats;
mod garde_map;
mod json;
mod messages;
mod model;
mod params;
#[doc(hidden)]
pub mod pipeline;
mod schema;
mod walk;

pub use email::validate_email;
pub use garde_map::{from_garde, from_garde_with};
pub use json::{json_invalid, missing_body, model_attributes_type};
pub use model::{FieldRules, Rule, Validate, constrain, escape, nested, push, rules};
pub use params::params_to_value;
pub use schema::Schema;
pub use walk::{MissingInput, validate};

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

/// Where a request value came from: the first element of every [`Loc`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The request body (JSON, form, multipart).
    Body,
    /// The query string.
    Query,
    /// A path template variable.
    Path,
    /// A request header.
    Header,
    /// A cookie.
    Cookie,
}

impl Source {
    /// The name FastAPI uses: `body`, `query`, `path`, `header`, `cookie`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Body => "body",
            Source::Query => "query",
            Source::Path => "path",
            Source::Header => "header",
            Source::Cookie => "cookie",
        }
    }
}

/// One element of a [`Loc`]: an object key or a list index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LocItem {
    /// An object key (serialized as a JSON string).
    Key(Cow<'static, str>),
    /// A list index (serialized as a JSON number).
    Index(usize),
}

impl From<&'static str> for LocItem {
    fn from(s: &'static str) -> Self {
        LocItem::Key(Cow::Borrowed(s))
    }
}
impl From<String> for LocItem {
    fn from(s: String) -> Self {
        LocItem::Key(Cow::Owned(s))
    }
}
impl From<usize> for LocItem {
    fn from(i: usize) -> Self {
        LocItem::Index(i)
    }
}

impl Serialize for LocItem {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            LocItem::Key(k) => s.serialize_str(k),
            LocItem::Index(i) => s.serialize_u64(*i as u64),
        }
    }
}

impl fmt::Display for LocItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocItem::Key(k) => f.write_str(k),
            LocItem::Index(i) => write!(f, "{i}"),
        }
    }
}

/// The location of an error: `["body", "address", "city"]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Loc(pub Vec<LocItem>);

impl Loc {
    /// A location with only its source: `["body"]`, `["query"]`, …
    pub fn source(source: Source) -> Self {
        Loc(vec![LocItem::Key(Cow::Borrowed(source.as_str()))])
    }
    /// This location with one more element.
    #[must_use]
    pub fn join(&self, item: impl Into<LocItem>) -> Self {
        let mut v = Vec::with_capacity(self.0.len() + 1);
        v.extend(self.0.iter().cloned());
        v.push(item.into());
        Loc(v)
    }
    /// The elements.
    pub fn items(&self) -> &[LocItem] {
        &self.0
    }
}

impl Serialize for Loc {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// One validation error, shaped as pydantic v2 (and so FastAPI) shapes it.
///
/// ```
/// use ferrapi_core::validation::{ErrorItem, Loc, Source};
/// use serde_json::json;
///
/// let item = ErrorItem::new(
///     "string_too_short",
///     Loc::source(Source::Body).join("name"),
///     "String should have at least 2 characters",
///     json!("a"),
/// )
/// .with_ctx(json!({"min_length": 2}));
/// assert_eq!(
///     serde_json::to_value(&item).unwrap(),
///     json!({"type": "string_too_short", "loc": ["body", "name"],
///            "msg": "String should have at least 2 characters",
///            "input": "a", "ctx": {"min_length": 2}})
/// );
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorItem {
    /// pydantic's error type (`missing`, `int_parsing`, `string_too_short`, …).
    pub kind: Cow<'static, str>,
    /// Where the error is.
    pub loc: Loc,
    /// pydantic's message.
    pub msg: String,
    /// The offending input (for `missing`, the enclosing object or `null`).
    pub input: Value,
    /// The error's parameters, where pydantic has them.
    pub ctx: Option<Map<String, Value>>,
}

impl ErrorItem {
    /// An item without `ctx`.
    pub fn new(
        kind: impl Into<Cow<'static, str>>,
        loc: Loc,
        msg: impl Into<String>,
        input: Value,
    ) -> Self {
        Self {
            kind: kind.into(),
            loc,
            msg: msg.into(),
            input,
            ctx: None,
        }
    }

    /// Sets `ctx` from a JSON object (anything else is ignored).
    #[must_use]
    pub fn with_ctx(mut self, ctx: Value) -> Self {
        if let Value::Object(map) = ctx {
            self.ctx = Some(map);
        }
        self
    }
}

impl Serialize for ErrorItem {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(if self.ctx.is_some() { 5 } else { 4 }))?;
        m.serialize_entry("type", &self.kind)?;
        m.serialize_entry("loc", &self.loc)?;
        m.serialize_entry("msg", &self.msg)?;
        m.serialize_entry("input", &self.input)?;
        if let Some(ctx) = &self.ctx {
            m.serialize_entry("ctx", ctx)?;
        }
        m.end()
    }
}

/// Every validation error of one request: the body of a 422.
#[derive(Debug, Clone, Default, PartialEq, thiserror::Error)]
#[error("{} validation error(s)", .0.len())]
pub struct ValidationErrors(pub Vec<ErrorItem>);

impl ValidationErrors {
    /// The JSON body FastAPI answers: `{"detail": [...]}`.
    pub fn body(&self) -> Value {
        serde_json::json!({ "detail": self.0 })
    }
    /// True when there is no error.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
