-- DIRECTION: up
CREATE TABLE accounts (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id BIGINT NOT NULL REFERENCES users (id),
    plan TEXT NOT NULL DEFAULT 'free' CHECK (plan IN ('free', 'pro', 'team')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX accounts_owner_id_idx ON accounts (owner_id);
ALTER TABLE accounts ADD CONSTRAINT accounts_owner_unique UNIQUE (owner_id, plan);

-- DIRECTION: down
DROP TABLE accounts;
