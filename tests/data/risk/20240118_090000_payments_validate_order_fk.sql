-- DIRECTION: up
ALTER TABLE payments VALIDATE CONSTRAINT payments_order_fk;

-- DIRECTION: down
SELECT 1;
