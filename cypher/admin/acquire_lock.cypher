// Take the namespace's run lock, or return who holds it. MERGE on the unique
// namespace makes two concurrent callers see one node: exactly one of them creates it.
MERGE (l:KgLock {namespace: $ns})
  ON CREATE SET l += $owner, l.heartbeat = timestamp()
RETURN l.run_id = $owner.run_id AS mine, properties(l) AS holder
