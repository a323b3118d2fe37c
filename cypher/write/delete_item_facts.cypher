// Incremental refresh (kg_enhance.extract.delta): drop the fact edges of the items in $ids (one
// batch) from $sources that run $run_id did not write: the old facts of changed items. Returns the
// keys of the entities they pointed at (candidates for write/delete_orphan_entities). Never touches
// INTERACTED, ALIAS_OF or RECOMMENDED ($non_fact), nor edges of other jobs or namespaces.
UNWIND $ids AS id
MATCH (h:Item {ns: $ns, item_id: id})-[r]->(e:Entity)
WHERE r.job = $job AND r.source IN $sources AND (r.run_id < $run_id OR r.run_id > $run_id)
  AND NOT type(r) IN $non_fact
WITH r, e.key AS key
DELETE r
RETURN count(*) AS deleted, collect(DISTINCT key) AS keys
