-- The identifies that belong to a user (SPEC §6), each with its owner: its
-- own user id, or else its anonymous id's user (identity_map). An identify
-- with only an unlinked anonymous id belongs to no user.
-- Internal names hold a `$`, which no column name of identifies can.
SELECT COALESCE(i.user_id, m.user_id) AS "il$owner", i.*
FROM identifies AS i
LEFT JOIN identity_map AS m ON i.anonymous_id = m.anonymous_id
WHERE COALESCE(i.user_id, m.user_id) IS NOT NULL
