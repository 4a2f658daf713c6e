-- TheLook's `inventory_items` for `extract --source athena` (Athena engine 3 / Trino dialect).
--
-- Run as UNLOAD (<this query>) TO '<data root>/staging/athena/inventory_items/run_date=D/'
-- WITH (format = 'PARQUET', compression = 'SNAPPY') in the configured database; extract then
-- validates the staged files and publishes raw/inventory_items/run_date=D/ as the files source does.
-- Columns: TheLook's exact names; the casts pin TheLook's types whatever the source table declares.
-- `?`: exclusive end of the run date, bound through ExecutionParameters as a TIMESTAMP literal
-- built from the parsed run date. NULL created_at rows are kept so that validation rejects them.
SELECT
    CAST(id AS BIGINT)                             AS id,
    CAST(product_id AS BIGINT)                     AS product_id,
    CAST(created_at AS TIMESTAMP)                  AS created_at,
    CAST(sold_at AS TIMESTAMP)                     AS sold_at,
    CAST(cost AS DOUBLE)                           AS cost,
    CAST(product_category AS VARCHAR)              AS product_category,
    CAST(product_name AS VARCHAR)                  AS product_name,
    CAST(product_brand AS VARCHAR)                 AS product_brand,
    CAST(product_retail_price AS DOUBLE)           AS product_retail_price,
    CAST(product_department AS VARCHAR)            AS product_department,
    CAST(product_sku AS VARCHAR)                   AS product_sku,
    CAST(product_distribution_center_id AS BIGINT) AS product_distribution_center_id
FROM inventory_items
WHERE created_at < ? OR created_at IS NULL
