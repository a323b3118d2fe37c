MATCH (i:Item) WHERE i.ns = $ns AND i.item_id IS NOT NULL AND i.quarantined_run IS NOT NULL
REMOVE i.quarantined_run, i.quarantine_errors
