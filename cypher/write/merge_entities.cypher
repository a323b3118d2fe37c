// Entities first, once each: one canonical node per key ("<Type>:<normalised name>") in the
// entity namespace $ens. {{entity_label}} is a validated ontology type name; the first name seen names the entity.
UNWIND $rows AS row
MERGE (e:Entity {ns: $ens, key: row.key})
  ON CREATE SET e.name = row.name, e.type = row.type, e.first_run = $run_id, e:{{entity_label}}
