// The relationship types whose (job, run_id) index (schema/fact_run_index) is online:
// write/delete_stale_facts_indexed may name it in a hint.
SHOW RANGE INDEXES YIELD entityType, labelsOrTypes, properties, state
WHERE entityType = 'RELATIONSHIP' AND properties = ['job', 'run_id'] AND state = 'ONLINE'
RETURN labelsOrTypes[0] AS type
