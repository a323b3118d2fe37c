// Cosine vector index over the users' LLM text embeddings (embed_text stage, text_embeddings.users).
CREATE VECTOR INDEX user_text_embedding IF NOT EXISTS
FOR (n:User) ON n.text_embedding
OPTIONS {indexConfig: {`vector.dimensions`: $dimensions, `vector.similarity_function`: 'cosine'}}
