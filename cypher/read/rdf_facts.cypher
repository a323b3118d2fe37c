CALL () {
  // the namespace's items and users, by index seeks on the (ns, anchor) constraints
  MATCH (h:Item) WHERE h.ns = $ns AND h.item_id IS NOT NULL RETURN h
  UNION
  MATCH (h:User) WHERE h.ns = $ns AND h.user_id IS NOT NULL RETURN h
}
MATCH (h)-[r]->(e:Entity)
WHERE $sources IS NULL OR r.source IN $sources
RETURN DISTINCT
  CASE WHEN h:Item THEN 'item' ELSE 'user' END AS head_kind,
  coalesce(h.item_id, h.user_id) AS head_id,
  h.title AS head_title,
  type(r) AS relation,
  e.key AS key, e.name AS name, e.type AS type
ORDER BY head_kind, head_id, relation, key
