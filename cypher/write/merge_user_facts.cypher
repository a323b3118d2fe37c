// User-side knowledge: (:User)-[:PREFERS]->(:Entity), one edge per (user, relation,
// entity, source), with the same provenance as item facts. Entities exist already
// (write/merge_entities). {{rel_type}} is a validated ontology relation whose head is User.
UNWIND $rows AS row
MERGE (u:User {user_id: row.head_id})
WITH u, row
MATCH (e:Entity {key: row.key})
MERGE (u)-[r:{{rel_type}} {source: row.source}]->(e)
// row.props holds the provenance that is known (source, source_field, model, prompt_hash,
// object_name, evidence, confidence; absent keys are unknown): the edge is replaced, not patched.
SET r = row.props, r.job = $job, r.run_id = $run_id
