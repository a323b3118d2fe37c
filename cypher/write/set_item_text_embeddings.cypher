UNWIND $rows AS row
MATCH (i:Item {ns: $ns, item_id: row.id})
SET i.text_embedding = row.vector, i.text_embedding_model = $model, i.text_embedding_run = $run_id
