// KG embeddings written back to entities, in batches ($rows: entity key, vector).
UNWIND $rows AS row
MATCH (e:Entity {key: row.id})
SET e.embedding = row.vector, e.embedding_model = $model, e.embedding_run = $run_id
