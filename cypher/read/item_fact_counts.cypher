MATCH (i:Item {ns: $ns})
RETURN i.item_id AS item_id, COUNT { MATCH (i)-->(e:Entity) RETURN DISTINCT e } AS entities
