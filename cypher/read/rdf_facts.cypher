MATCH (h)-[r]->(e:Entity)
WHERE (h:Item OR h:User) AND h.ns = $ns AND ($sources IS NULL OR r.source IN $sources)
RETURN DISTINCT
  CASE WHEN h:Item THEN 'item' ELSE 'user' END AS head_kind,
  coalesce(h.item_id, h.user_id) AS head_id,
  h.title AS head_title,
  type(r) AS relation,
  e.key AS key, e.name AS name, e.type AS type
ORDER BY head_kind, head_id, relation, key
