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
-- A user's anonymous ids (its identity_map rows) are those of its identifies
-- that are linked to it: each was linked by at least one of them.
-- `sorted_distinct` (src/sorted_distinct.rs) lists them once each, sorted,
-- and an empty list for a user without any. This keeps every user-sized
-- state in the aggregate, which can spill, rather than in a join's hash
-- table, which cannot.
WITH collapsed AS (
    SELECT "il$owner",
           sorted_distinct(anonymous_id) FILTER (WHERE "il$linked_to" = "il$owner") AS "il$anonymous_ids",
           min("timestamp") AS first_seen_at,
           max("timestamp") AS last_seen_at,
           count(*) AS identify_count
           {{trait_aggregate}}
    FROM owned
    GROUP BY "il$owner"
),
traits AS (
    SELECT "il$owner", "il$anonymous_ids", first_seen_at, last_seen_at, identify_count
           {{trait_fields}}
    FROM collapsed
)
SELECT "il$owner" AS id,
       "il$anonymous_ids" AS anonymous_ids,
       first_seen_at,
       last_seen_at,
       identify_count
       {{trait_columns}}
FROM traits
-- No ORDER BY: a sort of the whole table would have to share the memory
-- limit with the aggregate still emitting into it, and could not finish.
