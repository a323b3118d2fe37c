// Edges leaving the namespace's nodes (see read/fingerprint_nodes), derived types excluded.
CALL {
  // one index seek per label (see read/fingerprint_node_rows): the cost follows this namespace
  MATCH (a:Item) WHERE a.ns = $ns AND a.item_id IS NOT NULL RETURN a
  UNION
  MATCH (a:User) WHERE a.ns = $ns AND a.user_id IS NOT NULL RETURN a
  UNION
  MATCH (a:Entity) WHERE $own_entities AND a.ns = $ns AND a.key IS NOT NULL RETURN a
  UNION
  MATCH (a:Alias) WHERE $own_entities AND a.ns = $ns AND a.key IS NOT NULL RETURN a
}
MATCH (a)-[r]->(b)
WHERE NOT type(r) IN $exclude_types
RETURN CASE
         WHEN a:Item THEN 'item:' + a.item_id
         WHEN a:User THEN 'user:' + a.user_id
         WHEN a:Entity THEN 'entity:' + a.key
         WHEN a:Alias THEN 'alias:' + a.key
         ELSE 'node:' + elementId(a)
       END AS head,
       type(r) AS type,
       CASE
         WHEN b:Item THEN 'item:' + b.item_id
         WHEN b:User THEN 'user:' + b.user_id
         WHEN b:Entity THEN 'entity:' + b.key
         WHEN b:Alias THEN 'alias:' + b.key
         ELSE 'node:' + elementId(b)
       END AS tail,
       properties(r) AS props
