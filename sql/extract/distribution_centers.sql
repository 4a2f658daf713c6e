-- TheLook's `distribution_centers` for `extract --source athena` (Athena engine 3 / Trino dialect).
--
-- Run as UNLOAD (<this query>) TO '<data root>/staging/athena/distribution_centers/run_date=D/'
-- WITH (format = 'PARQUET', compression = 'SNAPPY') in the configured database; extract then
-- validates the staged files and publishes raw/distribution_centers/run_date=D/ as the files source does.
-- Columns: TheLook's exact names; the casts pin TheLook's types whatever the source table declares.
-- A reference table without a creation time: extracted whole, no parameter.
SELECT
    CAST(id AS BIGINT)        AS id,
    CAST(name AS VARCHAR)     AS name,
    CAST(latitude AS DOUBLE)  AS latitude,
    CAST(longitude AS DOUBLE) AS longitude
FROM distribution_centers
