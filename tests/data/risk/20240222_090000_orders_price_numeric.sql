-- DIRECTION: up
ALTER TABLE order_lines ALTER COLUMN unit_price_cents TYPE NUMERIC(12, 2);
