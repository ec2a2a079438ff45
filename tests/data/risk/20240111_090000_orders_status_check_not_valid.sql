-- Step 1 of 2: new rows are checked at once; old rows are validated by the next migration.
-- DIRECTION: up
ALTER TABLE orders ADD CONSTRAINT orders_total_not_null CHECK (total_cents IS NOT NULL) NOT VALID;

-- DIRECTION: down
ALTER TABLE orders DROP CONSTRAINT orders_total_not_null;
