// Every entity of the entity namespace, streamed (no ORDER BY: the duplicate scan samples it by key hash).
MATCH (e:Entity) WHERE e.ns = $ens AND e.key IS NOT NULL
RETURN e.key AS key, e.type AS type, e.name AS name
