MATCH (i:Item) WHERE i.ns = $ns AND i.item_id IS NOT NULL
RETURN i.item_id AS item_id, COUNT { MATCH (i)-->(e:Entity) RETURN DISTINCT e } AS entities
