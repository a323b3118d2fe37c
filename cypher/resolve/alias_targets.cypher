UNWIND $keys AS key
MATCH (a:Alias {ns: $ens, key: key})-[:ALIAS_OF]->(e:Entity)
RETURN a.key AS key, e.key AS canonical_key, e.name AS canonical_name
