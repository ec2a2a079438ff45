-- DIRECTION: up
ALTER TABLE payments RENAME TO charges;

-- DIRECTION: down
ALTER TABLE charges RENAME TO payments;
