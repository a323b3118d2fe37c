// Cosine vector index over the items' KG embeddings (nearest items in Browser).
CREATE VECTOR INDEX item_embedding IF NOT EXISTS
FOR (n:Item) ON n.embedding
OPTIONS {indexConfig: {`vector.dimensions`: $dimensions, `vector.similarity_function`: 'cosine'}}
