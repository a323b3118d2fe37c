// Items whose LLM answer stayed invalid are flagged in the graph, not hidden.
UNWIND $rows AS row
MATCH (i:Item {item_id: row.item_id})
SET i.quarantined_run = $run_id, i.quarantine_errors = row.errors
