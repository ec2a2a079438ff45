-- +goose Up
CREATE TABLE posts (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id)
);

-- +goose Down
DROP TABLE posts;
