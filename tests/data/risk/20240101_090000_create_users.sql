-- MIGRATION: create_users
-- DIRECTION: up
CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    full_name TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX users_created_at_idx ON users (created_at);

-- DIRECTION: down
DROP TABLE IF EXISTS users;
