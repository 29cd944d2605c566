-- users (SPEC §6): one row per user id that owns at least one identify.
-- An identify belongs to its own user id; one with only an anonymous id
-- belongs to that anonymous id's user (identity_map), or to no user.
--
-- Templated by src/pipeline/users.rs for the trait columns of identifies:
--   trait_aggregates (placeholder below), for each trait column c:
--       , last_value(c ORDER BY "timestamp", received_at, id) FILTER (WHERE c IS NOT NULL) AS c
--     the latest non-null value: a null never erases a value, and an older
--     (late, backfilled) event never overrides a newer one.
--   trait_columns (placeholder below), for each trait column c: , c
--     (with `name` filled from first_name and last_name when still null).
WITH owned AS (
    SELECT COALESCE(i.user_id, m.user_id) AS owner,
           CASE WHEN m.user_id = COALESCE(i.user_id, m.user_id) THEN i.anonymous_id END AS owned_anonymous_id,
           i.*
    FROM identifies AS i
    LEFT JOIN identity_map AS m ON i.anonymous_id = m.anonymous_id
),
collapsed AS (
    SELECT owner,
           array_agg(DISTINCT owned_anonymous_id) FILTER (WHERE owned_anonymous_id IS NOT NULL) AS owned_anonymous_ids,
           min("timestamp") AS first_seen_at,
           max("timestamp") AS last_seen_at,
           count(*) AS identify_count
           {{trait_aggregates}}
    FROM owned
    WHERE owner IS NOT NULL
    GROUP BY owner
)
SELECT owner AS id,
       array_sort(COALESCE(owned_anonymous_ids, arrow_cast(make_array(), 'List(Utf8)'))) AS anonymous_ids,
       first_seen_at,
       last_seen_at,
       identify_count
       {{trait_columns}}
FROM collapsed
ORDER BY id
