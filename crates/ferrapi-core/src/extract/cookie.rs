//! [`SetCookie`]: a `Set-Cookie` header, built as Starlette's
//! `Response.set_cookie` takes it (FastAPI's defaults: `Path=/`,
//! `SameSite=Lax`).

use http::HeaderValue;
use std::fmt::Write as _;
use std::time::Duration;

/// Why a header or cookie could not be set: the name or value has
/// characters HTTP does not allow there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidHeader {
    /// Not a valid header name.
    #[error("invalid header name")]
    Name,
    /// Not a valid header value (control characters, a line break).
    #[error("invalid value for header `{0}`")]
    Value(String),
    /// A cookie name that is not an HTTP token.
    #[error("invalid cookie name `{0}`")]
    CookieName(String),
    /// A cookie value or attribute with a character cookies cannot carry
    /// (space, `"`, `,`, `;`, `\`, control characters): encode it first.
    #[error("invalid value for cookie `{0}`")]
    CookieValue(String),
}

/// The `SameSite` attribute of a cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SameSite {
    /// Sent on same-site requests and top-level navigations (the default,
    /// as FastAPI's `samesite="lax"`).
    #[default]
    Lax,
    /// Sent on same-site requests only.
    Strict,
    /// Sent on every request; browsers require `Secure` with it.
    None,
}

/// A cookie to set on the response: `Set-Cookie: name=value; Path=/; SameSite=Lax`
/// and the attributes chosen.
///
/// ```
/// use ferrapi::response::{SameSite, SetCookie};
/// use std::time::Duration;
///
/// let cookie = SetCookie::new("session", "abc123")
///     .max_age(Duration::from_secs(3600))
///     .http_only()
///     .secure()
///     .same_site(SameSite::Strict);
/// assert_eq!(
///     cookie.header_value().unwrap(),
///     "session=abc123; Max-Age=3600; Path=/; HttpOnly; Secure; SameSite=Strict"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetCookie {
    name: String,
    value: String,
    max_age: Option<Duration>,
    path: Option<String>,
    domain: Option<String>,
    http_only: bool,
    secure: bool,
    same_site: Option<SameSite>,
}

impl SetCookie {
    /// A cookie `name=value` with `Path=/` and `SameSite=Lax`, lasting the
    /// browser session.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
            max_age: None,
            path: Some("/".to_owned()),
            domain: None,
            http_only: false,
            secure: false,
            same_site: Some(SameSite::Lax),
        }
    }

    /// A cookie that removes `name` from the browser (empty, `Max-Age=0`):
    /// give it the same `path` and `domain` it was set with.
    pub fn removal(name: impl Into<String>) -> Self {
        Self::new(name, "").max_age(Duration::ZERO)
    }

    /// `Max-Age`, in whole seconds.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// `Path` (default `/`).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// `Domain`.
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// `HttpOnly`: not readable from JavaScript.
    pub fn http_only(mut self) -> Self {
        self.http_only = true;
        self
    }

    /// `Secure`: sent over HTTPS only.
    pub fn secure(mut self) -> Self {
        self.secure = true;
        self
    }

    /// `SameSite` (default `Lax`).
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = Some(same_site);
        self
    }

    /// The cookie's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `Set-Cookie` header value; an error names the cookie whose name,
    /// value or attribute HTTP cannot carry.
    pub fn header_value(&self) -> Result<HeaderValue, InvalidHeader> {
        if self.name.is_empty() || !self.name.bytes().all(is_token_byte) {
            return Err(InvalidHeader::CookieName(self.name.clone()));
        }
        let bad = || InvalidHeader::CookieValue(self.name.clone());
        if !self.value.bytes().all(is_cookie_octet) {
            return Err(bad());
        }
        let mut out = format!("{}={}", self.name, self.value);
        if let Some(max_age) = self.max_age {
            let _ = write!(out, "; Max-Age={}", max_age.as_secs());
        }
        for (attr, value) in [("Path", &self.path), ("Domain", &self.domain)] {
            if let Some(v) = value {
                if !v.bytes().all(|b| is_cookie_octet(b) || b == b' ') {
                    return Err(bad());
                }
                let _ = write!(out, "; {attr}={v}");
            }
        }
        if self.http_only {
            out.push_str("; HttpOnly");
        }
        if self.secure {
            out.push_str("; Secure");
        }
        match self.same_site {
            Some(SameSite::Lax) => out.push_str("; SameSite=Lax"),
            Some(SameSite::Strict) => out.push_str("; SameSite=Strict"),
            Some(SameSite::None) => out.push_str("; SameSite=None"),
            None => {}
        }
        HeaderValue::try_from(out).map_err(|_| bad())
    }
}

/// RFC 7230 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 6265 `cookie-octet`.
fn is_cookie_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_as_fastapi() {
        let v = SetCookie::new("a", "b")
            .header_value()
            .expect("a valid cookie");
        assert_eq!(v, "a=b; Path=/; SameSite=Lax");
    }

    #[test]
    fn removal_expires_now() {
        let v = SetCookie::removal("a")
            .header_value()
            .expect("a valid cookie");
        assert_eq!(v, "a=; Max-Age=0; Path=/; SameSite=Lax");
    }

    #[test]
    fn refuses_header_injection() {
        assert_eq!(
            SetCookie::new("a", "x; Domain=evil").header_value(),
            Err(InvalidHeader::CookieValue("a".into()))
        );
        assert_eq!(
            SetCookie::new("a b", "x").header_value(),
            Err(InvalidHeader::CookieName("a b".into()))
        );
        assert!(
            SetCookie::new("a", "x")
                .path("/p;q")
                .header_value()
                .is_err()
        );
        assert!(SetCookie::new("a", "x\r\n").header_value().is_err());
    }
}
