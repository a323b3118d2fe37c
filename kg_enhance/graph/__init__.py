"""Graph store: Neo4j access through saved Cypher, entity keys, and statistics."""
