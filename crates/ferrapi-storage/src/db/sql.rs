//! [`StaticSql`]: the SQL text [`Db::query`](super::Db::query) and
//! [`DbPool::query`](super::DbPool::query) take — text fixed at compile time.

/// SQL text written in the program (`&'static str`): what
/// [`Db::query`](super::Db::query) and [`DbPool::query`](super::DbPool::query)
/// take, so that no value of a request can be pasted into a query by
/// mistake. Its rewrite for PostgreSQL (`?` → `$1`) is done once per text.
///
/// SQL assembled at run time (a `WHERE` built from optional filters, an
/// `IN (?, ?, …)` list of variable length) goes through `query_dynamic`
/// instead, with every value still bound:
///
/// ```
/// # async fn run(db: ferrapi_storage::db::Db) -> Result<(), ferrapi_storage::db::DbError> {
/// let mut sql = String::from("SELECT id FROM notes WHERE 1 = 1");
/// sql.push_str(" AND author = ?");            // only placeholders are pasted
/// let rows = db.fetch_all(db.query_dynamic(&sql).bind("ada")).await?;
/// # Ok(()) }
/// ```
///
/// Passing a `String` to `query` is a compile error that names
/// `query_dynamic`:
///
/// ```compile_fail,E0277
/// # fn f(db: ferrapi_storage::db::Db, author: &str) {
/// let sql = format!("SELECT id FROM notes WHERE author = '{author}'");
/// db.query(&sql);
/// # }
/// ```
///
/// A `&str` borrowed from a `String` instead fails with a lifetime error
/// (``borrowed value does not live long enough``, ``argument requires that
/// `sql` is borrowed for `'static` ``): the same mistake, the same fix.
#[diagnostic::on_unimplemented(
    message = "`query` takes SQL text written in the program (`&'static str`), not `{Self}`",
    label = "SQL built at run time",
    note = "for SQL assembled at run time, call `query_dynamic(&sql)` and bind every value with `.bind(…)` (never paste a value into the text); see \"Dynamic SQL\" in the storage chapter of the guide"
)]
pub trait StaticSql {
    /// The text.
    fn text(self) -> &'static str;
}

impl StaticSql for &'static str {
    fn text(self) -> &'static str {
        self
    }
}
