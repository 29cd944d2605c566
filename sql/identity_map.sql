-- identity_map (SPEC §6): every identify with both a user id and an
-- anonymous id links them; each anonymous id belongs to the user of its
-- earliest link, in the order of ("timestamp", received_at, id).
SELECT anonymous_id, user_id, linked_at
FROM (
    SELECT anonymous_id,
           user_id,
           "timestamp" AS linked_at,
           row_number() OVER (
               PARTITION BY anonymous_id
               ORDER BY "timestamp", received_at, id
           ) AS link_rank
    FROM identifies
    WHERE user_id IS NOT NULL AND anonymous_id IS NOT NULL
) AS links
WHERE link_rank = 1
