// KG embeddings written back to items, in batches ($rows: item_id, vector).
UNWIND $rows AS row
MATCH (i:Item {item_id: row.id})
SET i.embedding = row.vector, i.embedding_model = $model, i.embedding_run = $run_id
