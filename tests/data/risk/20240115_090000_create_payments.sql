-- DIRECTION: up
CREATE TABLE payments (
    id BIGSERIAL PRIMARY KEY,
    order_id BIGINT NOT NULL,
    amount_cents INTEGER NOT NULL,
    paid_at TIMESTAMPTZ
);

-- DIRECTION: down
DROP TABLE payments;
