UNWIND $rows AS row
MATCH (e:Entity {ns: $ens, key: row.canonical_key})
MERGE (a:Alias {ns: $ens, key: row.key})
  ON CREATE SET a.first_run = $run_id
SET a.name = row.name, a.type = row.type
MERGE (a)-[m:ALIAS_OF]->(e)
SET m.reason = row.reason, m.score = row.score, m.matched_name = row.matched_name, m.run_id = $run_id
