// The KG triples of the namespace's users (facts about users): one row per user with its
// (relation, entity) pairs, de-duplicated (see read/item_fact_triples for why grouped).
MATCH (u:User) WHERE u.ns = $ns AND u.user_id IS NOT NULL
CALL {
  WITH u
  MATCH (u)-[r]->(e:Entity)
  WHERE $sources IS NULL OR r.source IN $sources
  RETURN collect(DISTINCT [type(r), 'entity:' + e.key]) AS pairs
}
WITH u, pairs WHERE size(pairs) > 0
RETURN 'user:' + u.user_id AS head, pairs
