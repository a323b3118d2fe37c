// The namespace's nodes: its items and users, and the entities and aliases of its entity
// namespace when it owns that alone ($own_entities); with shared entities, only the
// entities its items and users point at.
MATCH (n)
WHERE (n.ns = $ns AND (n:Item OR n:User OR ($own_entities AND (n:Entity OR n:Alias))))
   OR (NOT $own_entities AND n:Entity AND n.ns = $ens AND EXISTS { (h)-->(n) WHERE h.ns = $ns AND (h:Item OR h:User) })
RETURN CASE
         WHEN n:Item THEN 'item:' + n.item_id
         WHEN n:User THEN 'user:' + n.user_id
         WHEN n:Entity THEN 'entity:' + n.key
         WHEN n:Alias THEN 'alias:' + n.key
         ELSE 'node:' + elementId(n)
       END AS id, labels(n) AS labels, properties(n) AS props
