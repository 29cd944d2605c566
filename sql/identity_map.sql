-- identity_map (SPEC §6): every identify with both a user id and an
-- anonymous id links them; each anonymous id belongs to the user of its
-- earliest link, in the order of ("timestamp", received_at, id), and was
-- linked at that link's timestamp, the least of its links'.
-- `earliest` is defined in src/latest.rs.
--
-- Templated by src/pipeline/users.rs: {{slice}} is empty when the map is
-- built in one go; else it keeps one slice k of m of the anonymous ids
-- (src/slice.rs) with
--     AND il_slice(anonymous_id, m) = k
SELECT anonymous_id,
       earliest(user_id, "timestamp", received_at, id) AS user_id,
       min("timestamp") AS linked_at
FROM identifies
WHERE user_id IS NOT NULL AND anonymous_id IS NOT NULL
{{slice}}
GROUP BY anonymous_id
