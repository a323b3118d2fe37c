// Whether another namespace has vectors in the shared vector index of a kind (then its
// dimension is not changed under that namespace).
RETURN EXISTS {
  MATCH (n) WHERE (($kind = 'item' AND n:Item) OR ($kind = 'entity' AND n:Entity))
    AND n.ns <> $ns AND n.embedding IS NOT NULL
} AS used
