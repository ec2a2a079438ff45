-- DIRECTION: up
CREATE MATERIALIZED VIEW monthly_revenue AS
    SELECT date_trunc('month', placed_at) AS month, sum(total_cents) AS revenue_cents
    FROM orders GROUP BY 1;
CREATE UNIQUE INDEX monthly_revenue_month_idx ON monthly_revenue (month);

-- DIRECTION: down
DROP MATERIALIZED VIEW monthly_revenue;
