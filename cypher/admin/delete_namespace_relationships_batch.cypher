// Deletes up to $limit relationships of one namespace's nodes (items, users, its own entities and
// aliases); the caller loops until 0, then deletes the nodes (admin/delete_namespace_batch), so no
// transaction holds a hub node's every relationship. One index seek per label on the (ns, anchor)
// uniqueness constraints, so each batch's cost follows this namespace, not every job in the database
// (admin/delete_namespace_sweep_* then removes any node of the namespace that lacks its anchor).
CALL () {
  MATCH (n:Item) WHERE n.ns = $ns AND n.item_id IS NOT NULL RETURN n
  UNION
  MATCH (n:User) WHERE n.ns = $ns AND n.user_id IS NOT NULL RETURN n
  UNION
  MATCH (n:Entity) WHERE n.ns = $ns AND n.key IS NOT NULL RETURN n
  UNION
  MATCH (n:Alias) WHERE n.ns = $ns AND n.key IS NOT NULL RETURN n
}
MATCH (n)-[r]-()
WITH DISTINCT r LIMIT $limit
DELETE r
RETURN count(*) AS deleted
