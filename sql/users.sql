-- users (SPEC §6): one row per user id that owns at least one identify,
-- from `owned` (sql/owned.sql): the identifies with their owner.
--
-- Templated by src/pipeline/users.rs for the trait columns of identifies:
--   trait_aggregates (placeholder below), for each trait column c:
--       , latest(c, "timestamp", received_at, id) AS c
--     the value of the latest identify (in the order of ("timestamp",
--     received_at, id)) where c is not null: a null never erases a value,
--     and an older (late, backfilled) event never overrides a newer one.
--     `latest` is defined in src/latest.rs.
--   trait_columns (placeholder below), for each trait column c: , c
--     (with `name` filled from first_name and last_name when still null).
-- Internal names hold a `$`, which no column name of identifies can.
WITH collapsed AS (
    SELECT "il$owner",
           min("timestamp") AS first_seen_at,
           max("timestamp") AS last_seen_at,
           count(*) AS identify_count
           {{trait_aggregates}}
    FROM owned
    GROUP BY "il$owner"
),
-- The anonymous ids that belong to a user are its identity_map rows.
anonymous AS (
    SELECT user_id AS "il$owner", array_agg(anonymous_id) AS "il$anonymous_ids"
    FROM identity_map
    GROUP BY user_id
)
SELECT collapsed."il$owner" AS id,
       array_sort(COALESCE(anonymous."il$anonymous_ids", arrow_cast(make_array(), 'List(Utf8)'))) AS anonymous_ids,
       first_seen_at,
       last_seen_at,
       identify_count
       {{trait_columns}}
FROM collapsed
LEFT JOIN anonymous ON anonymous."il$owner" = collapsed."il$owner"
ORDER BY id
