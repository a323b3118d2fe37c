// Every node with a stable identity (its anchor id), labels and properties.
MATCH (n)
RETURN CASE
         WHEN n:Item THEN 'item:' + n.item_id
         WHEN n:User THEN 'user:' + n.user_id
         WHEN n:Entity THEN 'entity:' + n.key
         WHEN n:Alias THEN 'alias:' + n.key
         ELSE 'node:' + elementId(n)
       END AS id, labels(n) AS labels, properties(n) AS props
