// Delete up to $limit of one namespace's nodes (items, users, and its own entities and aliases); the
// caller loops until 0, after admin/delete_namespace_relationships_batch. One index seek per label on
// the (ns, anchor) uniqueness constraints: the cost follows this namespace, not the database.
CALL () {
  MATCH (n:Item) WHERE n.ns = $ns AND n.item_id IS NOT NULL RETURN n
  UNION
  MATCH (n:User) WHERE n.ns = $ns AND n.user_id IS NOT NULL RETURN n
  UNION
  MATCH (n:Entity) WHERE n.ns = $ns AND n.key IS NOT NULL RETURN n
  UNION
  MATCH (n:Alias) WHERE n.ns = $ns AND n.key IS NOT NULL RETURN n
}
WITH n LIMIT $limit
DETACH DELETE n
RETURN count(*) AS deleted
