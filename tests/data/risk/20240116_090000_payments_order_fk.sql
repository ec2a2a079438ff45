-- DIRECTION: up
ALTER TABLE payments ADD CONSTRAINT payments_order_fk FOREIGN KEY (order_id) REFERENCES orders (id);

-- DIRECTION: down
ALTER TABLE payments DROP CONSTRAINT payments_order_fk;
