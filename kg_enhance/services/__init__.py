"""Local services the project starts itself: Neo4j and the LLM server."""
