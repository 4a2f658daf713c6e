-- TheLook's `users` for `extract --source athena` (Athena engine 3 / Trino dialect).
--
-- Run as UNLOAD (<this query>) TO '<data root>/staging/athena/users/run_date=D/'
-- WITH (format = 'PARQUET', compression = 'SNAPPY') in the configured database; extract then
-- validates the staged files and publishes raw/users/run_date=D/ as the files source does.
-- Columns: TheLook's exact names; the casts pin TheLook's types whatever the source table declares.
-- `?`: exclusive end of the run date, bound through ExecutionParameters as a TIMESTAMP literal
-- built from the parsed run date. NULL created_at rows are kept so that validation rejects them.
SELECT
    CAST(id AS BIGINT)              AS id,
    CAST(first_name AS VARCHAR)     AS first_name,
    CAST(last_name AS VARCHAR)      AS last_name,
    CAST(email AS VARCHAR)          AS email,
    CAST(age AS BIGINT)             AS age,
    CAST(gender AS VARCHAR)         AS gender,
    CAST(state AS VARCHAR)          AS state,
    CAST(street_address AS VARCHAR) AS street_address,
    CAST(postal_code AS VARCHAR)    AS postal_code,
    CAST(city AS VARCHAR)           AS city,
    CAST(country AS VARCHAR)        AS country,
    CAST(latitude AS DOUBLE)        AS latitude,
    CAST(longitude AS DOUBLE)       AS longitude,
    CAST(traffic_source AS VARCHAR) AS traffic_source,
    CAST(created_at AS TIMESTAMP)   AS created_at
FROM users
WHERE created_at < ? OR created_at IS NULL
