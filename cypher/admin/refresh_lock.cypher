// Heartbeat of a running holder: other hosts judge staleness by it.
MATCH (l:KgLock {namespace: $ns, run_id: $run_id})
SET l.heartbeat = timestamp()
RETURN count(l) AS held
