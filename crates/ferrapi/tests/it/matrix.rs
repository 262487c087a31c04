//! Issue 18's test matrix: every `#[garde(...)]` rule × field shape ×
//! extractor, each cell asserting the three things pydantic keeps in
//! agreement for the same constraint: (1) the OpenAPI document shows the
//! constraint, (2) a value at the limit is accepted and one past it
//! refused, (3) the 422 item is pydantic's (`type`, `loc`, `msg`, `input`,
//! `ctx`, exactly).
//!
//! # Layout
//!
//! One model per rule, one field per shape: `plain: T`, `opt: Option<T>`,
//! `list: Vec<T>`, `opt_list: Option<Vec<T>>`; `…Path` holds the scalar
//! field(s) for `Path<…>`, and `…Nest { nested: … }` is the nested shape
//! (every field of the rule's model, one level down). Each model is served
//! by one generic route per extractor ([`serve`]), and each rule has a
//! table of probes ([`Rule`]): which fields to set for the value at the
//! limit and for the one past it, and pydantic's error for the latter. The
//! cells are the probes run on every extractor where they can be sent.
//!
//! # Cells skipped, and why
//!
//! - `Path` × `Vec`, `Option<Vec>`: a path variable is one segment, never a
//!   list (FastAPI refuses list path parameters too).
//! - `Path` × `Option`: a path variable is always present (FastAPI requires
//!   every path parameter), so `Option` is always `Some`: the plain cell.
//! - nested × query, header, cookie, form, path: parameters and form
//!   fields are flat strings; a nested model is a JSON body only.
//! - `length` on lists × plain, `Option` scalar: a list rule needs a list
//!   (on a string it is the `length` on strings row).
//! - `required` × plain, `Vec`, and × path: `required` means "the
//!   `Option` must be `Some`"; on any other type it does not compile
//!   (`Presence` is implemented for `Option` and `Patch` only), and a path
//!   variable is always present.
//! - `inner` × plain, and × path: `inner` traverses an `Option` or a list;
//!   on a scalar it does not compile.
//! - `length` on lists × path: no list in a path.
//! - Parameters (query, header, cookie, form, path) × an empty list or
//!   `null`: a query string, headers, cookies and form fields cannot say
//!   `[]` or `null` (an absent key is "absent", tested as such); those
//!   probes run on JSON bodies only.
//! - Cookie × a non-ASCII value: tested on its own
//!   (`a_cookie_outside_ascii_is_read_as_latin_1`: read as Latin-1, as
//!   Starlette reads it).
//!
//! # Known gaps
//!
//! `KNOWN_GAPS` lists cells that must keep failing until fixed: none now.
//! The matrix found five, each fixed with the test that found it:
//! `required` on an `Option` in query, cookie and form (`missing`), a
//! default that was checked (`a_default_is_not_validated`), a non-ASCII
//! cookie that was dropped, and a nested model in a parameter or a list in a
//! path, which built (`a_nested_model_is_not_a_parameter`,
//! `a_list_is_not_a_path_parameter`: now build errors, as in FastAPI).
//!
//! # Size
//!
//! 413 cells (rule × field × extractor, the nested shape counted per
//! field) are probed and 423 schema checks run (one per field × extractor
//! that documents it).

use axum::body::Body;
use ferrapi::prelude::*;
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use std::fmt::Write as _;
use tower::ServiceExt;

// ------------------------------------------------------------------ models

/// A rule on every shape, as garde reads it: the rule itself on the value
/// and on an `Option` (its contents), `inner(…)` on a list's items,
/// `inner(inner(…))` on an `Option` of a list. The `@` form spells each
/// shape's attribute out.
macro_rules! model {
    ($name:ident, $path:ident, $nest:ident, $t:ty, $($rule:tt)+) => {
        model!(@ $name, $path, $nest, $t,
            [$($rule)+], [$($rule)+], [inner($($rule)+)], [inner(inner($($rule)+))]);
    };
    (@ $name:ident, $path:ident, $nest:ident, $t:ty,
        [$($p:tt)*], [$($o:tt)*], [$($l:tt)*], [$($ol:tt)*]) => {
        // The fields are read by the checks, not by the handlers.
        #[allow(dead_code)]
        #[derive(Deserialize, JsonSchema, Validate)]
        struct $name {
            #[garde($($p)*)]
            plain: $t,
            #[garde($($o)*)]
            opt: Option<$t>,
            #[garde($($l)*)]
            #[serde(default)]
            list: Vec<$t>,
            #[garde($($ol)*)]
            opt_list: Option<Vec<$t>>,
        }
        #[allow(dead_code)]
        #[derive(Deserialize, JsonSchema, Validate)]
        struct $path {
            #[garde($($p)*)]
            plain: $t,
        }
        nest!($nest, $name);
    };
}

/// The nested shape: the rule's model one level down.
macro_rules! nest {
    ($nest:ident, $name:ident) => {
        #[allow(dead_code)]
        #[derive(Deserialize, JsonSchema, Validate)]
        struct $nest {
            nested: $name,
        }
    };
}

model!(
    LenStr,
    LenStrPath,
    LenStrNest,
    String,
    length(min = 2, max = 5)
);
model!(Range, RangePath, RangeNest, i64, range(min = 1, max = 10));
model!(
    Pattern,
    PatternPath,
    PatternNest,
    String,
    pattern("^[a-z]+$")
);
model!(
    Contains,
    ContainsPath,
    ContainsNest,
    String,
    contains("a.b")
);
model!(Prefix, PrefixPath, PrefixNest, String, prefix("a.b"));
model!(Suffix, SuffixPath, SuffixNest, String, suffix("a.b"));
model!(Ascii, AsciiPath, AsciiNest, String, ascii);
model!(Alnum, AlnumPath, AlnumNest, String, alphanumeric);
model!(Email, EmailPath, EmailNest, String, email);
model!(Url, UrlPath, UrlNest, String, url);
model!(Ip, IpPath, IpNest, String, ip);
model!(Ipv4, Ipv4Path, Ipv4Nest, String, ipv4);
model!(Ipv6, Ipv6Path, Ipv6Nest, String, ipv6);

/// pydantic's `AfterValidator`: at most 5 characters.
fn short(v: &str, _: &()) -> ferrapi::garde::Result {
    if v.chars().count() <= 5 {
        Ok(())
    } else {
        Err(ferrapi::garde::Error::new("at most 5 characters"))
    }
}

// `custom(f)` on an `Option` hands `f` the `Option`: `inner(custom(f))` is
// the rule on its contents.
model!(@ Custom, CustomPath, CustomNest, String,
    [custom(short)], [inner(custom(short))], [inner(custom(short))], [inner(inner(custom(short)))]);

/// `length` on lists: pydantic's `Field(min_length=1, max_length=3)` on a
/// list (`length` on an `Option` of a list is the list's).
#[allow(dead_code)]
#[derive(Deserialize, JsonSchema, Validate)]
struct LenList {
    #[garde(length(min = 1, max = 3))]
    #[serde(default)]
    list: Vec<String>,
    #[garde(length(min = 1, max = 3))]
    opt_list: Option<Vec<String>>,
}
nest!(LenListNest, LenList);

/// `required` on an `Option`: a required field in pydantic.
#[allow(dead_code)]
#[derive(Deserialize, JsonSchema, Validate)]
struct Required {
    #[garde(required)]
    opt: Option<String>,
    #[garde(required)]
    opt_list: Option<Vec<String>>,
}
nest!(RequiredNest, Required);

/// `inner`: an `Option`'s contents, a list's items, and on an `Option` of a
/// list the list (issue 18, item 1).
#[allow(dead_code)]
#[derive(Deserialize, JsonSchema, Validate)]
struct Inner {
    #[garde(inner(length(max = 5)))]
    opt: Option<String>,
    #[garde(inner(length(max = 5)))]
    #[serde(default)]
    list: Vec<String>,
    #[garde(inner(length(max = 2), inner(length(max = 5))))]
    opt_list: Option<Vec<String>>,
}
nest!(InnerNest, Inner);

/// `matches(field)`: each shape twice, the second matching the first.
#[allow(dead_code)]
#[derive(Deserialize, JsonSchema, Validate)]
struct Matches {
    plain: String,
    #[garde(matches(plain))]
    plain2: String,
    opt: Option<String>,
    #[garde(matches(opt))]
    opt2: Option<String>,
    #[serde(default)]
    list: Vec<String>,
    #[garde(matches(list))]
    #[serde(default)]
    list2: Vec<String>,
    opt_list: Option<Vec<String>>,
    #[garde(matches(opt_list))]
    opt_list2: Option<Vec<String>>,
}
#[allow(dead_code)]
#[derive(Deserialize, JsonSchema, Validate)]
struct MatchesPath {
    plain: String,
    #[garde(matches(plain))]
    plain2: String,
}
nest!(MatchesNest, Matches);

// ------------------------------------------------------------------ routes

/// What the extractors need of a model.
trait Model: DeserializeOwned + JsonSchema + ferrapi::Validate + Send + 'static {}
impl<T: DeserializeOwned + JsonSchema + ferrapi::Validate + Send + 'static> Model for T {}

fn ok() -> Text {
    Text("ok".to_owned())
}
async fn body<T: Model>(Json(_): Json<T>) -> Text {
    ok()
}
async fn query<T: Model>(Query(_): Query<T>) -> Text {
    ok()
}
async fn header<T: Model>(Header(_): Header<T>) -> Text {
    ok()
}
async fn cookie<T: Model>(Cookie(_): Cookie<T>) -> Text {
    ok()
}
async fn form<T: Model>(Form(_): Form<T>) -> Text {
    ok()
}
async fn path<T: Model>(Path(_): Path<T>) -> Text {
    ok()
}

/// One route per extractor for the rule `name`'s model `X` (and its
/// nested form `N`): `/<name>/body`, `/<name>/nested`, `/<name>/query`, …
fn serve<X: Model, N: Model>(app: App, name: &str) -> App {
    let at = |ex: &str| format!("/{name}/{ex}");
    let id = |ex: &str| format!("{name}_{ex}");
    app.route(Route::post(at("body"), body::<X>).operation_id(id("body")))
        .route(Route::post(at("nested"), body::<N>).operation_id(id("nested")))
        .route(Route::get(at("query"), query::<X>).operation_id(id("query")))
        .route(Route::get(at("header"), header::<X>).operation_id(id("header")))
        .route(Route::get(at("cookie"), cookie::<X>).operation_id(id("cookie")))
        .route(Route::post(at("form"), form::<X>).operation_id(id("form")))
}

/// The `Path` route of a rule whose model has scalar fields.
fn serve_path<P: Model>(app: App, name: &str, vars: &[&str]) -> App {
    let template: String = vars.iter().map(|v| format!("/{{{v}}}")).collect();
    app.route(
        Route::get(format!("/{name}/path{template}"), path::<P>)
            .operation_id(format!("{name}_path")),
    )
}

fn app() -> App {
    let mut app = App::new();
    macro_rules! with_path {
        ($($name:literal: $x:ty, $p:ty, $n:ty;)*) => {$(
            app = serve::<$x, $n>(app, $name);
            app = serve_path::<$p>(app, $name, &["plain"]);
        )*};
    }
    with_path! {
        "len_str": LenStr, LenStrPath, LenStrNest;
        "range": Range, RangePath, RangeNest;
        "pattern": Pattern, PatternPath, PatternNest;
        "contains": Contains, ContainsPath, ContainsNest;
        "prefix": Prefix, PrefixPath, PrefixNest;
        "suffix": Suffix, SuffixPath, SuffixNest;
        "ascii": Ascii, AsciiPath, AsciiNest;
        "alphanumeric": Alnum, AlnumPath, AlnumNest;
        "email": Email, EmailPath, EmailNest;
        "url": Url, UrlPath, UrlNest;
        "ip": Ip, IpPath, IpNest;
        "ipv4": Ipv4, Ipv4Path, Ipv4Nest;
        "ipv6": Ipv6, Ipv6Path, Ipv6Nest;
        "custom": Custom, CustomPath, CustomNest;
    }
    app = serve::<LenList, LenListNest>(app, "len_list");
    app = serve::<Required, RequiredNest>(app, "required");
    app = serve::<Inner, InnerNest>(app, "inner");
    app = serve::<Matches, MatchesNest>(app, "matches");
    serve_path::<MatchesPath>(app, "matches", &["plain", "plain2"])
}

// ------------------------------------------------------------------ the tables

/// The extractors, and the route each has under a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ex {
    Body,
    Nested,
    Query,
    Header,
    Cookie,
    Form,
    Path,
}

const EXTRACTORS: [Ex; 7] = [
    Ex::Body,
    Ex::Nested,
    Ex::Query,
    Ex::Header,
    Ex::Cookie,
    Ex::Form,
    Ex::Path,
];

impl Ex {
    fn source(self) -> &'static str {
        match self {
            Ex::Body | Ex::Nested | Ex::Form => "body",
            Ex::Query => "query",
            Ex::Header => "header",
            Ex::Cookie => "cookie",
            Ex::Path => "path",
        }
    }
    /// Values arrive as text (and are reported as text).
    fn is_text(self) -> bool {
        !matches!(self, Ex::Body | Ex::Nested)
    }
    /// The name of a field's parameter (headers: `_` → `-`, as FastAPI).
    fn name(self, field: &str) -> String {
        if self == Ex::Header {
            field.replace('_', "-")
        } else {
            field.to_owned()
        }
    }
}

/// The `input` of the expected error.
#[derive(Clone)]
enum Input {
    /// This value (as text on parameters).
    Is(Value),
    /// A `missing` field: the enclosing object on bodies (pydantic),
    /// `null` on parameters (FastAPI).
    Missing,
}

/// One probe: the fields set for the value at the limit (`ok`) and for
/// the one past it (`bad`; `None` leaves the field out), and the one error
/// pydantic gives for the latter.
#[derive(Clone)]
struct Probe {
    ok: Vec<(&'static str, Option<Value>)>,
    bad: Vec<(&'static str, Option<Value>)>,
    kind: &'static str,
    /// The `loc` after the source (`["plain"]`, `["list", 0]`).
    loc: Vec<Value>,
    msg: String,
    input: Input,
    ctx: Option<Value>,
}

/// What the document must show of a field.
struct SchemaCheck {
    field: &'static str,
    /// The keywords are on the list's items.
    items: bool,
    /// Keywords and values the field's schema has (after `$ref` and the
    /// non-null member of an `Option`).
    has: Value,
    /// Keywords it must not have (rules that are not in a schema).
    lacks: &'static [&'static str],
    /// The field is required (in `required`; `required: true` on a
    /// parameter).
    required: bool,
}

/// A rule's row of the matrix.
struct Rule {
    name: &'static str,
    /// Valid values of the model's required fields.
    base: Value,
    /// The variables of the `Path` route (empty: no path cells).
    path: &'static [&'static str],
    schema: Vec<SchemaCheck>,
    probes: Vec<Probe>,
}

const SHAPES: [&str; 4] = ["plain", "opt", "list", "opt_list"];

fn is_list(field: &str) -> bool {
    field.starts_with("list") || field.starts_with("opt_list")
}

/// A probe of a rule on a scalar, on each of `fields`: a list field gets
/// the value as its only item, and the error is at that item.
fn scalar(
    fields: &[&'static str],
    ok: Value,
    bad: Value,
    kind: &'static str,
    msg: &str,
    ctx: Option<Value>,
) -> Vec<Probe> {
    fields
        .iter()
        .map(|&f| {
            let wrap = |v: &Value| if is_list(f) { json!([v]) } else { v.clone() };
            let mut loc = vec![json!(f)];
            if is_list(f) {
                loc.push(json!(0));
            }
            Probe {
                ok: vec![(f, Some(wrap(&ok)))],
                bad: vec![(f, Some(wrap(&bad)))],
                kind,
                loc,
                msg: msg.to_owned(),
                input: Input::Is(bad.clone()),
                ctx: ctx.clone(),
            }
        })
        .collect()
}

/// The schema of a rule on a scalar, on every shape.
fn scalar_schema(has: Value, lacks: &'static [&'static str]) -> Vec<SchemaCheck> {
    SHAPES
        .iter()
        .map(|&field| {
            let mut has = has.clone();
            // An `Option` is nullable.
            if field == "opt"
                && let Some(t) = has.get("type").cloned()
            {
                has["type"] = json!([t, "null"]);
            }
            SchemaCheck {
                field,
                items: is_list(field),
                has,
                lacks,
                required: field == "plain",
            }
        })
        .collect()
}

/// A pattern rule: pydantic's `string_pattern_mismatch`.
fn pattern_rule(name: &'static str, pattern: &str, ok: &str, bad: &str) -> Rule {
    Rule {
        name,
        base: json!({"plain": ok}),
        path: &["plain"],
        schema: scalar_schema(json!({"type": "string", "pattern": pattern}), &[]),
        probes: scalar(
            &SHAPES,
            json!(ok),
            json!(bad),
            "string_pattern_mismatch",
            &format!("String should match pattern '{pattern}'"),
            Some(json!({"pattern": pattern})),
        ),
    }
}

/// A format rule whose error has no `ctx` (`ip`, `ipv4`, `ipv6`).
fn ip_rule(
    name: &'static str,
    format: &str,
    ok: &str,
    bad: &str,
    kind: &'static str,
    msg: &str,
) -> Rule {
    Rule {
        name,
        base: json!({"plain": ok}),
        path: &["plain"],
        schema: scalar_schema(json!({"type": "string", "format": format}), &[]),
        probes: scalar(&SHAPES, json!(ok), json!(bad), kind, msg, None),
    }
}

fn too_long_list(field: &'static str, max: usize, ok: Value, bad: Value) -> Probe {
    let actual = bad.as_array().map_or(0, Vec::len);
    Probe {
        ok: vec![(field, Some(ok))],
        bad: vec![(field, Some(bad.clone()))],
        kind: "too_long",
        loc: vec![json!(field)],
        msg: format!("List should have at most {max} items after validation, not {actual}"),
        input: Input::Is(bad),
        ctx: Some(json!({"field_type": "List", "max_length": max, "actual_length": actual})),
    }
}

fn rules() -> Vec<Rule> {
    let mut rules = Vec::new();

    // `length` on strings: characters, as pydantic counts them.
    let mut probes = scalar(
        &SHAPES,
        json!("abcde"),
        json!("abcdef"),
        "string_too_long",
        "String should have at most 5 characters",
        Some(json!({"max_length": 5})),
    );
    probes.extend(scalar(
        &SHAPES,
        json!("ab"),
        json!("a"),
        "string_too_short",
        "String should have at least 2 characters",
        Some(json!({"min_length": 2})),
    ));
    // 5 characters in 10 bytes.
    probes.extend(scalar(
        &SHAPES,
        json!("ééééé"),
        json!("éééééé"),
        "string_too_long",
        "String should have at most 5 characters",
        Some(json!({"max_length": 5})),
    ));
    rules.push(Rule {
        name: "len_str",
        base: json!({"plain": "abc"}),
        path: &["plain"],
        schema: scalar_schema(
            json!({"type": "string", "minLength": 2, "maxLength": 5}),
            &[],
        ),
        probes,
    });

    // `length` on lists.
    let mut probes = Vec::new();
    for field in ["list", "opt_list"] {
        probes.push(too_long_list(
            field,
            3,
            json!(["a", "b", "c"]),
            json!(["a", "b", "c", "d"]),
        ));
        // An empty list can only be sent in JSON.
        probes.push(Probe {
            ok: vec![(field, Some(json!(["a"])))],
            bad: vec![(field, Some(json!([])))],
            kind: "too_short",
            loc: vec![json!(field)],
            msg: "List should have at least 1 item after validation, not 0".into(),
            input: Input::Is(json!([])),
            ctx: Some(json!({"field_type": "List", "min_length": 1, "actual_length": 0})),
        });
    }
    rules.push(Rule {
        name: "len_list",
        // `list` is sent: its default (`[]`) fails `min = 1`, see
        // `a_default_is_not_validated`.
        base: json!({"list": ["a"]}),
        path: &[],
        schema: ["list", "opt_list"]
            .into_iter()
            .map(|field| SchemaCheck {
                field,
                items: false,
                has: json!({"minItems": 1, "maxItems": 3}),
                lacks: &["minLength", "maxLength"],
                required: false,
            })
            .collect(),
        probes,
    });

    // `range`: pydantic's `ge`, `le`.
    let mut probes = scalar(
        &SHAPES,
        json!(10),
        json!(11),
        "less_than_equal",
        "Input should be less than or equal to 10",
        Some(json!({"le": 10})),
    );
    probes.extend(scalar(
        &SHAPES,
        json!(1),
        json!(0),
        "greater_than_equal",
        "Input should be greater than or equal to 1",
        Some(json!({"ge": 1})),
    ));
    rules.push(Rule {
        name: "range",
        base: json!({"plain": 5}),
        path: &["plain"],
        schema: scalar_schema(json!({"type": "integer", "minimum": 1, "maximum": 10}), &[]),
        probes,
    });

    // Patterns, and the rules that are patterns in the schema (literal
    // text escaped: `a.b` does not match `axb`).
    rules.push(pattern_rule("pattern", "^[a-z]+$", "abc", "abc1"));
    rules.push(pattern_rule("contains", r"a\.b", "xa.by", "xaxby"));
    rules.push(pattern_rule("prefix", r"^a\.b", "a.bc", "axbc"));
    rules.push(pattern_rule("suffix", r"a\.b$", "xa.b", "xa.bx"));
    rules.push(pattern_rule("ascii", r"^[\x00-\x7F]*$", "ab~", "abé"));
    // Letters and digits of any script, as garde's `alphanumeric`.
    let mut alnum = pattern_rule("alphanumeric", r"^[\p{Alphabetic}\p{N}]*$", "ab1", "a-1");
    let more = pattern_rule("alphanumeric", r"^[\p{Alphabetic}\p{N}]*$", "aé1", "aé-");
    alnum.probes.extend(more.probes);
    rules.push(alnum);

    // `email`: pydantic's `EmailStr`.
    let reason = "An email address must have an @-sign.";
    rules.push(Rule {
        name: "email",
        base: json!({"plain": "a@example.com"}),
        path: &["plain"],
        schema: scalar_schema(json!({"type": "string", "format": "email"}), &[]),
        probes: scalar(
            &SHAPES,
            json!("a@example.com"),
            json!("x"),
            "value_error",
            &format!("value is not a valid email address: {reason}"),
            Some(json!({"reason": reason})),
        ),
    });

    // `url`: pydantic's `AnyUrl`.
    rules.push(Rule {
        name: "url",
        base: json!({"plain": "https://example.com/"}),
        path: &["plain"],
        schema: scalar_schema(json!({"type": "string", "format": "uri"}), &[]),
        probes: scalar(
            &SHAPES,
            json!("https://example.com/a"),
            json!("example"),
            "url_parsing",
            "Input should be a valid URL, relative URL without a base",
            Some(json!({"error": "relative URL without a base"})),
        ),
    });

    // `ip`, `ipv4`, `ipv6`: pydantic's `IPvAnyAddress`, `IPv4Address`,
    // `IPv6Address`.
    rules.push(ip_rule(
        "ip",
        "ipvanyaddress",
        "::1",
        "1.2.3",
        "ip_any_address",
        "value is not a valid IPv4 or IPv6 address",
    ));
    rules.push(ip_rule(
        "ipv4",
        "ipv4",
        "1.2.3.4",
        "::1",
        "ip_v4_address",
        "Input is not a valid IPv4 address",
    ));
    rules.push(ip_rule(
        "ipv6",
        "ipv6",
        "::1",
        "1.2.3.4",
        "ip_v6_address",
        "Input is not a valid IPv6 address",
    ));

    // `required` on an `Option`: a required field, not nullable.
    let mut probes = Vec::new();
    for (field, value, null_kind, null_msg) in [
        (
            "opt",
            json!("a"),
            "string_type",
            "Input should be a valid string",
        ),
        (
            "opt_list",
            json!(["a"]),
            "list_type",
            "Input should be a valid list",
        ),
    ] {
        probes.push(Probe {
            ok: vec![(field, Some(value.clone()))],
            bad: vec![(field, None)],
            kind: "missing",
            loc: vec![json!(field)],
            msg: "Field required".into(),
            input: Input::Missing,
            ctx: None,
        });
        // `null` (JSON only) is not a value of the type.
        probes.push(Probe {
            ok: vec![(field, Some(value))],
            bad: vec![(field, Some(Value::Null))],
            kind: null_kind,
            loc: vec![json!(field)],
            msg: null_msg.into(),
            input: Input::Is(Value::Null),
            ctx: None,
        });
    }
    rules.push(Rule {
        name: "required",
        base: json!({"opt": "a", "opt_list": ["a"]}),
        path: &[],
        schema: vec![
            SchemaCheck {
                field: "opt",
                items: false,
                has: json!({"type": "string"}),
                lacks: &["anyOf"],
                required: true,
            },
            SchemaCheck {
                field: "opt_list",
                items: false,
                has: json!({"type": "array"}),
                lacks: &["anyOf"],
                required: true,
            },
        ],
        probes,
    });

    // `inner`: an `Option`'s contents, a list's items; on an `Option` of a
    // list, `inner` is the list and `inner(inner(…))` its items.
    let mut probes = scalar(
        &["opt", "list", "opt_list"],
        json!("abcde"),
        json!("abcdef"),
        "string_too_long",
        "String should have at most 5 characters",
        Some(json!({"max_length": 5})),
    );
    probes.push(too_long_list(
        "opt_list",
        2,
        json!(["a", "b"]),
        json!(["a", "b", "c"]),
    ));
    rules.push(Rule {
        name: "inner",
        base: json!({}),
        path: &[],
        schema: vec![
            SchemaCheck {
                field: "opt",
                items: false,
                has: json!({"maxLength": 5}),
                lacks: &["maxItems"],
                required: false,
            },
            SchemaCheck {
                field: "list",
                items: true,
                has: json!({"maxLength": 5}),
                lacks: &["maxItems"],
                required: false,
            },
            SchemaCheck {
                field: "opt_list",
                items: false,
                has: json!({"maxItems": 2}),
                lacks: &["maxLength"],
                required: false,
            },
            SchemaCheck {
                field: "opt_list",
                items: true,
                has: json!({"maxLength": 5}),
                lacks: &["maxItems"],
                required: false,
            },
        ],
        probes,
    });

    // `custom`: pydantic's `AfterValidator`, not in the schema.
    rules.push(Rule {
        name: "custom",
        base: json!({"plain": "abc"}),
        path: &["plain"],
        schema: scalar_schema(
            json!({"type": "string"}),
            &["maxLength", "pattern", "format"],
        ),
        probes: scalar(
            &SHAPES,
            json!("abcde"),
            json!("abcdef"),
            "value_error",
            "Value error, at most 5 characters",
            Some(json!({"error": "at most 5 characters"})),
        ),
    });

    // `matches`: a model validator comparing two fields (what the guide
    // documents: `value_error` at the second field).
    let mut probes = Vec::new();
    for (first, second, a, b) in [
        ("plain", "plain2", json!("a"), json!("b")),
        ("opt", "opt2", json!("a"), json!("b")),
        ("list", "list2", json!(["a"]), json!(["b"])),
        ("opt_list", "opt_list2", json!(["a"]), json!(["b"])),
    ] {
        let msg = format!("does not match {first} field");
        probes.push(Probe {
            ok: vec![(first, Some(a.clone())), (second, Some(a.clone()))],
            bad: vec![(first, Some(a)), (second, Some(b.clone()))],
            kind: "value_error",
            loc: vec![json!(second)],
            msg: format!("Value error, {msg}"),
            input: Input::Is(b),
            ctx: Some(json!({"error": msg})),
        });
    }
    rules.push(Rule {
        name: "matches",
        base: json!({"plain": "a", "plain2": "a"}),
        path: &["plain", "plain2"],
        schema: ["plain2", "opt2", "list2", "opt_list2"]
            .into_iter()
            .map(|field| SchemaCheck {
                field,
                items: false,
                has: json!({}),
                lacks: &["const", "enum", "pattern"],
                required: field == "plain2",
            })
            .collect(),
        probes,
    });

    rules
}

// ------------------------------------------------------------------ requests

/// The application, called as a tower service: header values outside
/// ASCII must be sent as bytes (Starlette reads them as Latin-1), which
/// `TestClient::header` cannot.
struct Client(axum::Router);

impl Client {
    fn new() -> Client {
        Client(app().into_router().expect("the matrix's routes are valid"))
    }

    async fn call(&self, req: Request<Body>) -> (StatusCode, Value) {
        let res = match self.0.clone().oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, body)
    }

    async fn openapi(&self) -> Value {
        let req = Request::get("/openapi.json").body(Body::empty()).unwrap();
        self.call(req).await.1
    }

    /// Sends `fields` to the rule's route for `ex`.
    async fn send(&self, rule: &Rule, ex: Ex, fields: &Map<String, Value>) -> (StatusCode, Value) {
        let name = rule.name;
        let req = match ex {
            Ex::Body => json_request(&format!("/{name}/body"), &Value::Object(fields.clone())),
            Ex::Nested => json_request(&format!("/{name}/nested"), &json!({"nested": fields})),
            Ex::Query => {
                let uri = format!("/{name}/query?{}", urlencoded(fields));
                Request::get(uri).body(Body::empty()).unwrap()
            }
            Ex::Header => {
                let mut req = Request::get(format!("/{name}/header"));
                for (k, v) in pairs(fields) {
                    req = req.header(ex.name(&k), header_value(&v));
                }
                req.body(Body::empty()).unwrap()
            }
            Ex::Cookie => {
                let cookie: Vec<String> = pairs(fields).map(|(k, v)| format!("{k}={v}")).collect();
                let mut req = Request::get(format!("/{name}/cookie"));
                if !cookie.is_empty() {
                    req = req.header("cookie", header_value(&cookie.join("; ")));
                }
                req.body(Body::empty()).unwrap()
            }
            Ex::Form => Request::post(format!("/{name}/form"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(urlencoded(fields)))
                .unwrap(),
            Ex::Path => {
                let mut uri = format!("/{name}/path");
                for var in rule.path {
                    let v = fields.get(*var).map(text).unwrap_or_default();
                    uri.push('/');
                    uri.push_str(&percent_encode(&v));
                }
                Request::get(uri).body(Body::empty()).unwrap()
            }
        };
        self.call(req).await
    }
}

fn json_request(uri: &str, body: &Value) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

/// A JSON scalar as a parameter's text.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A value as it comes back in an error `input` from a parameter.
fn textify(v: &Value) -> Value {
    match v {
        Value::Array(items) => Value::Array(items.iter().map(textify).collect()),
        Value::Null => Value::Null,
        other => Value::String(text(other)),
    }
}

/// Name/value pairs: a list is one pair per item.
fn pairs(fields: &Map<String, Value>) -> impl Iterator<Item = (String, String)> + '_ {
    fields.iter().flat_map(|(k, v)| match v {
        Value::Array(items) => items
            .iter()
            .map(|i| (k.clone(), text(i)))
            .collect::<Vec<_>>(),
        other => vec![(k.clone(), text(other))],
    })
}

fn urlencoded(fields: &Map<String, Value>) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs(fields) {
        out.append_pair(&k, &v);
    }
    out.finish()
}

/// Header text as bytes: ASCII as is, other characters up to U+00FF as
/// Latin-1 (how Starlette decodes header values).
fn header_value(s: &str) -> HeaderValue {
    let bytes: Vec<u8> = s
        .chars()
        .map(|c| u8::try_from(u32::from(c)).expect("a Latin-1 character"))
        .collect();
    HeaderValue::from_bytes(&bytes).unwrap()
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

// ------------------------------------------------------------------ cells

/// Whether `ex` can carry every value of `set` (see the module docs).
fn sendable(rule: &Rule, ex: Ex, set: &[(&'static str, Option<Value>)]) -> bool {
    let values = || set.iter().filter_map(|(_, v)| v.as_ref());
    let mut strings = Vec::new();
    fn collect<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
        match v {
            Value::Array(items) => items.iter().for_each(|i| collect(i, out)),
            other => out.push(other),
        }
    }
    values().for_each(|v| collect(v, &mut strings));
    match ex {
        Ex::Body | Ex::Nested => true,
        _ if values().any(|v| v.is_null() || v.as_array().is_some_and(Vec::is_empty)) => false,
        Ex::Path => set
            .iter()
            .all(|(f, v)| rule.path.contains(f) && v.as_ref().is_some_and(|v| !v.is_array())),
        Ex::Cookie => strings.iter().all(|v| text(v).is_ascii()),
        _ => true,
    }
}

/// The fields sent: the rule's base with `set` applied (on `Path`, only
/// the path variables).
fn fields(rule: &Rule, ex: Ex, set: &[(&'static str, Option<Value>)]) -> Map<String, Value> {
    let mut out = rule.base.as_object().cloned().unwrap_or_default();
    if ex == Ex::Path {
        out.retain(|k, _| rule.path.contains(&k.as_str()));
    }
    for (f, v) in set {
        match v {
            Some(v) => {
                out.insert((*f).to_owned(), v.clone());
            }
            None => {
                out.remove(*f);
            }
        }
    }
    out
}

fn expected(probe: &Probe, ex: Ex, sent: &Map<String, Value>) -> Value {
    let mut loc = vec![json!(ex.source())];
    if ex == Ex::Nested {
        loc.push(json!("nested"));
    }
    for (i, item) in probe.loc.iter().enumerate() {
        match item.as_str() {
            Some(field) if i == 0 => loc.push(json!(ex.name(field))),
            _ => loc.push(item.clone()),
        }
    }
    let input = match &probe.input {
        Input::Is(v) if ex.is_text() => textify(v),
        Input::Is(v) => v.clone(),
        Input::Missing if ex.is_text() => Value::Null,
        Input::Missing => Value::Object(sent.clone()),
    };
    let mut item = json!({"type": probe.kind, "loc": loc, "msg": probe.msg, "input": input});
    if let Some(ctx) = &probe.ctx {
        item["ctx"] = ctx.clone();
    }
    item
}

/// The cells run: (rule, field, extractor).
type Cell = (&'static str, &'static str, Ex);

/// Cells that fail for a reason outside the files this matrix may fix,
/// with the reason. Each must still fail (the test says when one is fixed,
/// so that it leaves this list).
const KNOWN_GAPS: &[(&str, &str, Ex, &str)] = &[];

fn known_gap(cell: Cell) -> bool {
    KNOWN_GAPS.iter().any(|(r, f, ex, _)| (*r, *f, *ex) == cell)
}

async fn run_probes(
    c: &Client,
    rule: &Rule,
    failures: &mut Vec<String>,
    cells: &mut Vec<Cell>,
    gaps: &mut Vec<Cell>,
) {
    for probe in &rule.probes {
        for ex in EXTRACTORS {
            if !sendable(rule, ex, &probe.ok) || !sendable(rule, ex, &probe.bad) {
                continue;
            }
            if ex == Ex::Path && rule.path.is_empty() {
                continue;
            }
            let field = probe.loc[0].as_str().unwrap_or("?");
            let field: &'static str = SHAPES
                .iter()
                .chain(&["plain2", "opt2", "list2", "opt_list2"])
                .find(|s| **s == field)
                .copied()
                .unwrap_or("?");
            let cell = (rule.name, field, ex);
            if !cells.contains(&cell) {
                cells.push(cell);
            }
            let before = failures.len();
            let sent = fields(rule, ex, &probe.ok);
            let (status, body) = c.send(rule, ex, &sent).await;
            if status != StatusCode::OK {
                failures.push(format!(
                    "{} {field} {ex:?}: {sent:?} refused ({status}): {body}",
                    rule.name
                ));
            }
            let sent = fields(rule, ex, &probe.bad);
            let (status, body) = c.send(rule, ex, &sent).await;
            let want = json!([expected(probe, ex, &sent)]);
            if status != StatusCode::UNPROCESSABLE_ENTITY || body["detail"] != want {
                failures.push(format!(
                    "{} {field} {ex:?}: {sent:?} gave {status}\n   got: {}\n  want: {want}",
                    rule.name, body["detail"]
                ));
            }
            if known_gap(cell) && failures.len() > before {
                failures.truncate(before);
                if !gaps.contains(&cell) {
                    gaps.push(cell);
                }
            }
        }
    }
}

// ------------------------------------------------------------------ schema

/// Follows `$ref`s into the document's components.
fn resolve<'a>(doc: &'a Value, mut node: &'a Value) -> &'a Value {
    while let Some(r) = node.get("$ref").and_then(Value::as_str) {
        let Some(target) = r.strip_prefix('#').and_then(|p| doc.pointer(p)) else {
            break;
        };
        node = target;
    }
    node
}

/// The non-null member of an `Option`'s `anyOf`, or the node itself.
fn non_null<'a>(doc: &'a Value, node: &'a Value) -> &'a Value {
    let node = resolve(doc, node);
    match node.get("anyOf").and_then(Value::as_array) {
        Some(members) => members
            .iter()
            .find(|m| m.get("type").and_then(Value::as_str) != Some("null"))
            .map_or(node, |m| resolve(doc, m)),
        None => node,
    }
}

/// The schema of `field` under `ex`, and whether it is required.
fn field_schema<'a>(doc: &'a Value, rule: &Rule, ex: Ex, field: &str) -> Option<(&'a Value, bool)> {
    let name = rule.name;
    let op = |path: String, method: &str| doc.get("paths")?.get(path)?.get(method);
    let in_body = |object: &'a Value| {
        let object = resolve(doc, object);
        let prop = object.get("properties")?.get(field)?;
        let required = object
            .get("required")
            .and_then(Value::as_array)
            .is_some_and(|r| r.iter().any(|f| f == field));
        Some((prop, required))
    };
    let content = |ex: &str, ct: &str| {
        op(format!("/{name}/{ex}"), "post")?.pointer(&format!(
            "/requestBody/content/{}/schema",
            ct.replace('/', "~1")
        ))
    };
    match ex {
        Ex::Body => in_body(content("body", "application/json")?),
        Ex::Form => in_body(content("form", "application/x-www-form-urlencoded")?),
        Ex::Nested => {
            let outer = resolve(doc, content("nested", "application/json")?);
            in_body(outer.get("properties")?.get("nested")?)
        }
        Ex::Query | Ex::Header | Ex::Cookie | Ex::Path => {
            let (route, location) = match ex {
                Ex::Query => ("query".to_owned(), "query"),
                Ex::Header => ("header".to_owned(), "header"),
                Ex::Cookie => ("cookie".to_owned(), "cookie"),
                _ => {
                    let vars: String = rule.path.iter().map(|v| format!("/{{{v}}}")).collect();
                    (format!("path{vars}"), "path")
                }
            };
            let method = "get";
            let param = op(format!("/{name}/{route}"), method)?
                .get("parameters")?
                .as_array()?
                .iter()
                .find(|p| p["in"] == location && p["name"] == ex.name(field).as_str())?;
            Some((param.get("schema")?, param["required"] == true))
        }
    }
}

fn check_schema(doc: &Value, rule: &Rule, failures: &mut Vec<String>, cells: &mut usize) {
    for check in &rule.schema {
        for ex in EXTRACTORS {
            if ex == Ex::Path && !rule.path.contains(&check.field) {
                continue;
            }
            *cells += 1;
            let at = format!("{} {} {ex:?} schema", rule.name, check.field);
            let Some((node, required)) = field_schema(doc, rule, ex, check.field) else {
                failures.push(format!("{at}: no schema for the field"));
                continue;
            };
            let mut node = non_null(doc, node);
            if check.items {
                match node.get("items") {
                    Some(items) => node = non_null(doc, items),
                    None => {
                        failures.push(format!("{at}: no items in {node}"));
                        continue;
                    }
                }
            }
            for (k, v) in check.has.as_object().into_iter().flatten() {
                if node.get(k) != Some(v) {
                    failures.push(format!("{at}: {k} should be {v} in {node}"));
                }
            }
            for k in check.lacks {
                if node.get(*k).is_some() {
                    failures.push(format!("{at}: {k} should not be in {node}"));
                }
            }
            if check.required && !required {
                failures.push(format!("{at}: should be required"));
            }
        }
    }
}

// ------------------------------------------------------------------ the tests

#[tokio::test]
async fn every_rule_agrees_in_schema_check_and_message_on_every_extractor() {
    let c = Client::new();
    let doc = c.openapi().await;
    let mut failures = Vec::new();
    let mut cells = Vec::new();
    let mut gaps = Vec::new();
    let mut schema_cells = 0;
    for rule in rules() {
        check_schema(&doc, &rule, &mut failures, &mut schema_cells);
        run_probes(&c, &rule, &mut failures, &mut cells, &mut gaps).await;
    }
    eprintln!(
        "matrix: {} cells (rule × field × extractor) probed, {} of them known gaps; {schema_cells} schema checks",
        cells.len(),
        gaps.len()
    );
    for (r, f, ex, why) in KNOWN_GAPS {
        if !gaps.contains(&(*r, *f, *ex)) {
            failures.push(format!(
                "{r} {f} {ex:?} passes now: remove it from KNOWN_GAPS ({why})"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// pydantic does not validate a default (`validate_default=False`):
/// `list: list[str] = Field([], min_length=1)` accepts a request without
/// `list`. ferrapi checks the typed value, default included, and refuses
/// it with garde's wording.
#[tokio::test]
async fn a_default_is_not_validated() {
    let c = Client::new();
    let rules = rules();
    let rule = rules.iter().find(|r| r.name == "len_list").unwrap();
    for ex in [Ex::Body, Ex::Nested, Ex::Query, Ex::Form] {
        let (status, body) = c.send(rule, ex, &Map::new()).await;
        assert_eq!(status, StatusCode::OK, "{ex:?}: {body}");
    }
}

/// Starlette reads a `Cookie` header as Latin-1, as any header: a cookie
/// outside ASCII is a value (here one the `ascii` rule refuses). ferrapi's
/// `cookie_pairs` skips a header that is not visible ASCII, so the cookie
/// is "missing" instead.
#[tokio::test]
async fn a_cookie_outside_ascii_is_read_as_latin_1() {
    let c = Client::new();
    let rules = rules();
    let rule = rules.iter().find(|r| r.name == "ascii").unwrap();
    let fields = json!({"plain": "abé"});
    let (status, body) = c.send(rule, Ex::Cookie, fields.as_object().unwrap()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let pattern = r"^[\x00-\x7F]*$";
    assert_eq!(
        body["detail"],
        json!([{
            "type": "string_pattern_mismatch", "loc": ["cookie", "plain"],
            "msg": format!("String should match pattern '{pattern}'"),
            "input": "abé", "ctx": {"pattern": pattern}
        }])
    );
}

/// A nested model cannot be a parameter or a form field (FastAPI refuses
/// it when the route is registered). ferrapi builds such a route,
/// documents the field as an object parameter with the nested rules, and
/// refuses every request (`missing` or `model_attributes_type`): the rules
/// documented there can never be met. It should be a build error.
#[test]
fn a_nested_model_is_not_a_parameter() {
    let routes = [
        Route::get("/q", query::<LenStrNest>),
        Route::get("/h", header::<LenStrNest>),
        Route::get("/c", cookie::<LenStrNest>),
        Route::post("/f", form::<LenStrNest>),
    ];
    for route in routes {
        let name = format!("{route:?}");
        assert!(App::new().route(route).build().is_err(), "{name} built");
    }
}

/// A list cannot be a path parameter (FastAPI refuses it at
/// registration). ferrapi builds the route and reads the segment as a
/// one-item list.
#[test]
fn a_list_is_not_a_path_parameter() {
    let route = Route::get("/p/{plain}/{opt}/{list}/{opt_list}", path::<LenStr>);
    assert!(App::new().route(route).build().is_err());
}
