UNWIND $rows AS row
MATCH (u:User {ns: $ns, user_id: row.id})
SET u.text_embedding = row.vector, u.text_embedding_model = $model, u.text_embedding_run = $run_id
