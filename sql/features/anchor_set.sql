-- The anchors of sql/features/anchors.sql, computed once and registered as table `anchors` before
-- that query runs (DataFusion inlines a CTE at every use, and the anchors are used a dozen times).
--
-- Parameters (bound as typed values, never pasted):
--   $first_only  BOOLEAN  true: anchor = each customer's first completed order;
--                         false: every completed order is an anchor
--
-- scripts/gen-sql inlines this query as the CTE `anchors` of the generated Athena and DuckDB
-- versions of sql/features/anchors.sql.
WITH
complete AS (
    SELECT order_id, user_id, created_at,
           CAST(created_at AS BIGINT) AS created_us,
           ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY CAST(created_at AS BIGINT), order_id) AS nth
    FROM orders
    WHERE status = 'Complete'
)
SELECT order_id, user_id, created_at AS anchor_time, created_us AS anchor_us
FROM complete
WHERE nth = 1 OR NOT $first_only
