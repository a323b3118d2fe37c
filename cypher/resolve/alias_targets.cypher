// The canonical entity of each known alias among $keys.
UNWIND $keys AS key
MATCH (a:Alias {key: key})-[:ALIAS_OF]->(e:Entity)
RETURN a.key AS key, e.key AS canonical_key, e.name AS canonical_name
