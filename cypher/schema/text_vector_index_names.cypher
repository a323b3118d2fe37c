// The text-embedding vector indexes kg_enhance manages, with their dimension.
SHOW VECTOR INDEXES YIELD name, options
WHERE name IN ['item_text_embedding', 'user_text_embedding']
RETURN name, options.indexConfig['vector.dimensions'] AS dimensions
