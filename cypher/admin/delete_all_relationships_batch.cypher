// Deletes up to $limit relationships (any type, any namespace); the caller loops until 0, then
// deletes the nodes. Deleting relationships first keeps each transaction bounded: a DETACH DELETE
// of a hub node (a genre with 100,000 items) would delete all its relationships in one transaction.
MATCH ()-[r]->()
WITH r LIMIT $limit
DELETE r
RETURN count(*) AS deleted
