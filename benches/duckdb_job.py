#!/usr/bin/env python3
"""The hand-written DuckDB job a data engineer would run instead.

    duckdb_job.py load  INPUT_GLOB WAREHOUSE
    duckdb_job.py users WAREHOUSE

`load` reads the gzip NDJSON, keeps identify calls, flattens context and
traits into columns and writes Hive-partitioned Parquet; `users` takes each
user's latest non-null value per trait with arg_max … FILTER. It has none of
SPEC.md's rules (no rejects, dedup, stitching, typing or naming rules).
"""
import sys

import duckdb


def load(con, source, warehouse):
    con.execute(f"""
        COPY (
            SELECT messageId AS id, userId AS user_id, anonymousId AS anonymous_id,
                   "timestamp"::TIMESTAMPTZ AS "timestamp", receivedAt::TIMESTAMPTZ AS received_at,
                   originalTimestamp::TIMESTAMPTZ AS original_timestamp, sentAt::TIMESTAMPTZ AS sent_at,
                   channel, to_json(traits) AS traits_json,
                   unnest(traits, recursive := true),
                   context.ip AS context_ip, context.library.name AS context_library_name,
                   context.library.version AS context_library_version, context.locale AS context_locale,
                   context.page.path AS context_page_path, context.page.url AS context_page_url,
                   context.userAgent AS context_user_agent,
                   strftime(receivedAt::TIMESTAMPTZ, '%Y-%m-%d') AS received_date
            FROM read_ndjson('{source}', union_by_name = true)
            WHERE type = 'identify'
        ) TO '{warehouse}/identifies' (FORMAT parquet, PARTITION_BY (received_date), OVERWRITE_OR_IGNORE)
    """)


def users(con, warehouse):
    columns = [r[0] for r in con.execute(
        f"DESCRIBE SELECT * FROM read_parquet('{warehouse}/identifies/*/*.parquet', hive_partitioning = true)"
    ).fetchall()]
    fixed = {"id", "user_id", "anonymous_id", "timestamp", "received_at", "original_timestamp", "sent_at",
             "channel", "traits_json", "received_date"}
    traits = [c for c in columns if c not in fixed and not c.startswith("context_")]
    aggregates = ",\n".join(
        f'arg_max("{c}", "timestamp") FILTER (WHERE "{c}" IS NOT NULL) AS "{c}"' for c in traits
    )
    con.execute(f"""
        COPY (
            SELECT user_id AS id, min("timestamp") AS first_seen_at, max("timestamp") AS last_seen_at,
                   count(*) AS identify_count, {aggregates}
            FROM read_parquet('{warehouse}/identifies/*/*.parquet', hive_partitioning = true)
            WHERE user_id IS NOT NULL
            GROUP BY user_id
        ) TO '{warehouse}/users.parquet' (FORMAT parquet)
    """)


def main():
    con = duckdb.connect()
    if sys.argv[1] == "load":
        load(con, sys.argv[2], sys.argv[3])
    else:
        users(con, sys.argv[2])


if __name__ == "__main__":
    main()
