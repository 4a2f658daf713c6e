"""The figures of `repurchase diagnose`, recomputed by DuckDB from the same raw Parquet.

    python tests/diagnose_check.py <lake folder> <run date YYYY-MM-DD> <horizon days>

prints one JSON object with the counts behind every figure of diagnostics.json (months, status
mix, sessions and first orders by source, funnel, cohort months, segments), which
tests/integration/diagnose.rs compares with what `repurchase diagnose` published. The queries are
written here for DuckDB, independently of sql/diagnose/ (DuckDB's idioms: epoch_us, strftime,
FILTER, arg_min), so that a mistake in either formulation, or in either engine, shows as a
difference. Only the files each partition's `_manifest.json` lists are read.
"""

import datetime
import json
import sys
from pathlib import Path

import duckdb

TABLES = ["orders", "order_items", "products", "users", "events"]


def main() -> None:
    lake, run_date, horizon_days = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    con = duckdb.connect()
    # Month and year boundaries in UTC, as DataFusion computes them.
    con.execute("SET TimeZone = 'UTC'")
    for table in TABLES:
        part = lake / "raw" / table / f"run_date={run_date}"
        manifest = json.loads((part / "_manifest.json").read_text())
        files = [str(part / f["name"]) for f in manifest["files"] if f["name"].endswith(".parquet")]
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet({files!r})")
    day = datetime.date.fromisoformat(run_date)
    run_end = datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time(),
                                        tzinfo=datetime.timezone.utc)
    run_end_us = int(run_end.timestamp()) * 1_000_000
    horizon_us = horizon_days * 86_400 * 1_000_000

    def rows(sql: str, params=None) -> list[dict]:
        cur = con.execute(sql, params or {})
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    out = {}
    out["months"] = rows("""
        SELECT strftime(o.created_at, '%Y-%m') AS month,
               count(*) AS orders,
               count(DISTINCT o.user_id) AS customers,
               coalesce(sum(b.items), 0)::BIGINT AS items,
               coalesce(sum(b.cents), 0)::BIGINT AS cents
        FROM orders o
        LEFT JOIN (SELECT order_id, count(*) AS items,
                          sum(round(sale_price * 100)::BIGINT) AS cents
                   FROM order_items GROUP BY ALL) b USING (order_id)
        GROUP BY ALL ORDER BY month""")
    out["status_mix"] = rows("""
        SELECT strftime(created_at, '%Y-%m') AS month, coalesce(status, '(missing)') AS key,
               count(*) AS count
        FROM orders GROUP BY ALL ORDER BY month, key""")
    out["sessions_by_source"] = rows("""
        WITH s AS (SELECT min(created_at) AS t, min(coalesce(traffic_source, '(missing)')) AS key
                   FROM events GROUP BY session_id)
        SELECT strftime(t, '%Y-%m') AS month, key, count(*) AS count
        FROM s GROUP BY ALL ORDER BY month, key""")
    # Last touch: the latest purchase event at or before the first order (ties: the smallest
    # source).
    out["first_orders_by_source"] = rows("""
        WITH f AS (SELECT user_id, arg_min(order_id, (created_at, order_id)) AS order_id,
                          min(created_at) AS created_at
                   FROM orders GROUP BY user_id),
             p AS (SELECT user_id, created_at, coalesce(traffic_source, '(missing)') AS source
                   FROM events WHERE event_type = 'purchase' AND user_id IS NOT NULL),
             touch AS (SELECT f.order_id, f.created_at, max(p.created_at) AS touched
                       FROM f LEFT JOIN p ON p.user_id = f.user_id AND p.created_at <= f.created_at
                       GROUP BY ALL),
             attributed AS (
                SELECT t.order_id, t.created_at,
                       coalesce(min(p.source), '(no purchase session)') AS source
                FROM touch t JOIN f USING (order_id)
                LEFT JOIN p ON p.user_id = f.user_id AND p.created_at = t.touched
                GROUP BY t.order_id, t.created_at)
        SELECT strftime(created_at, '%Y-%m') AS month, source AS key, count(*) AS count
        FROM attributed GROUP BY ALL ORDER BY month, key""")
    out["funnel"] = rows("""
        WITH s AS (SELECT min(created_at) AS t,
                          bool_or(event_type = 'product') AS viewed,
                          bool_or(event_type = 'cart') AS carted,
                          bool_or(event_type = 'purchase') AS bought
                   FROM events GROUP BY session_id)
        SELECT year(t) AS year, count(*) AS sessions,
               count(*) FILTER (viewed) AS browse,
               count(*) FILTER (viewed AND carted) AS cart,
               count(*) FILTER (viewed AND carted AND bought) AS purchase
        FROM s GROUP BY ALL ORDER BY year""")
    con.execute("""
        CREATE TABLE cohort AS
        WITH c AS (SELECT order_id, user_id, epoch_us(created_at) AS us, created_at
                   FROM orders WHERE status = 'Complete'),
             f AS (SELECT user_id, arg_min(order_id, (us, order_id)) AS order_id, min(us) AS us,
                          min(created_at) AS created_at
                   FROM c GROUP BY user_id),
             top AS (SELECT i.order_id, max(i.sale_price) AS price
                     FROM order_items i SEMI JOIN f USING (order_id) GROUP BY ALL),
             cat AS (SELECT i.order_id, min(coalesce(p.category, '(missing)')) AS category
                     FROM order_items i JOIN top t ON t.order_id = i.order_id AND i.sale_price = t.price
                     LEFT JOIN products p ON p.id = i.product_id GROUP BY ALL)
        SELECT f.user_id, strftime(f.created_at, '%Y-%m') AS month,
               f.us + $horizon < $run_end AS closed,
               EXISTS (SELECT 1 FROM c WHERE c.user_id = f.user_id AND c.us > f.us
                                          AND c.us <= f.us + $horizon) AS repurchased,
               coalesce(u.traffic_source, '(missing)') AS signup_channel,
               coalesce(cat.category, '(no items)') AS first_category,
               CASE WHEN u.age IS NULL THEN '(missing)'
                    WHEN u.age >= 65 THEN '65 and over'
                    WHEN u.age >= 55 THEN '55-64'
                    WHEN u.age >= 45 THEN '45-54'
                    WHEN u.age >= 35 THEN '35-44'
                    WHEN u.age >= 25 THEN '25-34'
                    WHEN u.age >= 18 THEN '18-24'
                    ELSE 'under 18' END AS age_band
        FROM f LEFT JOIN users u ON u.id = f.user_id LEFT JOIN cat USING (order_id)
    """, {"horizon": horizon_us, "run_end": run_end_us})
    out["repurchase_by_month"] = rows("""
        SELECT month, count(*) AS first_orders, count(*) FILTER (closed) AS closed,
               count(*) FILTER (closed AND repurchased) AS repurchased
        FROM cohort GROUP BY ALL ORDER BY month""")
    out["segments"] = rows("""
        WITH long AS (
            UNPIVOT (SELECT signup_channel AS "sign-up channel",
                            first_category AS "category of first purchase",
                            age_band AS "age band", repurchased
                     FROM cohort WHERE closed)
            ON "sign-up channel", "category of first purchase", "age band"
            INTO NAME dimension VALUE value)
        SELECT dimension, value, count(*) AS closed, count(*) FILTER (repurchased) AS repurchased
        FROM long GROUP BY ALL ORDER BY dimension, value""")
    json.dump(out, sys.stdout, default=int)


if __name__ == "__main__":
    main()
