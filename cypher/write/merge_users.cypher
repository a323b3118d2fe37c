UNWIND $rows AS row
MERGE (u:User {ns: $ns, user_id: row.user_id})
