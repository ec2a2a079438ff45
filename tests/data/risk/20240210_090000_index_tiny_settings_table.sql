-- DIRECTION: up
-- risk: ignore adding_index_non_concurrently because settings holds a dozen rows
CREATE INDEX settings_key_idx ON settings (key);

-- DIRECTION: down
DROP INDEX settings_key_idx;
