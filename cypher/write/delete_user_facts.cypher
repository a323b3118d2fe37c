// write/delete_item_facts for users (PREFERS and other relations with head User).
UNWIND $ids AS id
MATCH (h:User {ns: $ns, user_id: id})-[r]->(e:Entity)
WHERE r.job = $job AND r.source IN $sources AND (r.run_id < $run_id OR r.run_id > $run_id)
  AND NOT type(r) IN $non_fact
WITH r, e.key AS key
DELETE r
RETURN count(*) AS deleted, collect(DISTINCT key) AS keys
