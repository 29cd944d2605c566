-- The identifies that belong to a user (SPEC §6), each with its owner: its
-- own user id, or else its anonymous id's user (identity_map). An identify
-- with only an unlinked anonymous id belongs to no user. "il$linked_to" is
-- the user its anonymous id belongs to.
-- Internal names hold a `$`, which no column name of identifies can.
SELECT COALESCE(i.user_id, m.user_id) AS "il$owner", m.user_id AS "il$linked_to", i.*
FROM identifies AS i
LEFT JOIN identity_map AS m ON i.anonymous_id = m.anonymous_id
WHERE COALESCE(i.user_id, m.user_id) IS NOT NULL
