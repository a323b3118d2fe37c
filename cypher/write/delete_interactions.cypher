// Incremental refresh: INTERACTED edges whose (user, item) pair is gone from the interaction files.
UNWIND $rows AS row
MATCH (u:User {ns: $ns, user_id: row.user_id})-[r:INTERACTED]->(i:Item {ns: $ns, item_id: row.item_id})
DELETE r
