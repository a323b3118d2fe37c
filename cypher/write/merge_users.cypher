UNWIND $rows AS row
MERGE (u:User {user_id: row.user_id})
