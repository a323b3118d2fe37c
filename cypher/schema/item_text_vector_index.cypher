// Cosine vector index over the items' LLM text embeddings (embed_text stage).
CREATE VECTOR INDEX item_text_embedding IF NOT EXISTS
FOR (n:Item) ON n.text_embedding
OPTIONS {indexConfig: {`vector.dimensions`: $dimensions, `vector.similarity_function`: 'cosine'}}
