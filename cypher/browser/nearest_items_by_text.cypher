// Items nearest to an item by LLM text embedding (embed_text stage), through the vector index.
// Every query is scoped to one job's namespace:  :param ns => 'movielens-demo'
// In Neo4j Browser:  :param item_id => '1'
MATCH (i:Item {ns: $ns, item_id: $item_id})
WHERE i.text_embedding IS NOT NULL
// the index spans every namespace: ask for more neighbours, keep this namespace's
CALL db.index.vector.queryNodes('item_text_embedding', 200, i.text_embedding) YIELD node, score
WITH i, node, score
WHERE node <> i AND node.ns = $ns
RETURN node.item_id AS item_id, node.title AS title, round(score, 4) AS cosine
ORDER BY cosine DESC
LIMIT 10
