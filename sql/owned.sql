-- The identifies that belong to a user (SPEC §6), each with its owner: its
-- own user id, or else its anonymous id's user (identity_map). An identify
-- with only an unlinked anonymous id belongs to no user. "il$linked_to" is
-- the user its anonymous id belongs to.
-- Internal names hold a `$`, which no column name of identifies can.
--
-- Templated by src/pipeline/users.rs: when users is built in one go,
-- map_slice is empty and identifies is `identifies`. Else they keep one
-- slice k of n of the owners (src/slice.rs): map_slice with
--     WHERE il_slice(user_id, n) = k
-- and identifies is the slice's table (src/pipeline/slice_files.rs): the
-- identifies whose user id is in the slice, and all those without one.
-- An identify of the slice has a user id in it, or none and an anonymous id
-- linked to a user in it: the map's other rows give no identify of the slice
-- its owner. An identify whose anonymous id is linked to a user of another
-- slice then has no "il$linked_to", and the id is not its owner's either way.
-- The map is the join's build side, as written: users turns off DataFusion's
-- swapping of sides, which would collect the identifies of a slice, smaller
-- than the map in its estimate, into the join's table. The map's columns are
-- renamed: DataFusion 55.2 pushes a filter through a join to the side that
-- has columns of the names it uses, so that `COALESCE(i.user_id, m.user_id)`
-- reached the identifies as `COALESCE(i.user_id, i.user_id)`.
SELECT COALESCE(i.user_id, m."il$linked_to") AS "il$owner", m."il$linked_to", i.*
FROM (SELECT anonymous_id AS "il$anonymous_id", user_id AS "il$linked_to"
      FROM identity_map
      {{map_slice}}) AS m
RIGHT JOIN {{identifies}} AS i ON i.anonymous_id = m."il$anonymous_id"
WHERE COALESCE(i.user_id, m."il$linked_to") IS NOT NULL
