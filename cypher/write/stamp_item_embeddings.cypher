// Fold-in: an item whose vector this run carried unchanged keeps it; only the run that holds it changes.
// Only nodes still holding the vector of the run it was carried from ($previous_run) are stamped.
UNWIND $rows AS row
MATCH (i:Item {ns: $ns, item_id: row.id})
WHERE i.embedding_run = $previous_run
SET i.embedding_run = $run_id
