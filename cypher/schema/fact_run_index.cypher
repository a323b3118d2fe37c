// One per fact relationship type of the ontology; {{rel_type}} is a validated ontology relation.
// What write/delete_stale_facts seeks on: the job's edges of other runs are the index range
// (job = $job, run_id < $run_id) plus (job = $job, run_id > $run_id), so a re-load never
// scans the edges it just wrote, nor other jobs' edges.
CREATE INDEX IF NOT EXISTS FOR ()-[r:{{rel_type}}]-() ON (r.job, r.run_id)
