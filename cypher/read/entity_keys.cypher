MATCH (e:Entity) WHERE e.ns = $ens AND e.key IS NOT NULL
RETURN e.key AS key, e.type AS type, e.name AS name
ORDER BY key
