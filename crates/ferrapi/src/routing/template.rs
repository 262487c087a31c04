//! Path templates: `/users/{user_id}/items/{*rest}` (the syntax of axum 0.8
//! and of OpenAPI).

/// The variables of a template, in order (a catch-all `{*rest}` is `rest`),
/// or every problem found in it.
pub(crate) fn variables(path: &str) -> Result<Vec<String>, Vec<String>> {
    let mut vars = Vec::new();
    let mut problems = Vec::new();
    if !path.starts_with('/') {
        problems.push(format!("path `{path}` must start with `/`"));
    }
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    for (i, seg) in segments.iter().enumerate() {
        let opens = seg.matches('{').count();
        let closes = seg.matches('}').count();
        if opens == 0 && closes == 0 {
            continue;
        }
        let inner = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}'));
        let Some(inner) = inner.filter(|_| opens == 1 && closes == 1) else {
            problems.push(format!(
                "segment `{seg}` of `{path}`: a variable must be a whole segment, as `{{name}}`"
            ));
            continue;
        };
        let (name, catch_all) = match inner.strip_prefix('*') {
            Some(n) => (n, true),
            None => (inner, false),
        };
        if catch_all && i + 1 != segments.len() {
            problems.push(format!(
                "catch-all `{{*{name}}}` in `{path}` must be the last segment"
            ));
        }
        let valid = !name.is_empty()
            && name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            problems.push(format!(
                "variable `{{{inner}}}` in `{path}` is not a valid name (letters, digits, `_`)"
            ));
            continue;
        }
        if vars.iter().any(|v| v == name) {
            problems.push(format!("variable `{name}` appears twice in `{path}`"));
        }
        vars.push(name.to_owned());
    }
    if problems.is_empty() {
        Ok(vars)
    } else {
        Err(problems)
    }
}

/// The template with variable names erased (`/users/{}`): two routes with
/// the same shape and method clash.
pub(crate) fn shape(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.starts_with("{*") {
                "{*}"
            } else if seg.starts_with('{') {
                "{}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Joins prefixes and a route path (`/api/v1` + `/users` → `/api/v1/users`;
/// a route path of `/` or `` under a prefix is the prefix itself).
pub(crate) fn join(prefixes: &[String], path: &str) -> String {
    let mut out = String::new();
    for p in prefixes {
        out.push_str(p);
    }
    if out.is_empty() || !(path.is_empty() || path == "/") {
        out.push_str(path);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// Problems with a prefix: FastAPI's rules (starts with `/`, no trailing `/`).
pub(crate) fn prefix_problems(prefix: &str) -> Option<String> {
    if prefix.is_empty() {
        return None;
    }
    if !prefix.starts_with('/') {
        return Some(format!("prefix `{prefix}` must start with `/`"));
    }
    if prefix.ends_with('/') {
        return Some(format!("prefix `{prefix}` must not end with `/`"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_in_order() {
        assert_eq!(
            variables("/users/{user_id}/items/{item}").unwrap_or_default(),
            ["user_id", "item"]
        );
        assert_eq!(variables("/files/{*rest}").unwrap_or_default(), ["rest"]);
        assert!(variables("/").unwrap_or_default().is_empty());
    }

    #[test]
    fn malformed_templates_name_every_problem() {
        let problems = variables("users/{a}/{a}/x{b}/{*c}/d")
            .err()
            .unwrap_or_default();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(variables("/{1x}").is_err());
        assert!(variables("/{}").is_err());
    }

    #[test]
    fn shapes_erase_names() {
        assert_eq!(shape("/users/{id}"), shape("/users/{user_id}"));
        assert_ne!(shape("/users/{id}"), shape("/users/me"));
    }

    #[test]
    fn joining() {
        assert_eq!(
            join(&["/api".into(), "/v1".into()], "/users"),
            "/api/v1/users"
        );
        assert_eq!(join(&["/users".into()], "/"), "/users");
        assert_eq!(join(&["/users".into()], ""), "/users");
        assert_eq!(join(&[], "/"), "/");
        assert_eq!(join(&[String::new()], "/x"), "/x");
    }
}
