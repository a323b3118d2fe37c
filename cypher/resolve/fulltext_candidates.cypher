// The full-text index spans every namespace; candidates outside $ens are dropped.
UNWIND $rows AS row
CALL db.index.fulltext.queryNodes('entity_name_fulltext', row.query, {limit: $limit}) YIELD node, score
WITH row, node, score
WHERE node.ns = $ens AND node.type = row.type AND node.key <> row.key
RETURN row.key AS key, node.key AS candidate_key, node.name AS candidate_name, score
