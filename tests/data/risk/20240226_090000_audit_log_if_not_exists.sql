-- DIRECTION: up
-- New only if it does not exist yet: offline it counts as new; plan and apply ask the live database.
CREATE TABLE IF NOT EXISTS audit_log (id BIGSERIAL PRIMARY KEY, actor TEXT, created_at TIMESTAMPTZ NOT NULL);
CREATE INDEX audit_log_actor_idx ON audit_log (actor);

-- DIRECTION: down
DROP INDEX audit_log_actor_idx;
