UNWIND $keys AS key
MATCH (e:Entity {ns: $ens, key: key})
RETURN e.key AS key, e.name AS name
