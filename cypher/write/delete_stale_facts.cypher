// After a load: drop this job's fact edges (heads in its namespace) from the loaded sources
// that the latest run did not write (e.g. an item no longer sent to the LLM), in batches.
// The namespace's run lock guarantees no other run of it is writing meanwhile.
MATCH (h)-[r]->(:Entity)
WHERE (h:Item OR h:User) AND h.ns = $ns AND r.job = $job AND r.source IN $sources AND r.run_id <> $run_id
WITH r LIMIT 10000
DELETE r
RETURN count(*) AS deleted
