UNWIND $rows AS row
MERGE (e:Entity {ns: $ens, key: row.key})
  ON CREATE SET e.name = row.name, e.type = row.type, e.first_run = $run_id
SET e:{{entity_label}}, e.vocabulary = true
