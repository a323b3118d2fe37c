// Vectors of this namespace written by older embed runs. One index seek per label on the
// (ns, anchor) uniqueness constraints: the cost follows this namespace, not every job's items.
CALL () {
  MATCH (n:Item) WHERE n.ns = $ns AND n.item_id IS NOT NULL RETURN n
  UNION
  MATCH (n:Entity) WHERE n.ns = $ns AND n.key IS NOT NULL RETURN n
}
WITH n WHERE n.embedding_run IS NOT NULL AND n.embedding_run <> $run_id
REMOVE n.embedding, n.embedding_model, n.embedding_run
