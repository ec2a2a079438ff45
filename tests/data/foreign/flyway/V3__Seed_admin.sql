INSERT INTO users (email, name) VALUES ('admin@example.com', 'admin');
