// Items nearest to an item in KG-embedding space, through the vector index.
// In Neo4j Browser:  :param item_id => '1'
MATCH (i:Item {item_id: $item_id})
WHERE i.embedding IS NOT NULL
CALL db.index.vector.queryNodes('item_embedding', 11, i.embedding) YIELD node, score
WITH i, node, score
WHERE node <> i
RETURN node.item_id AS item_id, node.title AS title, round(score, 4) AS cosine
ORDER BY cosine DESC
LIMIT 10
