UNWIND $rows AS row
MATCH (i:Item {ns: $ns, item_id: row.item_id})
SET i.quarantined_run = $run_id, i.quarantine_errors = row.errors
