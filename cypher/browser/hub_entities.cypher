// Entities linked to the most items.
// Every query is scoped to one job's namespace:  :param ns => 'movielens-demo'
MATCH (e:Entity)<-[r]-(:Item {ns: $ns})
RETURN e.name AS entity, e.type AS type, count(r) AS items
ORDER BY items DESC, entity
LIMIT 25
