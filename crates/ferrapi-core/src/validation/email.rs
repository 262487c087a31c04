//! The e-mail check behind `format: email`, worded as pydantic words it:
//! pydantic's `EmailStr` runs Python's `email_validator` (2.x, without
//! deliverability checks) and reports its reason.

/// pydantic refuses longer input before calling `email_validator`.
const MAX_EMAIL_LENGTH: usize = 2048;
/// RFC 5321 limits (`email_validator`'s constants).
const EMAIL_MAX_LENGTH: usize = 254;
const LOCAL_PART_MAX_LENGTH: usize = 64;
const DOMAIN_MAX_LENGTH: usize = 253;
const DNS_LABEL_LENGTH_LIMIT: usize = 63;
/// Domains `email_validator` refuses as special-use or reserved.
const SPECIAL_USE_DOMAIN_NAMES: [&str; 6] =
    ["arpa", "invalid", "local", "localhost", "onion", "test"];

/// Checks an e-mail address as pydantic's `EmailStr` does: `Ok`, or
/// `Err(reason)` worded as Python's `email_validator` words it.
///
/// pydantic's error for it is `{"type": "value_error", "msg": "value is not a
/// valid email address: <reason>", "ctx": {"reason": "<reason>"}}`.
///
/// ```
/// use ferrapi_core::validation::validate_email;
///
/// assert!(validate_email("ada@example.com").is_ok());
/// assert_eq!(validate_email("ada").unwrap_err(), "An email address must have an @-sign.");
/// assert_eq!(
///     validate_email("ada@example").unwrap_err(),
///     "The part after the @-sign is not valid. It should have a period."
/// );
/// ```
pub fn validate_email(s: &str) -> Result<(), String> {
    if plain_ascii_address(s) {
        return Ok(());
    }
    full_check(s)
}

/// The common case, decided without allocating: an ASCII `local@domain`
/// whose local part is a dot-atom of `atext` and whose domain is
/// lower-or-upper-case LDH labels under an alphabetic, non-reserved
/// top-level label, within every length limit. `true` only where
/// [`full_check`] accepts; anything else (including every address it
/// would refuse) goes to [`full_check`], which words the reason.
fn plain_ascii_address(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() > EMAIL_MAX_LENGTH {
        return false;
    }
    let Some(at) = b.iter().position(|&c| c == b'@') else {
        return false;
    };
    let (local, domain) = (&b[..at], &b[at + 1..]);
    if local.is_empty() || local.len() > LOCAL_PART_MAX_LENGTH {
        return false;
    }
    if !local
        .split(|&c| c == b'.')
        .all(|atom| !atom.is_empty() && atom.iter().all(|&c| is_atext(char::from(c))))
    {
        return false;
    }
    if domain.is_empty() || domain.len() > DOMAIN_MAX_LENGTH {
        return false;
    }
    let mut labels = 0;
    let mut last: &[u8] = &[];
    for label in domain.split(|&c| c == b'.') {
        let ldh = label
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'-');
        if label.is_empty()
            || label.len() > DNS_LABEL_LENGTH_LIMIT
            || !ldh
            || label[0] == b'-'
            || label[label.len() - 1] == b'-'
            || (label.len() >= 4
                && &label[2..4] == b"--"
                && !label[..2].eq_ignore_ascii_case(b"xn"))
        {
            return false;
        }
        labels += 1;
        last = label;
    }
    labels >= 2
        && last.last().is_some_and(u8::is_ascii_alphabetic)
        && !SPECIAL_USE_DOMAIN_NAMES
            .iter()
            .any(|special| last.eq_ignore_ascii_case(special.as_bytes()))
}

/// `email_validator`'s whole check, with its reasons.
fn full_check(s: &str) -> Result<(), String> {
    if s.chars().count() > MAX_EMAIL_LENGTH {
        return Err(format!(
            "Length must not exceed {MAX_EMAIL_LENGTH} characters"
        ));
    }
    // pydantic accepts `Name <address>` and strips surrounding whitespace.
    let email = pretty_address(s).unwrap_or(s).trim();

    let (local, domain, quoted) = split_email(email)?;
    validate_local_part(&local, quoted)?;
    if quoted {
        return Err("Quoting the part before the @-sign is not allowed here.".into());
    }
    if domain.is_empty() {
        return Err("There must be something after the @-sign.".into());
    }
    if domain.starts_with('[') && domain.ends_with(']') {
        return Err(domain_literal_reason(&domain[1..domain.len() - 1]));
    }
    let domain = validate_domain(domain)?;
    let normalized_len = local.chars().count() + 1 + domain.chars().count();
    if normalized_len > EMAIL_MAX_LENGTH {
        let ascii = local.is_ascii() && domain.is_ascii();
        let reason = length_reason(normalized_len, EMAIL_MAX_LENGTH, !ascii);
        return Err(format!("The email address is too long {reason}."));
    }
    let utf8_len = local.len() + 1 + domain.len();
    if utf8_len > EMAIL_MAX_LENGTH {
        return Err("The email address is too long (when encoded in bytes).".into());
    }
    Ok(())
}

/// The address of `Display Name <address>` (pydantic's pretty-email form).
fn pretty_address(s: &str) -> Option<&str> {
    let t = s.trim();
    let inner = t.strip_suffix('>')?;
    let open = inner.rfind('<')?;
    Some(&inner[open + 1..])
}

fn length_reason(len: usize, limit: usize, utf8: bool) -> String {
    let diff = len.saturating_sub(limit);
    let prefix = if utf8 { "at least " } else { "" };
    let suffix = if diff > 1 { "s" } else { "" };
    format!("({prefix}{diff} character{suffix} too many)")
}

/// `email_validator.syntax.split_email`: the local part (unquoted), the
/// domain part, and whether the local part was quoted.
fn split_email(email: &str) -> Result<(String, &str, bool), String> {
    let mut inside_quote = false;
    let mut escaped = false;
    let mut at = None;
    for (i, c) in email.char_indices() {
        if inside_quote {
            if c == '\\' && !escaped {
                escaped = true;
            } else if c == '"' && !escaped {
                inside_quote = false;
                escaped = false;
            } else {
                escaped = false;
            }
        } else if c == '"' {
            inside_quote = true;
        } else if c == '@' {
            at = Some(i);
            break;
        }
    }
    let Some(at) = at else {
        return Err("An email address must have an @-sign.".into());
    };
    let local = &email[..at];
    let domain = &email[at + 1..];
    if local.len() >= 2 && local.starts_with('"') && local.ends_with('"') {
        // Unescape the quoted string.
        let mut out = String::with_capacity(local.len());
        let mut chars = local[1..local.len() - 1].chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else {
                out.push(c);
            }
        }
        return Ok((out, domain, true));
    }
    Ok((local.to_owned(), domain, false))
}

/// RFC 5322 `atext`.
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)
}

/// `atext` extended to internationalized characters (RFC 6531).
fn is_atext_intl(c: char) -> bool {
    is_atext(c) || u32::from(c) >= 0x80
}

/// `email_validator`'s display of an offending character.
fn char_display(c: char) -> String {
    if c == '\\' {
        return "\"\\\"".into();
    }
    if c.is_alphanumeric() || (c.is_ascii_graphic() && c != ' ') {
        return if c == '\'' {
            "\"'\"".into()
        } else {
            format!("'{c}'")
        };
    }
    match c {
        ' ' => "SPACE".into(),
        '\t' => "CHARACTER TABULATION".into(),
        '\n' => "LINE FEED (LF)".into(),
        '\r' => "CARRIAGE RETURN (CR)".into(),
        '\u{a0}' => "NO-BREAK SPACE".into(),
        c if u32::from(c) < 0xFFFF => format!("U+{:04X}", u32::from(c)),
        c => format!("U+{:08X}", u32::from(c)),
    }
}

fn bad_chars(s: &str, ok: impl Fn(char) -> bool) -> Option<String> {
    let mut bad: Vec<String> = s.chars().filter(|c| !ok(*c)).map(char_display).collect();
    if bad.is_empty() {
        return None;
    }
    bad.sort();
    bad.dedup();
    Some(bad.join(", "))
}

/// A character Python's `unicodedata` puts in category C (control, format,
/// surrogate, private use) or Z (separators): unsafe in an address.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || c.is_whitespace()
        || matches!(u32::from(c), 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0xFEFF | 0xE000..=0xF8FF)
}

fn validate_local_part(local: &str, quoted: bool) -> Result<(), String> {
    if local.is_empty() {
        return Err("There must be something before the @-sign.".into());
    }
    let len = local.chars().count();
    if len > LOCAL_PART_MAX_LENGTH {
        let reason = length_reason(len, LOCAL_PART_MAX_LENGTH, false);
        return Err(format!(
            "The email address is too long before the @-sign {reason}."
        ));
    }
    let dot_atom = |ok: fn(char) -> bool| {
        local
            .split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(ok))
    };
    if dot_atom(is_atext) {
        return Ok(());
    }
    if dot_atom(is_atext_intl) || quoted {
        if quoted {
            let qtext =
                |c: char| c == ' ' || c == '\t' || (c.is_ascii_graphic()) || u32::from(c) >= 0x80;
            if let Some(bad) = bad_chars(local, qtext) {
                return Err(format!(
                    "The email address contains invalid characters in quotes before the @-sign: {bad}."
                ));
            }
        }
        let unsafe_chars: Vec<String> = local
            .chars()
            .filter(|c| is_unsafe(*c) && !(quoted && *c == ' '))
            .map(char_display)
            .collect();
        if !unsafe_chars.is_empty() {
            return Err(format!(
                "The email address contains unsafe characters: {}.",
                unsafe_chars.join(", ")
            ));
        }
        return Ok(());
    }
    if let Some(bad) = bad_chars(local, |c| c == '.' || is_atext_intl(c)) {
        return Err(format!(
            "The email address contains invalid characters before the @-sign: {bad}."
        ));
    }
    check_dot_atom(
        local,
        "An email address cannot start with a {}.",
        "An email address cannot have a {} immediately before the @-sign.",
        false,
    )?;
    Err("The email address contains invalid characters before the @-sign.".into())
}

fn check_dot_atom(label: &str, start: &str, end: &str, hostname: bool) -> Result<(), String> {
    if label.ends_with('.') {
        return Err(end.replace("{}", "period"));
    }
    if label.starts_with('.') {
        return Err(start.replace("{}", "period"));
    }
    if label.contains("..") {
        return Err("An email address cannot have two periods in a row.".into());
    }
    if hostname {
        if label.ends_with('-') {
            return Err(end.replace("{}", "hyphen"));
        }
        if label.starts_with('-') {
            return Err(start.replace("{}", "hyphen"));
        }
        if label.contains(".-") || label.contains("-.") {
            return Err(
                "An email address cannot have a period and a hyphen next to each other.".into(),
            );
        }
    }
    Ok(())
}

fn domain_literal_reason(literal: &str) -> String {
    if !literal.is_empty() && literal.chars().all(|c| c.is_ascii_digit() || c == '.') {
        if literal.parse::<std::net::Ipv4Addr>().is_err() {
            return format!(
                "The address in brackets after the @-sign is not valid: It is not an IPv4 address ({}) or is missing an address literal tag.",
                ipv4_error(literal)
            );
        }
        return "A bracketed IPv4 address after the @-sign is not allowed here.".into();
    }
    if let Some(v6) = literal.strip_prefix("IPv6:") {
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return format!(
                "The IPv6 address in brackets after the @-sign is not valid ({}).",
                format_args!(
                    "{} does not appear to be an IPv4 or IPv6 address",
                    py_repr(v6)
                )
            );
        }
        return "A bracketed IPv6 address after the @-sign is not allowed here.".into();
    }
    if !literal.contains(':') {
        return "The part after the @-sign in brackets is not an IPv4 address and has no address literal tag.".into();
    }
    "The part after the @-sign contains an invalid address literal tag in brackets.".into()
}

fn py_repr(s: &str) -> String {
    super::messages::py_str_repr(s)
}

/// Python's `ipaddress.IPv4Address` error for a dotted-digit string.
fn ipv4_error(s: &str) -> String {
    let octets: Vec<&str> = s.split('.').collect();
    if octets.len() != 4 {
        return format!("Expected 4 octets in {}", py_repr(s));
    }
    for o in &octets {
        if o.is_empty() {
            return format!("Empty octet not permitted in {}", py_repr(s));
        }
        if o.len() > 3 {
            return format!(
                "At most 3 characters permitted in {} in {}",
                py_repr(o),
                py_repr(s)
            );
        }
        if o.len() > 1 && o.starts_with('0') {
            return format!(
                "Leading zeros are not permitted in {} in {}",
                py_repr(o),
                py_repr(s)
            );
        }
        if o.parse::<u16>().is_ok_and(|n| n > 255) {
            return format!("Octet {o} (> 255) not permitted in {}", py_repr(s));
        }
    }
    format!(
        "{} does not appear to be an IPv4 or IPv6 address",
        py_repr(s)
    )
}

/// `email_validator.syntax.validate_email_domain_name` (without IDNA
/// encoding: internationalized labels are kept as given). Returns the
/// normalized (lower-cased) domain.
fn validate_domain(domain: &str) -> Result<String, String> {
    let hostname_char =
        |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.' || u32::from(c) >= 0x80;
    if let Some(bad) = bad_chars(domain, hostname_char) {
        return Err(format!(
            "The part after the @-sign contains invalid characters: {bad}."
        ));
    }
    let unsafe_chars: Vec<String> = domain
        .chars()
        .filter(|c| is_unsafe(*c))
        .map(char_display)
        .collect();
    if !unsafe_chars.is_empty() {
        return Err(format!(
            "The email address contains unsafe characters: {}.",
            unsafe_chars.join(", ")
        ));
    }
    // UTS-46 mapping: case folding and the full-width and ideographic dots.
    let domain: String = domain
        .chars()
        .map(|c| match c {
            '\u{3002}' | '\u{FF0E}' | '\u{FF61}' => '.',
            c => c,
        })
        .flat_map(char::to_lowercase)
        .collect();
    check_dot_atom(
        &domain,
        "An email address cannot have a {} immediately after the @-sign.",
        "An email address cannot end with a {}.",
        true,
    )?;
    for label in domain.split('.') {
        let b = label.as_bytes();
        if b.len() >= 4 && &b[2..4] == b"--" && !label[..2].eq_ignore_ascii_case("xn") {
            return Err("An email address cannot have two letters followed by two dashes immediately after the @-sign or after a period, except Punycode.".into());
        }
    }
    if domain.is_ascii() {
        if domain.len() > DOMAIN_MAX_LENGTH {
            let reason = length_reason(domain.len(), DOMAIN_MAX_LENGTH, false);
            return Err(format!(
                "The email address is too long after the @-sign {reason}."
            ));
        }
        for label in domain.split('.') {
            if label.len() > DNS_LABEL_LENGTH_LIMIT {
                let reason = length_reason(label.len(), DNS_LABEL_LENGTH_LIMIT, false);
                return Err(format!(
                    "After the @-sign, periods cannot be separated by so many characters {reason}."
                ));
            }
        }
    }
    if !domain.contains('.') {
        return Err("The part after the @-sign is not valid. It should have a period.".into());
    }
    if !domain.ends_with(|c: char| c.is_alphabetic()) {
        return Err(
            "The part after the @-sign is not valid. It is not within a valid top-level domain."
                .into(),
        );
    }
    for special in SPECIAL_USE_DOMAIN_NAMES {
        if domain == special || domain.ends_with(&format!(".{special}")) {
            return Err("The part after the @-sign is a special-use or reserved name that cannot be used with email.".into());
        }
    }
    Ok(domain)
}

#[cfg(test)]
mod tests {
    use super::{full_check, plain_ascii_address, validate_email};

    /// The allocation-free path accepts only what the full check accepts,
    /// and takes the common addresses.
    #[test]
    fn the_fast_path_agrees_with_the_full_check() {
        let taken = [
            "user@example.com",
            "first.last+tag@sub.example.co.uk",
            "A.B-c_d@EXAMPLE.Org",
            "x@a-b.io",
            "xn--user@xn--bcher-kva.example",
        ];
        for input in taken {
            assert!(plain_ascii_address(input), "{input}");
            assert!(full_check(input).is_ok(), "{input}");
        }
        // Every mutation of a few addresses by one byte: wherever the fast
        // path says yes, the full check must agree.
        let alphabet = b"a.-@_+\" \tZ9>[]x";
        let mut checked = 0;
        for seed in ["user@example.com", "a.b@c-d.ef", "x@ab--cd.test"] {
            let bytes = seed.as_bytes();
            for i in 0..=bytes.len() {
                for &c in alphabet.iter() {
                    for variant in [
                        [&bytes[..i], &[c], &bytes[i..]].concat(),
                        [&bytes[..i], &[c], bytes.get(i + 1..).unwrap_or(&[])].concat(),
                        [&bytes[..i], bytes.get(i + 1..).unwrap_or(&[])].concat(),
                    ] {
                        let s = String::from_utf8(variant).expect("ASCII");
                        if plain_ascii_address(&s) {
                            assert!(full_check(&s).is_ok(), "fast path took {s:?}");
                        }
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 500);
        for long in [
            format!("{}@example.com", "a".repeat(65)),
            format!("a@{}.com", "b".repeat(64)),
            format!("a@{}.com", vec!["b".repeat(60); 5].join(".")),
        ] {
            assert!(!plain_ascii_address(&long));
            assert!(validate_email(&long).is_err());
        }
    }

    #[test]
    fn reasons() {
        let cases = [
            ("user@example.com", None),
            ("first.last+tag@sub.example.co.uk", None),
            ("Ada <ada@example.com>", None),
            (
                "plainaddress",
                Some("An email address must have an @-sign."),
            ),
            (
                "@example.com",
                Some("There must be something before the @-sign."),
            ),
            ("user@", Some("There must be something after the @-sign.")),
            (
                "user@localhost",
                Some("The part after the @-sign is not valid. It should have a period."),
            ),
            (
                "user@@example.com",
                Some("The part after the @-sign contains invalid characters: '@'."),
            ),
            (
                "us er@example.com",
                Some("The email address contains invalid characters before the @-sign: SPACE."),
            ),
            (
                ".user@example.com",
                Some("An email address cannot start with a period."),
            ),
            (
                "user.@example.com",
                Some("An email address cannot have a period immediately before the @-sign."),
            ),
            (
                "us..er@example.com",
                Some("An email address cannot have two periods in a row."),
            ),
            (
                "user@.example.com",
                Some("An email address cannot have a period immediately after the @-sign."),
            ),
            (
                "user@example.com.",
                Some("An email address cannot end with a period."),
            ),
            (
                "user@-example.com",
                Some("An email address cannot have a hyphen immediately after the @-sign."),
            ),
            (
                "user@example.123",
                Some(
                    "The part after the @-sign is not valid. It is not within a valid top-level domain.",
                ),
            ),
            (
                "user@host.test",
                Some(
                    "The part after the @-sign is a special-use or reserved name that cannot be used with email.",
                ),
            ),
            (
                "\"quoted\"@example.com",
                Some("Quoting the part before the @-sign is not allowed here."),
            ),
            (
                "user@[127.0.0.1]",
                Some("A bracketed IPv4 address after the @-sign is not allowed here."),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(validate_email(input).err().as_deref(), expected, "{input}");
        }
    }
}
