MATCH (:User {ns: $ns})-[r:RECOMMENDED {job: $job}]->(:Item)
WHERE r.run <> $run_id
WITH r LIMIT 10000
DELETE r
RETURN count(*) AS deleted
