// Entities of the entity namespace with how many of this namespace's items and users point at them.
MATCH (e:Entity) WHERE e.ns = $ens AND e.key IS NOT NULL
RETURN e.key AS key, e.type AS type,
       COUNT { MATCH (i:Item {ns: $ns})-->(e) RETURN DISTINCT i } AS items,
       COUNT { MATCH (u:User {ns: $ns})-->(e) RETURN DISTINCT u } AS users
