// Nodes of the namespace, plus the entities of its entity namespace; one index seek per label on
// the (ns, anchor) uniqueness constraints, so the cost follows these namespaces, not the database.
CALL () {
  MATCH (n:Item) WHERE n.ns = $ns AND n.item_id IS NOT NULL RETURN n
  UNION
  MATCH (n:User) WHERE n.ns = $ns AND n.user_id IS NOT NULL RETURN n
  UNION
  MATCH (n:Entity) WHERE n.ns IN [$ns, $ens] AND n.key IS NOT NULL RETURN n
  UNION
  MATCH (n:Alias) WHERE n.ns IN [$ns, $ens] AND n.key IS NOT NULL RETURN n
}
UNWIND labels(n) AS label
RETURN label, count(*) AS count
ORDER BY label
