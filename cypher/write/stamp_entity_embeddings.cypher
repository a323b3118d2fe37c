// Fold-in: an entity whose vector this run carried unchanged keeps it; only the run that holds it changes.
// Only for an entity namespace the job owns alone; only nodes still holding $previous_run's vector.
UNWIND $rows AS row
MATCH (e:Entity {ns: $ens, key: row.id})
WHERE e.embedding_run = $previous_run
SET e.embedding_run = $run_id
