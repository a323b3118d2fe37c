// write/delete_stale_facts through the (job, run_id) index of schema/fact_run_index.
// Checked with PROFILE on Neo4j 5.26 (tests/integration/test_graph_neo4j.py asserts it): the plan is
// a Union of two DirectedRelationshipIndexSeek (job = $job AND run_id < $run_id, and > $run_id),
// so each batch touches only this job's stale edges. Without a hint the planner preferred scanning
// every Item and User and expanding all their edges (140k db hits per batch on ml-latest-small,
// for a batch that deletes nothing); with a plain `USING INDEX` it sometimes took
// DirectedRelationshipIndexScan (every entry of the index), hence `USING INDEX SEEK`.
MATCH (h)-[r:{{rel_type}}]->(:Entity)
USING INDEX SEEK r:{{rel_type}}(job, run_id)
WHERE r.job = $job AND (r.run_id < $run_id OR r.run_id > $run_id) AND r.source IN $sources
  AND (h:Item OR h:User) AND h.ns = $ns
WITH r LIMIT 10000
DELETE r
RETURN count(*) AS deleted
