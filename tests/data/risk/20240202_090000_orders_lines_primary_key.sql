-- DIRECTION: up
ALTER TABLE order_lines ADD PRIMARY KEY (order_id, line_no);

-- DIRECTION: down
ALTER TABLE order_lines DROP CONSTRAINT order_lines_pkey;
