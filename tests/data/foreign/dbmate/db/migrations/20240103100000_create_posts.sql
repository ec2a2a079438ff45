-- migrate:up
CREATE TABLE posts (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id),
    title text NOT NULL
);

-- migrate:down
DROP TABLE posts;
