MATCH (e:Entity {ns: $ens})
RETURN e.key AS key, e.type AS type, e.name AS name
ORDER BY key
