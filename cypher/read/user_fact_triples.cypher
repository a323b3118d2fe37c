MATCH (u:User {ns: $ns})-[r]->(e:Entity)
WHERE $sources IS NULL OR r.source IN $sources
RETURN DISTINCT 'user:' + u.user_id AS head, type(r) AS relation, 'entity:' + e.key AS tail
ORDER BY head, relation, tail
