-- DIRECTION: up
CLUSTER orders USING orders_placed_at_idx;
