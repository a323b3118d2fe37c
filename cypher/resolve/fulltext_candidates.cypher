// Fuzzy candidates for each row from the full-text index, same entity type only.
// row.query is built from the normalised name (letters, digits, spaces, '~' edits).
UNWIND $rows AS row
CALL db.index.fulltext.queryNodes('entity_name_fulltext', row.query, {limit: $limit}) YIELD node, score
WITH row, node, score
WHERE node.type = row.type AND node.key <> row.key
RETURN row.key AS key, node.key AS candidate_key, node.name AS candidate_name, score
