// A user's precomputed top-K (serving through Neo4j).
MATCH (:User {user_id: $user_id})-[r:RECOMMENDED]->(i:Item)
RETURN i.item_id AS item_id, r.rank AS rank, r.score AS score
ORDER BY r.rank
LIMIT $k
