MATCH (u:User) WHERE u.ns = $ns AND u.user_id IS NOT NULL
MATCH (u)-[r:RECOMMENDED]->(:Item)
WHERE r.job = $job AND r.run <> $run_id
WITH r LIMIT 10000
DELETE r
RETURN count(*) AS deleted
