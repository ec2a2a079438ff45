-- DIRECTION: up
ALTER TABLE payments DROP CONSTRAINT IF EXISTS payments_order_fk;
ALTER TABLE payments ADD CONSTRAINT payments_order_fk FOREIGN KEY (order_id) REFERENCES orders (id) NOT VALID;

-- DIRECTION: down
ALTER TABLE payments DROP CONSTRAINT payments_order_fk;
