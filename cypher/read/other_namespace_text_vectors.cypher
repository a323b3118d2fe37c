// Whether another namespace has text vectors in the shared text vector index of a kind
// (then its dimension is not changed under that namespace).
RETURN EXISTS {
  MATCH (n) WHERE (($kind = 'item' AND n:Item) OR ($kind = 'user' AND n:User))
    AND n.ns <> $ns AND n.text_embedding IS NOT NULL
} AS used
