// Only for an entity namespace the job owns alone (shared entities keep vectors in the artifact only).
UNWIND $rows AS row
MATCH (e:Entity {ns: $ens, key: row.id})
SET e.embedding = row.vector, e.embedding_model = $model, e.embedding_run = $run_id
