// Entities linked to the most items.
MATCH (e:Entity)<-[r]-(:Item)
RETURN e.name AS entity, e.type AS type, count(r) AS items
ORDER BY items DESC, entity
LIMIT 25
