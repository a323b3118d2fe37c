// The namespace's nodes: its items and users, and the entities and aliases of its entity
// namespace when it owns that alone ($own_entities); with shared entities, only the
// entities its items and users point at.
CALL {
  // one index seek per label on the (ns, anchor) uniqueness constraints, so the cost follows this
  // namespace, not the database: a predicate over all nodes (MATCH (n) WHERE n.ns = $ns AND (...
  // OR EXISTS {...})) made Neo4j scan and expand every node of every job (measured: 1.3-1.7 s
  // against 0.4-0.6 s with six ml-latest-small jobs in one database). The anchor IS NOT NULL lets
  // the seek use the composite index; our writers MERGE every node on its anchor.
  MATCH (n:Item) WHERE n.ns = $ns AND n.item_id IS NOT NULL RETURN n
  UNION
  MATCH (n:User) WHERE n.ns = $ns AND n.user_id IS NOT NULL RETURN n
  UNION
  MATCH (n:Entity) WHERE $own_entities AND n.ns = $ns AND n.key IS NOT NULL RETURN n
  UNION
  MATCH (n:Alias) WHERE $own_entities AND n.ns = $ns AND n.key IS NOT NULL RETURN n
  UNION
  // shared entities: those the namespace's items point at, then those its users point at
  MATCH (h:Item) WHERE NOT $own_entities AND h.ns = $ns AND h.item_id IS NOT NULL
  MATCH (h)-->(n:Entity) WHERE n.ns = $ens
  RETURN DISTINCT n
  UNION
  MATCH (h:User) WHERE NOT $own_entities AND h.ns = $ns AND h.user_id IS NOT NULL
  MATCH (h)-->(n:Entity) WHERE n.ns = $ens
  RETURN DISTINCT n
}
RETURN CASE
         WHEN n:Item THEN 'item:' + n.item_id
         WHEN n:User THEN 'user:' + n.user_id
         WHEN n:Entity THEN 'entity:' + n.key
         WHEN n:Alias THEN 'alias:' + n.key
         ELSE 'node:' + elementId(n)
       END AS id, labels(n) AS labels, properties(n) AS props
