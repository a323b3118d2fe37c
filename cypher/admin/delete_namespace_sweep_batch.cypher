// After the index-seek deletes: up to $limit nodes of the namespace that lack their anchor property
// (item_id, user_id or key; only written by hand, e.g. in Neo4j Browser), which the seeks cannot
// find. One label scan per label; it normally deletes nothing, and the caller stops at 0.
CALL () {
  MATCH (n:Item) WHERE n.ns = $ns AND n.item_id IS NULL RETURN n
  UNION
  MATCH (n:User) WHERE n.ns = $ns AND n.user_id IS NULL RETURN n
  UNION
  MATCH (n:Entity) WHERE n.ns = $ns AND n.key IS NULL RETURN n
  UNION
  MATCH (n:Alias) WHERE n.ns = $ns AND n.key IS NULL RETURN n
}
WITH n LIMIT $limit
DETACH DELETE n
RETURN count(*) AS deleted
