// read/entity_degrees aggregated in the database: how many entities of each type have `items`
// distinct items of this namespace pointing at them, split by whether any of its users does.
// One row per (type, degree, with_users): the report's distributions need nothing more, so
// nothing per entity leaves the server.
MATCH (e:Entity) WHERE e.ns = $ens AND e.key IS NOT NULL
WITH e.type AS type,
     COUNT { MATCH (i:Item {ns: $ns})-->(e) RETURN DISTINCT i } AS items,
     COUNT { MATCH (u:User {ns: $ns})-->(e) RETURN DISTINCT u } > 0 AS with_users
RETURN type, items, with_users, count(*) AS entities
