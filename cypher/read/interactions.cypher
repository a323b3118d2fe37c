MATCH (u:User) WHERE u.ns = $ns AND u.user_id IS NOT NULL
MATCH (u)-[r:INTERACTED]->(i:Item)
RETURN u.user_id AS user_id, i.item_id AS item_id, r.rating AS rating, r.ts AS ts
