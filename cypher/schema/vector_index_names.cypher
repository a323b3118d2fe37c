// The vector indexes kg_enhance manages, with their dimension.
SHOW VECTOR INDEXES YIELD name, options
WHERE name IN ['item_embedding', 'entity_embedding']
RETURN name, options.indexConfig['vector.dimensions'] AS dimensions
