CREATE TABLE IF NOT EXISTS users (
    id            BIGINT AUTO_INCREMENT PRIMARY KEY,
    name          VARCHAR(200) NOT NULL,
    email         VARCHAR(320) NOT NULL UNIQUE,
    age           BIGINT  NOT NULL,
    password_hash TEXT,
    is_admin      BIGINT  NOT NULL DEFAULT 0,
    created_at    VARCHAR(32) NOT NULL
);
