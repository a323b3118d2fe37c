// Quality check: entities no item points at (seeded vocabulary never used, or only
// users prefer them), with how many users do.
// Every query is scoped to one job's namespace:  :param ns => 'movielens-demo'
MATCH (e:Entity {ns: $ns})
WHERE NOT EXISTS { (:Item {ns: $ns})-->(e) }
RETURN e.name AS entity, e.type AS type, coalesce(e.vocabulary, false) AS from_vocabulary,
       COUNT { (:User {ns: $ns})-->(e) } AS users
ORDER BY users DESC, type, entity
LIMIT 100
