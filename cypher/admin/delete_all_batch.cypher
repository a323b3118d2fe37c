// Deletes up to $limit nodes with their relationships; the caller loops until 0.
MATCH (n)
WITH n LIMIT $limit
DETACH DELETE n
RETURN count(*) AS deleted
