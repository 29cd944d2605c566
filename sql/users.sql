-- users (SPEC §6): one row per user id that owns at least one identify,
-- from `owned` (sql/owned.sql): the identifies with their owner.
--
-- Templated by src/pipeline/users.rs for the trait columns of identifies
-- (the placeholders below are empty when there are none):
--   trait_aggregate:
--       , latest_fields(named_struct('c1', c1, 'c2', c2, …),
--                       "timestamp", received_at, id) AS "il$traits"
--     for each trait column c, the value of the latest identify (in the
--     order of ("timestamp", received_at, id)) where c is not null: a null
--     never erases a value, and an older (late, backfilled) event never
--     overrides a newer one. `latest_fields` is defined in
--     src/latest_fields.rs.
--   trait_fields, for each trait column c: , "il$traits"['c'] AS c
--   trait_columns, for each trait column c: , c
--     (with `name` filled from first_name and last_name when still null).
-- Internal names hold a `$`, which no column name of identifies can.
WITH collapsed AS (
    SELECT "il$owner",
           min("timestamp") AS first_seen_at,
           max("timestamp") AS last_seen_at,
           count(*) AS identify_count
           {{trait_aggregate}}
    FROM owned
    GROUP BY "il$owner"
),
traits AS (
    SELECT "il$owner", first_seen_at, last_seen_at, identify_count
           {{trait_fields}}
    FROM collapsed
),
-- The anonymous ids that belong to a user are its identity_map rows.
anonymous AS (
    SELECT user_id AS "il$owner", array_agg(anonymous_id) AS "il$anonymous_ids"
    FROM identity_map
    GROUP BY user_id
)
SELECT traits."il$owner" AS id,
       array_sort(COALESCE(anonymous."il$anonymous_ids", arrow_cast(make_array(), 'List(Utf8)'))) AS anonymous_ids,
       first_seen_at,
       last_seen_at,
       identify_count
       {{trait_columns}}
FROM traits
LEFT JOIN anonymous ON anonymous."il$owner" = traits."il$owner"
ORDER BY id
