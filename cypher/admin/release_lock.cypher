MATCH (l:KgLock {namespace: $ns, run_id: $run_id})
DELETE l
RETURN count(*) AS released
