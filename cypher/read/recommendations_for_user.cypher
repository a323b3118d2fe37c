MATCH (:User {ns: $ns, user_id: $user_id})-[r:RECOMMENDED]->(i:Item)
RETURN i.item_id AS item_id, r.rank AS rank, r.score AS score
ORDER BY r.rank
LIMIT $k
