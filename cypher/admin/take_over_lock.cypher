// Take over a lock whose holder is gone; only if it is still held by that holder (compare-and-set).
MATCH (l:KgLock {namespace: $ns})
WHERE l.run_id = $stale_run_id
SET l += $owner, l.heartbeat = timestamp(), l.took_over_from = $stale_run_id
RETURN l.run_id = $owner.run_id AS mine
