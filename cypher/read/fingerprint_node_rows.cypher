// read/fingerprint_nodes for graph_fingerprint: the same nodes, streamed, with the properties
// in $exclude (run ids, embedding vectors) dropped here, so vectors never leave the server.
// Properties come as [key, value] pairs (a map cannot be filtered by key without APOC).
MATCH (n)
WHERE (n.ns = $ns AND (n:Item OR n:User OR ($own_entities AND (n:Entity OR n:Alias))))
   OR (NOT $own_entities AND n:Entity AND n.ns = $ens AND EXISTS { (h)-->(n) WHERE h.ns = $ns AND (h:Item OR h:User) })
RETURN CASE
         WHEN n:Item THEN 'item:' + n.item_id
         WHEN n:User THEN 'user:' + n.user_id
         WHEN n:Entity THEN 'entity:' + n.key
         WHEN n:Alias THEN 'alias:' + n.key
         ELSE 'node:' + elementId(n)
       END AS id, labels(n) AS labels,
       [k IN keys(n) WHERE NOT k IN $exclude | [k, n[k]]] AS props
