// read/item_fact_counts aggregated in the database: how many items point at `entities` distinct entities.
MATCH (i:Item) WHERE i.ns = $ns AND i.item_id IS NOT NULL
WITH COUNT { MATCH (i)-->(e:Entity) RETURN DISTINCT e } AS entities
RETURN entities, count(*) AS items
