-- DIRECTION: up
CREATE TABLE staging_imports (id BIGINT PRIMARY KEY, payload JSONB NOT NULL, imported_at TIMESTAMPTZ);

-- DIRECTION: down
-- The index and the column drop below are moot: the table goes on the next line, with its data (reported once).
CREATE INDEX staging_imports_imported_at_idx ON staging_imports (imported_at);
ALTER TABLE staging_imports DROP COLUMN imported_at;
DROP TABLE staging_imports;
