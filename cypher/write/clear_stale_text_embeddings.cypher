// Text vectors of this namespace written by older embed_text runs (one index seek per label, as in
// write/clear_stale_embeddings).
CALL () {
  MATCH (n:Item) WHERE n.ns = $ns AND n.item_id IS NOT NULL RETURN n
  UNION
  MATCH (n:User) WHERE n.ns = $ns AND n.user_id IS NOT NULL RETURN n
}
WITH n WHERE n.text_embedding_run IS NOT NULL AND n.text_embedding_run <> $run_id
REMOVE n.text_embedding, n.text_embedding_model, n.text_embedding_run
