-- Orders per calendar month (UTC) of their creation and status as of the run date: the
-- order-status mix over time (Complete, Shipped, Processing, Cancelled, Returned in TheLook).
--
-- Tables: `orders` (the raw partition of the run date). No parameters. `month` is year * 100 +
-- month; a missing status is counted as '(missing)'.
SELECT CAST(date_part('year', created_at) * 100 + date_part('month', created_at) AS BIGINT) AS month,
       COALESCE(status, '(missing)') AS status,
       COUNT(*)                      AS orders
FROM orders
GROUP BY 1, 2
ORDER BY 1, 2
