// Distinct (user, relation, entity) triples: user-side knowledge such as PREFERS.
MATCH (u:User)-[r]->(e:Entity)
WHERE $sources IS NULL OR r.source IN $sources
RETURN DISTINCT 'user:' + u.user_id AS head, type(r) AS relation, 'entity:' + e.key AS tail
ORDER BY head, relation, tail
