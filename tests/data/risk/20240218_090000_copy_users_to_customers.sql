-- DIRECTION: up
CREATE TABLE customers AS SELECT id, email, display_name FROM users;
ALTER TABLE customers ADD PRIMARY KEY (id);
CREATE INDEX customers_email_idx ON customers (email);

-- DIRECTION: down
DROP TABLE customers;
