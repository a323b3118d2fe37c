UNWIND $rows AS row
MATCH (i:Item {ns: $ns, item_id: row.id})
SET i.embedding = row.vector, i.embedding_model = $model, i.embedding_run = $run_id
