// read/fingerprint_edges for graph_fingerprint: the same edges, streamed, without the properties in
// $exclude; one row per head node with its edges as [type, tail, props] (the store expands them).
// Grouped because the driver's per-record work dominated (183k edges of ml-latest-small: 4.1 s per
// edge row, 1.6-1.8 s grouped, hashing included); the per-node subquery keeps the server's memory
// to one node's edges at a time.
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
CALL {
  WITH a
  MATCH (a)-[r]->(b)
  WHERE NOT type(r) IN $exclude_types
  RETURN collect([
           type(r),
           CASE
             WHEN b:Item THEN 'item:' + b.item_id
             WHEN b:User THEN 'user:' + b.user_id
             WHEN b:Entity THEN 'entity:' + b.key
             WHEN b:Alias THEN 'alias:' + b.key
             ELSE 'node:' + elementId(b)
           END,
           [k IN keys(r) WHERE NOT k IN $exclude | [k, r[k]]]
         ]) AS edges
}
WITH a, edges WHERE size(edges) > 0
RETURN CASE
         WHEN a:Item THEN 'item:' + a.item_id
         WHEN a:User THEN 'user:' + a.user_id
         WHEN a:Entity THEN 'entity:' + a.key
         WHEN a:Alias THEN 'alias:' + a.key
         ELSE 'node:' + elementId(a)
       END AS head, edges
