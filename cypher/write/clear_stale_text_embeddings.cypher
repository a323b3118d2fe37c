// Text vectors of this namespace written by older embed_text runs.
MATCH (n)
WHERE (n:Item OR n:User) AND n.ns = $ns AND n.text_embedding_run IS NOT NULL AND n.text_embedding_run <> $run_id
REMOVE n.text_embedding, n.text_embedding_model, n.text_embedding_run
