// One edge per (item, relation, entity, source): facts from the LLM, the catalog and
// imported files sit side by side and can be compared. {{entity_label}} and
// {{rel_type}} are validated ontology names; everything else is a parameter.
UNWIND $rows AS row
MATCH (h:Item {item_id: row.head_id})
MERGE (e:Entity {key: row.key})
  ON CREATE SET e.name = row.name, e.type = row.object_type, e.first_run = $run_id
SET e:{{entity_label}}
MERGE (h)-[r:{{rel_type}} {source: row.source}]->(e)
SET r.job = $job,
    r.run_id = $run_id,
    r.model = row.model,
    r.prompt_hash = row.prompt_hash,
    r.source_field = row.source_field,
    r.object_name = row.name_as_given,
    r.evidence = row.evidence,
    r.confidence = row.confidence
