MATCH (i:Item {ns: $ns}) WHERE i.quarantined_run IS NOT NULL
REMOVE i.quarantined_run, i.quarantine_errors
