// Every entity of the entity namespace, streamed (no ORDER BY: the duplicate scan samples it by key hash).
MATCH (e:Entity {ns: $ens})
RETURN e.key AS key, e.type AS type, e.name AS name
