-- DIRECTION: up
ALTER TABLE payments ADD CONSTRAINT payments_amount_positive CHECK (amount_cents > 0);

-- DIRECTION: down
ALTER TABLE payments DROP CONSTRAINT payments_amount_positive;
