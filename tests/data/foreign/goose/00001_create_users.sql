-- +goose Up
CREATE TABLE users (
    id bigserial PRIMARY KEY,
    email text NOT NULL,
    updated_at timestamptz
);

-- +goose Down
DROP TABLE users;
