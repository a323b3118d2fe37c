// The KG triples of the namespace's items: one row per item with its (relation, entity) pairs,
// de-duplicated; the store expands and sorts them into (head, relation, tail) triples.
// One row per item rather than per fact: the driver's per-record work is most of a read this size
// (82k facts of ml-latest-small: 1.6-2.1 s per fact row, 0.3-0.6 s grouped). The per-item subquery
// keeps the server's memory to one item's facts at a time (a whole-graph aggregation would hold all).
MATCH (h:Item) WHERE h.ns = $ns AND h.item_id IS NOT NULL
CALL {
  WITH h
  MATCH (h)-[r]->(e:Entity)
  WHERE $sources IS NULL OR r.source IN $sources
  RETURN collect(DISTINCT [type(r), 'entity:' + e.key]) AS pairs
}
WITH h, pairs WHERE size(pairs) > 0
RETURN 'item:' + h.item_id AS head, pairs
