-- TheLook's `products` for `extract --source athena` (Athena engine 3 / Trino dialect).
--
-- Run as UNLOAD (<this query>) TO '<data root>/staging/athena/products/run_date=D/'
-- WITH (format = 'PARQUET', compression = 'SNAPPY') in the configured database; extract then
-- validates the staged files and publishes raw/products/run_date=D/ as the files source does.
-- Columns: TheLook's exact names; the casts pin TheLook's types whatever the source table declares.
-- A reference table without a creation time: extracted whole, no parameter.
SELECT
    CAST(id AS BIGINT)                     AS id,
    CAST(cost AS DOUBLE)                   AS cost,
    CAST(category AS VARCHAR)              AS category,
    CAST(name AS VARCHAR)                  AS name,
    CAST(brand AS VARCHAR)                 AS brand,
    CAST(retail_price AS DOUBLE)           AS retail_price,
    CAST(department AS VARCHAR)            AS department,
    CAST(sku AS VARCHAR)                   AS sku,
    CAST(distribution_center_id AS BIGINT) AS distribution_center_id
FROM products
