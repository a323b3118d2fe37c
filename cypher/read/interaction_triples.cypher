MATCH (u:User {ns: $ns})-[r:INTERACTED]->(i:Item)
WHERE $min_rating IS NULL OR r.rating >= $min_rating
RETURN 'user:' + u.user_id AS head, 'INTERACTED' AS relation, 'item:' + i.item_id AS tail
ORDER BY head, tail
