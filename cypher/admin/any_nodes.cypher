// Whether the database holds any node (every namespace, locks included), counted up to $limit:
// `kg-enhance graph bulk-load` writes only into an empty database.
MATCH (n)
WITH n LIMIT $limit
RETURN count(n) AS nodes
