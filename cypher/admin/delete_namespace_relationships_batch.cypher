// Deletes up to $limit relationships of one namespace's nodes (items, users, its own entities and
// aliases); the caller loops until 0, then deletes the nodes (admin/delete_namespace_batch), so no
// transaction holds a hub node's every relationship.
MATCH (n)-[r]-()
WHERE n.ns = $ns AND (n:Item OR n:User OR n:Entity OR n:Alias)
WITH DISTINCT r LIMIT $limit
DELETE r
RETURN count(*) AS deleted
