// Per item: how many distinct entities its facts point at.
MATCH (i:Item)
RETURN i.item_id AS item_id, COUNT { MATCH (i)-->(e:Entity) RETURN DISTINCT e } AS entities
