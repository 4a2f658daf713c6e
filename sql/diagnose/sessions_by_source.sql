-- Web sessions per calendar month (UTC) of their first event and traffic source: the traffic
-- sources' share of sessions over time (is organic traffic decreasing?).
--
-- Tables: `events` (the raw partition of the run date). No parameters. A session's source is its
-- events' traffic source (TheLook gives every event of a session the same one; the smallest is
-- taken should they differ); anonymous sessions count. `month` is year * 100 + month.
WITH sessions AS (
    SELECT session_id,
           MIN(created_at)                            AS started_at,
           MIN(COALESCE(traffic_source, '(missing)')) AS source
    FROM events
    GROUP BY session_id
)
SELECT CAST(date_part('year', started_at) * 100 + date_part('month', started_at) AS BIGINT) AS month,
       source,
       COUNT(*) AS sessions
FROM sessions
GROUP BY 1, 2
ORDER BY 1, 2
