-- DIRECTION: up
ALTER TABLE order_lines
    ADD COLUMN subtotal_cents BIGINT GENERATED ALWAYS AS (quantity * unit_price_cents) STORED;

-- DIRECTION: down
ALTER TABLE order_lines DROP COLUMN subtotal_cents;
