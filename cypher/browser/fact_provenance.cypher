// The provenance of a fact: every edge between an item and an entity, one per source,
// with the run, model, prompt version, source field, evidence and confidence.
// Every query is scoped to one job's namespace:  :param ns => 'movielens-demo'
// In Neo4j Browser:  :param item_id => '1'   then   :param entity => 'John Lasseter'
MATCH (i:Item {ns: $ns, item_id: $item_id})-[r]->(e:Entity)
WHERE toLower(e.name) = toLower($entity) OR toLower(r.object_name) = toLower($entity)
RETURN i.title AS item, type(r) AS relation, e.name AS entity, r.object_name AS name_as_given,
       r.source AS source, r.job AS job, r.run_id AS run_id, r.model AS model,
       r.prompt_hash AS prompt_hash, r.source_field AS source_field,
       r.evidence AS evidence, r.confidence AS confidence
ORDER BY source
