// Entities of the entity namespace with how many of this namespace's items and users point at them.
MATCH (e:Entity {ns: $ens})
RETURN e.key AS key, e.type AS type,
       COUNT { MATCH (i:Item {ns: $ns})-->(e) RETURN DISTINCT i } AS items,
       COUNT { MATCH (u:User {ns: $ns})-->(e) RETURN DISTINCT u } AS users
