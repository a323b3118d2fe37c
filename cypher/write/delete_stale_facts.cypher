// After a load: drop this job's {{rel_type}} edges (heads in its namespace) from the loaded
// sources that the latest run did not write (e.g. an item no longer sent to the LLM), in
// batches; the caller loops until 0. This form is for a relationship type without an online
// (job, run_id) index (write/delete_stale_facts_indexed is the one the load uses): it scans
// the type's edges. `r.run_id < $run_id OR r.run_id > $run_id` is `r.run_id <> $run_id` for
// the string run ids the pipeline writes.
// The namespace's run lock guarantees no other run of it is writing meanwhile.
MATCH (h)-[r:{{rel_type}}]->(:Entity)
WHERE r.job = $job AND (r.run_id < $run_id OR r.run_id > $run_id) AND r.source IN $sources
  AND (h:Item OR h:User) AND h.ns = $ns
WITH r LIMIT 10000
DELETE r
RETURN count(*) AS deleted
