CREATE TABLE IF NOT EXISTS notifications (
    id         BIGINT AUTO_INCREMENT PRIMARY KEY,
    user_id    BIGINT NOT NULL,
    kind       VARCHAR(64) NOT NULL,
    created_at VARCHAR(32) NOT NULL,
    UNIQUE (user_id, kind)
);
CREATE TABLE IF NOT EXISTS avatars (
    user_id      BIGINT PRIMARY KEY,
    content_type VARCHAR(100) NOT NULL,
    storage_key  VARCHAR(255) NOT NULL,
    size         BIGINT NOT NULL
);
