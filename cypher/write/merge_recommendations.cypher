UNWIND $rows AS row
MATCH (u:User {ns: $ns, user_id: row.user_id})
MATCH (i:Item {ns: $ns, item_id: row.item_id})
MERGE (u)-[r:RECOMMENDED {job: $job}]->(i)
SET r.rank = row.rank, r.score = row.score, r.run = $run_id, r.model = row.model,
    r.via_items = row.via_items, r.via_entities = row.via_entities
