// Per entity: its type and how many distinct items and users point at it.
MATCH (e:Entity)
RETURN e.key AS key, e.type AS type,
       COUNT { MATCH (i:Item)-->(e) RETURN DISTINCT i } AS items,
       COUNT { MATCH (u:User)-->(e) RETURN DISTINCT u } AS users
