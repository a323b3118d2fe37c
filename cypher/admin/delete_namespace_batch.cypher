// Delete one namespace's nodes (items, users, and its own entities and aliases), in batches.
MATCH (n)
WHERE n.ns = $ns AND (n:Item OR n:User OR n:Entity OR n:Alias)
WITH n LIMIT $limit
DETACH DELETE n
RETURN count(*) AS deleted
