//! [`Cookie`]: request cookies validated into a model.

use super::{FromRequestParts, Rejection, RequestContext};
use crate::openapi::{DescribeInput, OperationBuilder, ParameterIn};
use crate::validation;
use ferrapi_core::validation::Source;
use http::header::COOKIE;
use http::request::Parts;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use std::borrow::Cow;

/// Splits `Cookie` headers into name/value pairs (`a=1; b=2`). Pairs without
/// `=` are skipped; surrounding double quotes are removed.
pub(crate) fn cookie_pairs(parts: &Parts) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
    let mut pairs = Vec::new();
    for header in parts.headers.get_all(COOKIE) {
        match header.to_str() {
            Ok(text) => {
                pairs.extend(split_cookies(text).map(|(n, v)| (Cow::Borrowed(n), Cow::Borrowed(v))))
            }
            // A header that is not visible ASCII is read as Latin-1, as
            // Starlette reads every header.
            Err(_) => {
                let text: String = header.as_bytes().iter().map(|&b| b as char).collect();
                pairs.extend(
                    split_cookies(&text)
                        .map(|(n, v)| (Cow::Owned(n.to_owned()), Cow::Owned(v.to_owned()))),
                );
            }
        }
    }
    pairs
}

/// `name=value` pairs of one `Cookie` header, values unquoted.
fn split_cookies(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.split(';').filter_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        Some((name.trim(), value))
    })
}

/// Cookies validated into the struct `T`, one field per cookie, errors
/// under `loc` `["cookie", <name>]`.
///
/// ```
/// use ferrapi::prelude::*;
///
/// #[derive(Deserialize, JsonSchema, Validate)]
/// struct Session {
///     session_id: String,
/// }
///
/// #[get("/me")]
/// async fn me(Cookie(c): Cookie<Session>) -> Text {
///     Text(c.session_id)
/// }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Cookie<T>(pub T);

impl<T> FromRequestParts for Cookie<T>
where
    T: DeserializeOwned + JsonSchema + ferrapi_core::validation::Validate + Send + 'static,
{
    async fn from_request_parts(
        parts: &mut Parts,
        _cx: &RequestContext,
    ) -> Result<Self, Rejection> {
        validation::from_pairs::<T, _>(Source::Cookie, cookie_pairs(parts))
            .map(Cookie)
            .map_err(Rejection::Invalid)
    }
}

impl<T: JsonSchema> DescribeInput for Cookie<T> {
    fn describe(op: &mut OperationBuilder<'_>) {
        op.parameters_from::<T>(ParameterIn::Cookie, str::to_owned);
    }
}
