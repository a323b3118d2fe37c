// Remove vectors of an older embed run (nodes that dropped out of the KG keep none).
MATCH (n)
WHERE (n:Item OR n:Entity) AND n.embedding_run IS NOT NULL AND n.embedding_run <> $run_id
REMOVE n.embedding, n.embedding_model, n.embedding_run
