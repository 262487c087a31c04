CREATE TABLE IF NOT EXISTS notifications (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    UNIQUE (user_id, kind)
);
CREATE TABLE IF NOT EXISTS avatars (
    user_id      INTEGER PRIMARY KEY,
    content_type TEXT    NOT NULL,
    storage_key  TEXT    NOT NULL,
    size         INTEGER NOT NULL
);
