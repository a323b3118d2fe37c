// One edge per (item, relation, entity, source): facts from the LLM, the catalog and
// imported files sit side by side and can be compared. Entities exist already
// (write/merge_entities). {{rel_type}} is a validated ontology name; the rest are parameters.
// $ns is the job's namespace, $ens its entity namespace (the same unless entities are shared).
UNWIND $rows AS row
MATCH (h:Item {ns: $ns, item_id: row.head_id})
MATCH (e:Entity {ns: $ens, key: row.key})
MERGE (h)-[r:{{rel_type}} {source: row.source}]->(e)
// row.props holds the provenance that is known (source, source_field, model, prompt_hash,
// object_name, evidence, confidence; absent keys are unknown): the edge is replaced, not patched.
SET r = row.props, r.job = $job, r.run_id = $run_id
