-- Step 2 of 2: VALIDATE scans without blocking writes; SET NOT NULL then uses the validated CHECK (PostgreSQL 12+).
-- DIRECTION: up
ALTER TABLE orders VALIDATE CONSTRAINT orders_total_not_null;
ALTER TABLE orders ALTER COLUMN total_cents SET NOT NULL;
ALTER TABLE orders DROP CONSTRAINT orders_total_not_null;

-- DIRECTION: down
ALTER TABLE orders ALTER COLUMN total_cents DROP NOT NULL;
