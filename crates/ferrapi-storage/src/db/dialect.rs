//! SQL dialect differences the portable driver does not paper over:
//! placeholders. Queries are written with `?`; PostgreSQL wants `$1, $2, …`.

use super::Backend;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

impl Backend {
    /// `sql` in this backend's placeholder style: `?` becomes `$1`, `$2`, …
    /// on PostgreSQL (outside string literals, quoted identifiers and
    /// comments); other backends take it as written. The rewrite of a
    /// `&'static str` is done once and remembered (keyed by the text's
    /// address, so it costs a hash of two words afterwards).
    ///
    /// ```
    /// use ferrapi_storage::db::Backend;
    /// let sql = "SELECT id FROM users WHERE email = ? AND name <> '?' LIMIT ?";
    /// assert_eq!(Backend::Postgres.sql(sql), "SELECT id FROM users WHERE email = $1 AND name <> '?' LIMIT $2");
    /// assert_eq!(Backend::Sqlite.sql(sql), sql);
    /// ```
    pub fn sql(self, sql: &'static str) -> &'static str {
        if self != Backend::Postgres || !sql.contains('?') {
            return sql;
        }
        type Cache = RwLock<HashMap<(usize, usize), &'static str>>;
        static CACHE: OnceLock<Cache> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        let key = (sql.as_ptr() as usize, sql.len());
        if let Some(done) = cache.read().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return done;
        }
        let rewritten: &'static str = match to_dollar(sql) {
            Cow::Borrowed(s) => s,
            // Leaked once per distinct static query text: bounded by the
            // program's query literals.
            Cow::Owned(s) => Box::leak(s.into_boxed_str()),
        };
        cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, rewritten);
        rewritten
    }

    /// [`Backend::sql`] for a query built at run time (not memoized).
    pub fn rewrite<'a>(self, sql: &'a str) -> Cow<'a, str> {
        if self == Backend::Postgres {
            to_dollar(sql)
        } else {
            Cow::Borrowed(sql)
        }
    }
}

/// Rewrites `?` to `$n`, skipping `'…'`, `"…"`, `-- …` and `/* … */`.
fn to_dollar(sql: &str) -> Cow<'_, str> {
    if !sql.contains('?') {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0u32;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '?' => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            }
            '\'' | '"' => {
                out.push(c);
                // A doubled quote inside is an escaped quote: the loop
                // closes and reopens, which copies it unchanged.
                for d in chars.by_ref() {
                    out.push(d);
                    if d == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                out.push(c);
                let mut prev = '\0';
                for d in chars.by_ref() {
                    out.push(d);
                    if prev == '*' && d == '/' {
                        break;
                    }
                    prev = d;
                }
            }
            _ => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_placeholders_outside_literals() {
        assert_eq!(
            to_dollar("INSERT INTO t (a, b) VALUES (?, ?)"),
            "INSERT INTO t (a, b) VALUES ($1, $2)"
        );
        assert_eq!(
            to_dollar(
                "SELECT '?', 'it''s ?', \"we?ird\" FROM t WHERE a = ? -- ?\nAND b = ? /* ? */"
            ),
            "SELECT '?', 'it''s ?', \"we?ird\" FROM t WHERE a = $1 -- ?\nAND b = $2 /* ? */"
        );
        assert!(matches!(to_dollar("SELECT 1"), Cow::Borrowed(_)));
    }

    #[test]
    fn memoizes_static_texts() {
        let q: &'static str = "SELECT * FROM t WHERE id = ?";
        let a = Backend::Postgres.sql(q);
        let b = Backend::Postgres.sql(q);
        assert_eq!(a, "SELECT * FROM t WHERE id = $1");
        assert!(std::ptr::eq(a, b));
        assert!(std::ptr::eq(Backend::MySql.sql(q), q));
    }
}
