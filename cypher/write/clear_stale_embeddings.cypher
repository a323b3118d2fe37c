// Vectors of this namespace written by older embed runs.
MATCH (n)
WHERE (n:Item OR n:Entity) AND n.ns = $ns AND n.embedding_run IS NOT NULL AND n.embedding_run <> $run_id
REMOVE n.embedding, n.embedding_model, n.embedding_run
