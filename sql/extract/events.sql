-- TheLook's `events` for `extract --source athena` (Athena engine 3 / Trino dialect).
--
-- Run as UNLOAD (<this query>) TO '<data root>/staging/athena/events/run_date=D/'
-- WITH (format = 'PARQUET', compression = 'SNAPPY') in the configured database; extract then
-- validates the staged files and publishes raw/events/run_date=D/ as the files source does.
-- Columns: TheLook's exact names; the casts pin TheLook's types whatever the source table declares.
-- `?`: exclusive end of the run date, bound through ExecutionParameters as a TIMESTAMP literal
-- built from the parsed run date. NULL created_at rows are kept so that validation rejects them.
SELECT
    CAST(id AS BIGINT)              AS id,
    CAST(user_id AS BIGINT)         AS user_id,
    CAST(sequence_number AS BIGINT) AS sequence_number,
    CAST(session_id AS VARCHAR)     AS session_id,
    CAST(created_at AS TIMESTAMP)   AS created_at,
    CAST(ip_address AS VARCHAR)     AS ip_address,
    CAST(city AS VARCHAR)           AS city,
    CAST(state AS VARCHAR)          AS state,
    CAST(postal_code AS VARCHAR)    AS postal_code,
    CAST(browser AS VARCHAR)        AS browser,
    CAST(traffic_source AS VARCHAR) AS traffic_source,
    CAST(uri AS VARCHAR)            AS uri,
    CAST(event_type AS VARCHAR)     AS event_type
FROM events
WHERE created_at < ? OR created_at IS NULL
