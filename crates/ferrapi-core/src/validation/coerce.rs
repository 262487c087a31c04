//! pydantic's lax mode for scalars: how a JSON string, number or boolean
//! becomes an integer, a float or a boolean (pydantic-core's `str_as_int`,
//! `float_as_int`, `str_as_float`, `str_as_bool` and their helpers, with
//! the same grammar and the same error types). The walker applies them and
//! then checks the schema's bounds.

use serde_json::{Number, Value};
use std::cmp::Ordering;

/// pydantic's lax `int`: an integer number, a float without fraction, a
/// boolean, or a string in `str_as_int`'s grammar; else the error type.
pub(super) fn lax_int(v: &Value) -> Result<Int, &'static str> {
    match v {
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
    }
}

/// pydantic's lax `float`: a number, a boolean, or a string in
/// `str_as_float`'s grammar (which takes `inf` and `nan`: finiteness is the
/// caller's check); else the error type.
pub(super) fn lax_float(v: &Value) -> Result<f64, &'static str> {
    match v {
        Value::Number(n) => Ok(n.as_f64().unwrap_or(f64::NAN)),
        Value::Bool(b) => Ok(if *b { 1.0 } else { 0.0 }),
        Value::String(s) => str_as_float(s),
        _ => Err("float_type"),
    }
}

/// pydantic's lax `bool`: a boolean, `0`/`1` (integer or float), or a
/// string `str_as_bool` knows; else the error type.
pub(super) fn lax_bool(v: &Value) -> Result<bool, &'static str> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(0), _, _) | (_, Some(0), _) => Ok(false),
            (Some(1), _, _) | (_, Some(1), _) => Ok(true),
            (None, None, Some(0.0)) => Ok(false),
            (None, None, Some(1.0)) => Ok(true),
            _ => Err("bool_parsing"),
        },
        Value::String(s) => str_as_bool(s).ok_or("bool_parsing"),
        _ => Err("bool_type"),
    }
}

/// An integer as pydantic holds it: exact when it fits an `i128`, else only
/// its sign (Python would keep the big int; no Rust integer can).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Int {
    Small(i128),
    BigPos,
    BigNeg,
}

pub(super) fn int_number(x: i128) -> Value {
    if let Ok(i) = i64::try_from(x) {
        Value::Number(i.into())
    } else if let Ok(u) = u64::try_from(x) {
        Value::Number(u.into())
    } else {
        Number::from_f64(x as f64).map_or(Value::Null, Value::Number)
    }
}

pub(super) fn cmp_int(i: &Int, bound: &Number) -> Ordering {
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

pub(super) fn int_is_multiple(i: &Int, multiple: &Number) -> bool {
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
