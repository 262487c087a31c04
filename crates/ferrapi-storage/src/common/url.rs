//! Server URLs in messages and logs.

/// The URL with its password replaced by `***`, for error messages and
/// logs: `redis://user:secret@host` → `redis://user:***@host`. A URL
/// without a password, or that is not `scheme://…`, is returned as is.
pub(crate) fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords() {
        assert_eq!(
            mask_url("postgres://app:secret@db:5432/app"),
            "postgres://app:***@db:5432/app"
        );
        assert_eq!(mask_url("redis://u:pw@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(mask_url("redis://:pw@h"), "redis://:***@h");
        assert_eq!(mask_url("postgres://app@db/app"), "postgres://app@db/app");
        assert_eq!(mask_url("redis://h:6379"), "redis://h:6379");
        assert_eq!(mask_url("sqlite://data/a.db"), "sqlite://data/a.db");
        assert_eq!(mask_url("nonsense"), "nonsense");
    }
}
