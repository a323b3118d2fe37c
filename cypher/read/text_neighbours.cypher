// Items of this namespace nearest to an item by LLM text embedding, through the vector index.
// The index spans every namespace: ask for $candidates neighbours, keep this namespace's, then $k.
MATCH (i:Item {ns: $ns, item_id: $item_id})
WHERE i.text_embedding IS NOT NULL
CALL db.index.vector.queryNodes('item_text_embedding', $candidates, i.text_embedding) YIELD node, score
WITH i, node, score
WHERE node <> i AND node.ns = $ns
RETURN node.item_id AS item_id, score
ORDER BY score DESC, item_id
LIMIT $k
