// read/fingerprint_edges for graph_fingerprint: the same edges, streamed, without the properties in $exclude.
MATCH (a)-[r]->(b)
WHERE a.ns = $ns AND (a:Item OR a:User OR ($own_entities AND (a:Entity OR a:Alias)))
  AND NOT type(r) IN $exclude_types
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
       [k IN keys(r) WHERE NOT k IN $exclude | [k, r[k]]] AS props
