// Every entity key with its type and name.
MATCH (e:Entity)
RETURN e.key AS key, e.type AS type, e.name AS name
ORDER BY key
