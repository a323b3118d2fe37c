// Closed vocabularies from the ontology (e.g. the genre list) as entities, before any fact.
// {{entity_label}} is a validated ontology type name.
UNWIND $rows AS row
MERGE (e:Entity {key: row.key})
  ON CREATE SET e.name = row.name, e.type = row.type, e.first_run = $run_id
SET e:{{entity_label}}, e.vocabulary = true
