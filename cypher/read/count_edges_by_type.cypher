// Edges whose head is in the namespace (its items, users, and its own entities and aliases).
MATCH (a)-[r]->()
WHERE a.ns = $ns AND (a:Item OR a:User OR a:Entity OR a:Alias)
RETURN type(r) AS type, count(*) AS count
ORDER BY type
