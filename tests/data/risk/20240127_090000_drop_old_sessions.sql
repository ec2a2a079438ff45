-- Irreversible on purpose: the sessions table moved to Redis.
-- DIRECTION: up
DROP TABLE IF EXISTS sessions;
