-- Customers' first orders per calendar month (UTC) and the traffic source that brought them: the
-- traffic sources' share of new customers over time.
--
-- Tables: `orders`, `events` (the raw partitions of the run date). No parameters.
-- A customer's first order is their earliest order of any status (ties: the smaller order id).
-- Attribution is last touch: the traffic source of the customer's latest `purchase` event at or
-- before the order's creation (TheLook logs the purchase seconds before the order); a first order
-- without one is '(no purchase session)'. `month` is year * 100 + month.
WITH ranked AS (
    SELECT order_id, user_id, created_at,
           ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY created_at, order_id) AS nth
    FROM orders
),
first_orders AS (
    SELECT order_id, user_id, created_at FROM ranked WHERE nth = 1
),
purchases AS (
    SELECT user_id, created_at, COALESCE(traffic_source, '(missing)') AS source
    FROM events
    WHERE event_type = 'purchase' AND user_id IS NOT NULL
),
last_touch AS (
    SELECT f.order_id, MAX(p.created_at) AS touched_at
    FROM first_orders f
    JOIN purchases p ON p.user_id = f.user_id AND p.created_at <= f.created_at
    GROUP BY f.order_id
),
attributed AS (
    SELECT f.order_id,
           f.created_at,
           COALESCE(MIN(p.source), '(no purchase session)') AS source
    FROM first_orders f
    LEFT JOIN last_touch l ON l.order_id = f.order_id
    LEFT JOIN purchases p ON p.user_id = f.user_id AND p.created_at = l.touched_at
    GROUP BY f.order_id, f.created_at
)
SELECT CAST(date_part('year', created_at) * 100 + date_part('month', created_at) AS BIGINT) AS month,
       source,
       COUNT(*) AS first_orders
FROM attributed
GROUP BY 1, 2
ORDER BY 1, 2
