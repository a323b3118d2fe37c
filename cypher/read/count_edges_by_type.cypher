// Edges whose head is in the namespace (its items, users, and its own entities and aliases).
// One index seek per label on the (ns, anchor) uniqueness constraints, so the cost follows this
// namespace, not every job's nodes.
CALL () {
  MATCH (a:Item) WHERE a.ns = $ns AND a.item_id IS NOT NULL RETURN a
  UNION
  MATCH (a:User) WHERE a.ns = $ns AND a.user_id IS NOT NULL RETURN a
  UNION
  MATCH (a:Entity) WHERE a.ns = $ns AND a.key IS NOT NULL RETURN a
  UNION
  MATCH (a:Alias) WHERE a.ns = $ns AND a.key IS NOT NULL RETURN a
}
MATCH (a)-[r]->()
RETURN type(r) AS type, count(*) AS count
ORDER BY type
