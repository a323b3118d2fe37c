// User-side facts, (:User)-[:PREFERS]->(:Entity); as write/merge_item_facts.
UNWIND $rows AS row
MERGE (u:User {ns: $ns, user_id: row.head_id})
WITH u, row
MATCH (e:Entity {ns: $ens, key: row.key})
MERGE (u)-[r:{{rel_type}} {source: row.source}]->(e)
SET r = row.props, r.job = $job, r.run_id = $run_id
