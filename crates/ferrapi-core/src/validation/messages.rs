//! pydantic v2's error catalog: error type → message template, rendered
//! with the error's `ctx` exactly as pydantic-core renders it (Python mode,
//! which is what FastAPI reports: it validates the already-decoded body).

use super::{ErrorItem, Loc};
use serde_json::{Map, Value};

/// The message template of a pydantic error type (Python-mode wording).
pub(crate) fn template(kind: &str) -> &'static str {
    match kind {
        "missing" => "Field required",
        "extra_forbidden" => "Extra inputs are not permitted",
        "model_attributes_type" => {
            "Input should be a valid dictionary or object to extract fields from"
        }
        "none_required" => "Input should be None",
        "greater_than" => "Input should be greater than {gt}",
        "greater_than_equal" => "Input should be greater than or equal to {ge}",
        "less_than" => "Input should be less than {lt}",
        "less_than_equal" => "Input should be less than or equal to {le}",
        "multiple_of" => "Input should be a multiple of {multiple_of}",
        "finite_number" => "Input should be a finite number",
        "too_short" => {
            "{field_type} should have at least {min_length} item{expected_plural} after validation, not {actual_length}"
        }
        "too_long" => {
            "{field_type} should have at most {max_length} item{expected_plural} after validation, not {actual_length}"
        }
        "string_type" => "Input should be a valid string",
        "string_too_short" => "String should have at least {min_length} character{expected_plural}",
        "string_too_long" => "String should have at most {max_length} character{expected_plural}",
        "string_pattern_mismatch" => "String should match pattern '{pattern}'",
        "enum" | "literal_error" => "Input should be {expected}",
        "dict_type" => "Input should be a valid dictionary",
        "list_type" => "Input should be a valid list",
        "tuple_type" => "Input should be a valid tuple",
        "set_type" => "Input should be a valid set",
        "bool_type" => "Input should be a valid boolean",
        "bool_parsing" => "Input should be a valid boolean, unable to interpret input",
        "int_type" => "Input should be a valid integer",
        "int_parsing" => "Input should be a valid integer, unable to parse string as an integer",
        "int_from_float" => "Input should be a valid integer, got a number with a fractional part",
        "int_parsing_size" => "Unable to parse input string as an integer, exceeded maximum size",
        "float_type" => "Input should be a valid number",
        "float_parsing" => "Input should be a valid number, unable to parse string as a number",
        "value_error" => "Value error, {error}",
        "date_type" => "Input should be a valid date",
        "date_parsing" => "Input should be a valid date in the format YYYY-MM-DD, {error}",
        "date_from_datetime_parsing" => "Input should be a valid date or datetime, {error}",
        "date_from_datetime_inexact" => {
            "Datetimes provided to dates should have zero time - e.g. be exact dates"
        }
        "datetime_type" => "Input should be a valid datetime",
        "datetime_parsing" => "Input should be a valid datetime, {error}",
        "datetime_from_date_parsing" => "Input should be a valid datetime or date, {error}",
        "timezone_aware" => "Input should have timezone info",
        "url_type" => "URL input should be a string or URL",
        "url_parsing" => "Input should be a valid URL, {error}",
        "uuid_type" => "UUID input should be a string, bytes or UUID object",
        "uuid_parsing" => "Input should be a valid UUID, {error}",
        "union_tag_invalid" => {
            "Input tag '{tag}' found using {discriminator} does not match any of the expected tags: {expected_tags}"
        }
        "union_tag_not_found" => "Unable to extract tag using discriminator {discriminator}",
        _ => "Invalid input",
    }
}

/// Renders `template` with `ctx` as pydantic-core does: `{key}` is replaced
/// by the ctx value (strings as is, numbers as Python prints them), and
/// `{expected_plural}` is `""` when the length bound is 1, else `"s"`.
pub(crate) fn render(template: &str, ctx: Option<&Map<String, Value>>) -> String {
    let Some(ctx) = ctx else {
        return template.to_owned();
    };
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end) => {
                let key = &after[..end];
                if key == "expected_plural" {
                    let bound = ctx
                        .get("min_length")
                        .or_else(|| ctx.get("max_length"))
                        .and_then(Value::as_u64);
                    if bound != Some(1) {
                        out.push('s');
                    }
                } else if let Some(v) = ctx.get(key) {
                    out.push_str(&display(v));
                } else {
                    out.push('{');
                    out.push_str(key);
                    out.push('}');
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// A ctx value as Python's `str()` prints it in a message.
pub(crate) fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => number(n),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

/// A JSON number as Python prints the corresponding `int` or `float`.
pub(crate) fn number(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    match n.as_f64() {
        Some(f) => py_float(f),
        None => n.to_string(),
    }
}

/// Python's `repr(float)`: shortest round-trip digits, scientific notation
/// below 1e-4 and from 1e16 on, always a `.0` on whole numbers.
pub(crate) fn py_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // `{:e}` gives the shortest round-trip digits: "1.5e-7", "1e20".
    let sci = format!("{f:e}");
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (sci.as_str(), 0),
    };
    if (-4..16).contains(&exp) {
        let s = format!("{f}");
        if s.contains('.') { s } else { format!("{s}.0") }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

/// Python's `repr()` of a JSON scalar, as used in `expected` lists:
/// `'a'` for strings, numbers as Python prints them.
pub(crate) fn py_repr(v: &Value) -> String {
    match v {
        Value::String(s) => py_str_repr(s),
        other => display(other),
    }
}

/// Python's `repr(str)` (single quotes unless the string holds one and no
/// double quote).
pub(crate) fn py_str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// pydantic's list of expected values: `'a'`, `'a' or 'b'`, `'a', 'b' or 'c'`.
pub(crate) fn expected_list<'a>(values: impl IntoIterator<Item = &'a Value>) -> String {
    let reprs: Vec<String> = values.into_iter().map(py_repr).collect();
    match reprs.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, init)) => format!("{} or {last}", init.join(", ")),
    }
}

/// An error item of `kind`, its message rendered from the catalog.
pub(crate) fn error(kind: &'static str, loc: Loc, input: Value, ctx: Option<Value>) -> ErrorItem {
    let ctx = match ctx {
        Some(Value::Object(m)) => Some(m),
        _ => None,
    };
    let msg = render(template(kind), ctx.as_ref());
    ErrorItem {
        kind: kind.into(),
        loc,
        msg,
        input,
        ctx,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_plurals_and_numbers() {
        let ctx = json!({"min_length": 1});
        assert_eq!(
            render(template("string_too_short"), ctx.as_object()),
            "String should have at least 1 character"
        );
        let ctx = json!({"max_length": 20});
        assert_eq!(
            render(template("string_too_long"), ctx.as_object()),
            "String should have at most 20 characters"
        );
        let ctx = json!({"ge": 18.0});
        assert_eq!(
            render(template("greater_than_equal"), ctx.as_object()),
            "Input should be greater than or equal to 18.0"
        );
        let ctx = json!({"field_type": "List", "min_length": 2, "actual_length": 0});
        assert_eq!(
            render(template("too_short"), ctx.as_object()),
            "List should have at least 2 items after validation, not 0"
        );
    }

    #[test]
    fn python_float_repr() {
        assert_eq!(py_float(18.0), "18.0");
        assert_eq!(py_float(0.5), "0.5");
        assert_eq!(py_float(1e20), "1e+20");
        assert_eq!(py_float(1.5e-7), "1.5e-07");
        assert_eq!(py_float(123456789.25), "123456789.25");
        assert_eq!(py_float(-0.0001), "-0.0001");
    }

    #[test]
    fn expected_lists() {
        let vals = [json!("a"), json!("b"), json!("c")];
        assert_eq!(expected_list(&vals), "'a', 'b' or 'c'");
        assert_eq!(expected_list(&vals[..1]), "'a'");
        assert_eq!(expected_list(&[json!(1), json!(2)]), "1 or 2");
        assert_eq!(py_str_repr("it's"), "\"it's\"");
    }
}
