//! The body-level errors of a JSON route: malformed JSON, a body that is not
//! an object, a missing body.

use super::{ErrorItem, Loc, LocItem, Source};
use serde_json::{Value, json};

/// The one error FastAPI gives for a JSON syntax error:
/// `{"type": "json_invalid", "loc": ["body", <position>], "msg": "JSON decode
/// error", "input": {}, "ctx": {"error": "<reason>"}}`.
///
/// The position is in characters (Unicode code points), as Python's `json`
/// module's `pos`. Where Python's decoder would also refuse the body, the
/// reason and position are its own ("Expecting value", "Expecting ','
/// delimiter", "Expecting property name enclosed in double quotes", "Extra
/// data", "Unterminated string starting at", "Invalid control character
/// at", "Illegal trailing comma before end of object", …): the body is
/// re-scanned with Python's grammar. Where only serde_json refuses it (a
/// number that overflows a double, a lone surrogate, nesting deeper than
/// serde_json's limit), the reason is serde_json's message and the position
/// is serde_json's, converted to characters. `NaN` and `Infinity`, which
/// Python accepts but JSON does not, are "Expecting value" at their start.
///
/// ```
/// use ferrapi_core::validation::json_invalid;
///
/// let body = r#"{"name": "Zoë",}"#.as_bytes();
/// let err = serde_json::from_slice::<serde_json::Value>(body).unwrap_err();
/// let item = json_invalid(body, &err);
/// assert_eq!(
///     serde_json::to_value(&item).unwrap(),
///     serde_json::json!({"type": "json_invalid", "loc": ["body", 14],
///         "msg": "JSON decode error", "input": {},
///         "ctx": {"error": "Illegal trailing comma before end of object"}})
/// );
/// ```
pub fn json_invalid(body: &[u8], err: &serde_json::Error) -> ErrorItem {
    let (pos, reason) = match python_scan(body) {
        Some((byte_pos, reason)) => (char_pos(body, byte_pos), reason.to_owned()),
        None => (serde_char_pos(body, err), serde_reason(err)),
    };
    ErrorItem::new(
        "json_invalid",
        Loc(vec![
            LocItem::from(Source::Body.as_str()),
            LocItem::Index(pos),
        ]),
        "JSON decode error",
        json!({}),
    )
    .with_ctx(json!({ "error": reason }))
}

/// A JSON route given a non-object / non-JSON body:
/// `{"type": "model_attributes_type", "loc": ["body"], "msg": "Input should
/// be a valid dictionary or object to extract fields from", "input": <input>}`.
pub fn model_attributes_type(input: Value) -> ErrorItem {
    ErrorItem::new(
        "model_attributes_type",
        Loc::source(Source::Body),
        "Input should be a valid dictionary or object to extract fields from",
        input,
    )
}

/// A required body that is absent:
/// `{"type": "missing", "loc": ["body"], "msg": "Field required", "input": null}`.
pub fn missing_body() -> ErrorItem {
    ErrorItem::new(
        "missing",
        Loc::source(Source::Body),
        "Field required",
        Value::Null,
    )
}

/// The number of characters before byte `pos` (UTF-8 continuation bytes do
/// not start a character).
fn char_pos(body: &[u8], pos: usize) -> usize {
    body.get(..pos)
        .unwrap_or(body)
        .iter()
        .filter(|b| (**b & 0xC0) != 0x80)
        .count()
}

/// serde_json's message without its " at line L column C" suffix.
fn serde_reason(err: &serde_json::Error) -> String {
    let msg = err.to_string();
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg,
    }
}

/// serde_json's error position (1-based line, 1-based byte column, the
/// column pointing at the last byte read) as a character position.
fn serde_char_pos(body: &[u8], err: &serde_json::Error) -> usize {
    let line = err.line();
    if line == 0 {
        return char_pos(body, body.len());
    }
    let mut line_start = 0;
    let mut current = 1;
    for (i, b) in body.iter().enumerate() {
        if current == line {
            break;
        }
        if *b == b'\n' {
            current += 1;
            line_start = i + 1;
        }
    }
    let byte = (line_start + err.column().saturating_sub(1)).min(body.len());
    char_pos(body, byte)
}

type ScanResult<T> = Result<T, (usize, &'static str)>;

/// What the scanner expects next once a value is complete.
enum Frame {
    Array,
    Object,
}

/// Python's `json.loads` (CPython 3.13's C scanner) over the raw bytes:
/// the byte position and message of the first error it would raise, or
/// `None` when it would accept the document. Non-finite constants count as
/// errors ("Expecting value"). Iterative, so any nesting depth is safe.
fn python_scan(body: &[u8]) -> Option<(usize, &'static str)> {
    let s = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let offset = body.len() - s.len();
    scan_document(s).err().map(|(pos, msg)| (pos + offset, msg))
}

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while matches!(s.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

fn scan_document(s: &[u8]) -> ScanResult<()> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = skip_ws(s, 0);
    'value: loop {
        // Scan one value starting at `i` (opening containers push a frame).
        match s.get(i) {
            Some(b'"') => i = scan_string(s, i)?,
            Some(b'{') => {
                let j = skip_ws(s, i + 1);
                if s.get(j) == Some(&b'}') {
                    i = j + 1;
                } else {
                    stack.push(Frame::Object);
                    i = scan_key(s, j)?;
                    continue 'value;
                }
            }
            Some(b'[') => {
                let j = skip_ws(s, i + 1);
                if s.get(j) == Some(&b']') {
                    i = j + 1;
                } else {
                    stack.push(Frame::Array);
                    i = j;
                    continue 'value;
                }
            }
            _ if s[i..].starts_with(b"null") => i += 4,
            _ if s[i..].starts_with(b"true") => i += 4,
            _ if s[i..].starts_with(b"false") => i += 5,
            _ => i = scan_number(s, i).ok_or((i, "Expecting value"))?,
        }
        // The value is complete: close containers or move to the next item.
        loop {
            let Some(frame) = stack.last() else {
                let end = skip_ws(s, i);
                if end != s.len() {
                    return Err((end, "Extra data"));
                }
                return Ok(());
            };
            i = skip_ws(s, i);
            match (frame, s.get(i)) {
                (Frame::Array, Some(b']')) | (Frame::Object, Some(b'}')) => {
                    stack.pop();
                    i += 1;
                }
                (Frame::Array, Some(b',')) => {
                    let comma = i;
                    i = skip_ws(s, i + 1);
                    if s.get(i) == Some(&b']') {
                        return Err((comma, "Illegal trailing comma before end of array"));
                    }
                    continue 'value;
                }
                (Frame::Object, Some(b',')) => {
                    let comma = i;
                    i = skip_ws(s, i + 1);
                    if s.get(i) == Some(&b'}') {
                        return Err((comma, "Illegal trailing comma before end of object"));
                    }
                    i = scan_key(s, i)?;
                    continue 'value;
                }
                _ => return Err((i, "Expecting ',' delimiter")),
            }
        }
    }
}

/// A key, the `:` and the whitespace after it; returns where the value starts.
fn scan_key(s: &[u8], i: usize) -> ScanResult<usize> {
    if s.get(i) != Some(&b'"') {
        return Err((i, "Expecting property name enclosed in double quotes"));
    }
    let j = skip_ws(s, scan_string(s, i)?);
    if s.get(j) != Some(&b':') {
        return Err((j, "Expecting ':' delimiter"));
    }
    Ok(skip_ws(s, j + 1))
}

/// A string starting at the quote at `begin`; returns the index after the
/// closing quote.
fn scan_string(s: &[u8], begin: usize) -> ScanResult<usize> {
    let mut i = begin + 1;
    loop {
        match s.get(i) {
            None => return Err((begin, "Unterminated string starting at")),
            Some(b'"') => return Ok(i + 1),
            Some(c) if *c < 0x20 => return Err((i, "Invalid control character at")),
            Some(b'\\') => {
                match s.get(i + 1) {
                    None => return Err((begin, "Unterminated string starting at")),
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                    Some(b'u') => {
                        // CPython wants the four digits and one more character.
                        let digits = i + 2;
                        if digits + 4 >= s.len() {
                            return Err((i + 1, "Invalid \\uXXXX escape"));
                        }
                        if !s[digits..digits + 4].iter().all(u8::is_ascii_hexdigit) {
                            return Err((i + 1, "Invalid \\uXXXX escape"));
                        }
                        i = digits + 4;
                    }
                    Some(_) => return Err((i, "Invalid \\escape")),
                }
            }
            Some(_) => i += 1,
        }
    }
}

/// CPython's number regex `-?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?`, matched
/// greedily; `None` when no number starts at `i`.
fn scan_number(s: &[u8], start: usize) -> Option<usize> {
    let digits_from = |mut j: usize| {
        while s.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        j
    };
    let mut i = start;
    if s.get(i) == Some(&b'-') {
        i += 1;
    }
    match s.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = digits_from(i + 1),
        _ => return None,
    }
    if s.get(i) == Some(&b'.') && s.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i = digits_from(i + 1);
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(s.get(j), Some(b'-' | b'+')) {
            j += 1;
        }
        let end = digits_from(j);
        if end > j {
            i = end;
        }
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn python(doc: &str) -> Option<(usize, &'static str)> {
        python_scan(doc.as_bytes()).map(|(p, m)| (char_pos(doc.as_bytes(), p), m))
    }

    /// CPython 3.13's Lib/test/test_json/test_fail.py cases.
    #[test]
    fn cpython_positions() {
        let cases: &[(&str, &str, usize)] = &[
            ("", "Expecting value", 0),
            ("[", "Expecting value", 1),
            ("[42", "Expecting ',' delimiter", 3),
            ("[42,", "Expecting value", 4),
            ("[\"", "Unterminated string starting at", 1),
            ("[\"spam", "Unterminated string starting at", 1),
            ("[\"spam\"", "Expecting ',' delimiter", 7),
            ("[\"spam\",", "Expecting value", 8),
            ("{", "Expecting property name enclosed in double quotes", 1),
            ("{\"", "Unterminated string starting at", 1),
            ("{\"spam", "Unterminated string starting at", 1),
            ("{\"spam\"", "Expecting ':' delimiter", 7),
            ("{\"spam\":", "Expecting value", 8),
            ("{\"spam\":42", "Expecting ',' delimiter", 10),
            (
                "{\"spam\":42,",
                "Expecting property name enclosed in double quotes",
                11,
            ),
            ("\"", "Unterminated string starting at", 0),
            ("\"spam", "Unterminated string starting at", 0),
            ("[,", "Expecting value", 1),
            ("{\"spam\":[}", "Expecting value", 9),
            ("[42:", "Expecting ',' delimiter", 3),
            ("[42 \"spam\"", "Expecting ',' delimiter", 4),
            ("[42,]", "Illegal trailing comma before end of array", 3),
            ("{\"spam\":[42}", "Expecting ',' delimiter", 11),
            ("[\"]", "Unterminated string starting at", 1),
            ("[\"spam\":", "Expecting ',' delimiter", 7),
            (
                "[\"spam\",]",
                "Illegal trailing comma before end of array",
                7,
            ),
            ("{:", "Expecting property name enclosed in double quotes", 1),
            ("{,", "Expecting property name enclosed in double quotes", 1),
            (
                "{42",
                "Expecting property name enclosed in double quotes",
                1,
            ),
            (
                "[{]",
                "Expecting property name enclosed in double quotes",
                2,
            ),
            ("{\"spam\",", "Expecting ':' delimiter", 7),
            ("{\"spam\"}", "Expecting ':' delimiter", 7),
            ("[{\"spam\"]", "Expecting ':' delimiter", 8),
            ("{\"spam\":}", "Expecting value", 8),
            ("[{\"spam\":]", "Expecting value", 9),
            ("{\"spam\":42 \"ham\"", "Expecting ',' delimiter", 11),
            ("[{\"spam\":42]", "Expecting ',' delimiter", 11),
            (
                "{\"spam\":42,}",
                "Illegal trailing comma before end of object",
                10,
            ),
            (
                "{\"spam\":42 , }",
                "Illegal trailing comma before end of object",
                11,
            ),
            ("[123  , ]", "Illegal trailing comma before end of array", 6),
            ("[]]", "Extra data", 2),
            ("{}}", "Extra data", 2),
            ("[],[]", "Extra data", 2),
            ("42,\"spam\"", "Extra data", 2),
            ("\"spam\",42", "Extra data", 6),
            ("!", "Expecting value", 0),
            (" !", "Expecting value", 1),
            ("\n  \n\n     !", "Expecting value", 10),
            ("[\"a\\x\"]", "Invalid \\escape", 3),
            ("[\"a\\u12\"]", "Invalid \\uXXXX escape", 4),
            ("[\"a\tb\"]", "Invalid control character at", 3),
            ("[0e]", "Expecting ',' delimiter", 2),
            ("[013]", "Expecting ',' delimiter", 2),
            ("[-]", "Expecting value", 1),
            ("[NaN]", "Expecting value", 1),
        ];
        for (doc, msg, pos) in cases {
            assert_eq!(python(doc), Some((*pos, *msg)), "{doc:?}");
        }
        for ok in [
            "{}",
            " [1, 2.5e3, -0, \"x\\u00e9\", true, false, null] ",
            "\"\\ud800\"",
            "1e400",
        ] {
            assert_eq!(python(ok), None, "{ok:?}");
        }
    }
}
