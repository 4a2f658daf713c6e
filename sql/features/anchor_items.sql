-- The items of every anchor basket, with product and distribution centre: table `items` of
-- sql/features/anchors.sql, computed once after table `anchors` (sql/features/anchor_set.sql) and
-- registered before that query runs (DataFusion inlines a CTE at every use; the basket features
-- read the items four times). The basket is the anchor order itself, known at the anchor.
--
-- scripts/gen-sql inlines this query as the CTE `items` of the generated Athena and DuckDB
-- versions of sql/features/anchors.sql.
SELECT a.order_id, oi.id AS item_id,
       CAST(ROUND(oi.sale_price * 100) AS BIGINT) AS sale_cents,
       CAST(ROUND(pr.retail_price * 100) AS BIGINT) AS retail_cents,
       pr.category, pr.department, pr.brand, pr.name AS product_name, dc.name AS dc_name
FROM anchors a
JOIN order_items oi ON oi.order_id = a.order_id
LEFT JOIN products pr ON pr.id = oi.product_id
LEFT JOIN distribution_centers dc ON dc.id = pr.distribution_center_id
