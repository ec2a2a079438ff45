-- DIRECTION: up
CREATE TABLE orders (
    id BIGSERIAL PRIMARY KEY,
    account_id BIGINT NOT NULL,
    total_cents INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'new',
    placed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
ALTER TABLE orders ADD CONSTRAINT orders_account_fk FOREIGN KEY (account_id) REFERENCES accounts (id);
ALTER TABLE orders ALTER COLUMN status SET NOT NULL;
INSERT INTO orders (account_id, total_cents) SELECT id, 0 FROM accounts WHERE false;
UPDATE orders SET status = 'new';

-- DIRECTION: down
DROP TABLE orders;
