UNWIND $rows AS row
MATCH (u:User {ns: $ns, user_id: row.user_id})
MATCH (i:Item {ns: $ns, item_id: row.item_id})
MERGE (u)-[r:INTERACTED]->(i)
SET r.rating = row.rating, r.ts = row.ts
