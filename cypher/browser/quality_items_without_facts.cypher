// Quality check: items with no fact from a source (:param source => 'llm'), or with
// no fact at all (:param source => null). Quarantined items show their errors.
// Every query is scoped to one job's namespace:  :param ns => 'movielens-demo'
MATCH (i:Item {ns: $ns})
WHERE NOT EXISTS { MATCH (i)-[r]->(:Entity) WHERE $source IS NULL OR r.source = $source }
RETURN i.item_id AS item_id, i.title AS title,
       i.quarantine_errors IS NOT NULL AS quarantined, i.quarantine_errors AS errors
ORDER BY quarantined DESC, item_id
LIMIT 100
