//! String formats checked as pydantic checks the corresponding Python types:
//! `uuid.UUID` (the `uuid` crate's parser and error wording, as bundled in
//! pydantic-core) and URLs (the checks of the `url` crate that a URL most
//! often fails, with its words), and [`check`], which maps a schema's string
//! `format` to its check (e-mail through [`validate_email`], URLs, IP
//! addresses through [`IpKind`]). Dates and datetimes are in
//! [`datetime`](super::datetime).

use super::email::validate_email;
use super::messages::error;
use super::model::rules::IpKind;
use super::{ErrorItem, Loc};
use serde_json::{Value, json};

/// The check of a string `format` that pydantic checks on a `str` (e-mail,
/// URL, IP address): the error pydantic reports at `loc` when `s` (the
/// `input`) fails it, `None` when it passes or the format is not one of
/// these. (`uuid`, `date` and `date-time` change the type: the walker
/// checks them before the string's constraints.)
pub(super) fn check(format: &str, s: &str, loc: &Loc, input: &Value) -> Option<ErrorItem> {
    match format {
        "email" | "idn-email" => match validate_email(s) {
            Err(reason) => Some(ErrorItem {
                kind: "value_error".into(),
                loc: loc.clone(),
                msg: format!("value is not a valid email address: {reason}"),
                input: input.clone(),
                ctx: json!({ "reason": reason }).as_object().cloned(),
            }),
            Ok(()) => None,
        },
        "uri" | "url" | "iri" => match check_url(s) {
            Err(e) => Some(error(
                "url_parsing",
                loc.clone(),
                input.clone(),
                Some(json!({ "error": e })),
            )),
            Ok(()) => None,
        },
        "ipv4" | "ipv6" | "ipvanyaddress" => {
            let kind = match format {
                "ipv4" => IpKind::V4,
                "ipv6" => IpKind::V6,
                _ => IpKind::Any,
            };
            if kind.accepts(s) {
                return None;
            }
            let (ty, msg) = kind.pydantic();
            Some(ErrorItem {
                kind: ty.into(),
                loc: loc.clone(),
                msg: msg.to_owned(),
                input: input.clone(),
                ctx: None,
            })
        }
        _ => None,
    }
}

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
        '\0', '\t', '\n', '\r', ' ', '#', '/', ':', '<', '>', '?', '@', '[', '\\', ']', '^', '|',
        '%',
    ];
    if host.contains(FORBIDDEN) {
        return Err("invalid domain character");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
