#!/usr/bin/env python3
"""The hand-written DuckDB job a data engineer would run instead, in two
flavours, as two engineers might write it:

    duckdb_job.py load  INPUT_GLOB WAREHOUSE [--flavour flat|struct]
    duckdb_job.py users WAREHOUSE [--flavour flat|struct]

`flat` reads the gzip NDJSON, keeps identify calls, flattens context and
traits into columns (and keeps the traits as JSON, as our `identifies` does)
and writes Hive-partitioned Parquet; `users` takes each user's latest
non-null value per trait with arg_max … FILTER.

`struct` does the least work at load: it keeps `traits` and `context` as
the structs DuckDB infers, and unnests the traits when it builds users. It
is the faster of the two on the bench's data, so the peer to beat.

Neither has any of SPEC.md's rules (no rejects, dedup, stitching, typing or
naming rules).
"""
import argparse

import duckdb

SELECT_IDS = """messageId AS id, userId AS user_id, anonymousId AS anonymous_id,
       "timestamp"::TIMESTAMPTZ AS "timestamp", receivedAt::TIMESTAMPTZ AS received_at"""


def load_flat(con, source, warehouse):
    con.execute(f"""
        COPY (
            SELECT {SELECT_IDS},
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


def load_struct(con, source, warehouse):
    con.execute(f"""
        COPY (
            SELECT {SELECT_IDS}, channel, traits, context,
                   strftime(receivedAt::TIMESTAMPTZ, '%Y-%m-%d') AS received_date
            FROM read_ndjson('{source}')
            WHERE type = 'identify'
        ) TO '{warehouse}/identifies' (FORMAT parquet, PARTITION_BY (received_date), OVERWRITE_OR_IGNORE)
    """)


def latest(traits):
    return ",\n".join(f'arg_max("{c}", "timestamp") FILTER (WHERE "{c}" IS NOT NULL) AS "{c}"' for c in traits)


def users_flat(con, warehouse):
    identifies = f"read_parquet('{warehouse}/identifies/*/*.parquet', hive_partitioning = true)"
    columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {identifies}").fetchall()]
    fixed = {"id", "user_id", "anonymous_id", "timestamp", "received_at", "original_timestamp", "sent_at",
             "channel", "traits_json", "received_date"}
    traits = [c for c in columns if c not in fixed and not c.startswith("context_")]
    con.execute(f"""
        COPY (
            SELECT user_id AS id, min("timestamp") AS first_seen_at, max("timestamp") AS last_seen_at,
                   count(*) AS identify_count, {latest(traits)}
            FROM {identifies}
            WHERE user_id IS NOT NULL
            GROUP BY user_id
        ) TO '{warehouse}/users.parquet' (FORMAT parquet)
    """)


def users_struct(con, warehouse):
    identifies = f"read_parquet('{warehouse}/identifies/*/*.parquet')"
    traits = [r[0] for r in con.execute(
        f"DESCRIBE SELECT unnest(traits, recursive := true) FROM {identifies}").fetchall()]
    con.execute(f"""
        COPY (
            SELECT user_id AS id, min("timestamp") AS first_seen_at, max("timestamp") AS last_seen_at,
                   count(*) AS identify_count, {latest(traits)}
            FROM (SELECT user_id, "timestamp", unnest(traits, recursive := true)
                  FROM {identifies} WHERE user_id IS NOT NULL)
            GROUP BY user_id
        ) TO '{warehouse}/users.parquet' (FORMAT parquet)
    """)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("phase", choices=["load", "users"])
    p.add_argument("paths", nargs="+")
    p.add_argument("--flavour", choices=["flat", "struct"], default="flat")
    args = p.parse_args()
    con = duckdb.connect()
    if args.phase == "load":
        source, warehouse = args.paths
        {"flat": load_flat, "struct": load_struct}[args.flavour](con, source, warehouse)
    else:
        (warehouse,) = args.paths
        {"flat": users_flat, "struct": users_struct}[args.flavour](con, warehouse)


if __name__ == "__main__":
    main()
