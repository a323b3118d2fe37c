// Interactions as KG triples (user INTERACTED item), at or above $min_rating: one row per user with
// its items as [relation, tail] pairs (see read/item_fact_triples for why grouped).
MATCH (u:User) WHERE u.ns = $ns AND u.user_id IS NOT NULL
CALL {
  WITH u
  MATCH (u)-[r:INTERACTED]->(i:Item)
  WHERE $min_rating IS NULL OR r.rating >= $min_rating
  RETURN collect(['INTERACTED', 'item:' + i.item_id]) AS pairs
}
WITH u, pairs WHERE size(pairs) > 0
RETURN 'user:' + u.user_id AS head, pairs
