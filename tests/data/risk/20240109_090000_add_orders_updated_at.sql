-- now() is stable, not volatile: no rewrite on PostgreSQL 11+.
-- DIRECTION: up
ALTER TABLE orders ADD COLUMN updated_at TIMESTAMPTZ NOT NULL DEFAULT now();

-- DIRECTION: down
ALTER TABLE orders DROP COLUMN updated_at;
