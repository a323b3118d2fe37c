// Quality check: entities no item points at (seeded vocabulary never used, or only
// users prefer them), with how many users do.
MATCH (e:Entity)
WHERE NOT EXISTS { (:Item)-->(e) }
RETURN e.name AS entity, e.type AS type, coalesce(e.vocabulary, false) AS from_vocabulary,
       COUNT { (:User)-->(e) } AS users
ORDER BY users DESC, type, entity
LIMIT 100
