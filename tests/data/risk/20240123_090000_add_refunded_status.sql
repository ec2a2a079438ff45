-- Allowed in a transaction since PostgreSQL 12 (the value cannot be used before commit).
-- DIRECTION: up
ALTER TYPE order_status ADD VALUE IF NOT EXISTS 'refunded';
