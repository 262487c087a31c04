CREATE TABLE IF NOT EXISTS notifications (
    id         BIGSERIAL PRIMARY KEY,
    user_id    BIGINT NOT NULL,
    kind       TEXT   NOT NULL,
    created_at TEXT   NOT NULL,
    UNIQUE (user_id, kind)
);
CREATE TABLE IF NOT EXISTS avatars (
    user_id      BIGINT PRIMARY KEY,
    content_type TEXT   NOT NULL,
    storage_key  TEXT   NOT NULL,
    size         BIGINT NOT NULL
);
