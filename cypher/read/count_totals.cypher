CALL () { MATCH (n) RETURN count(n) AS nodes }
CALL () { MATCH ()-[r]->() RETURN count(r) AS edges }
CALL () { MATCH (i:Item) RETURN count(i) AS items }
CALL () { MATCH (i:Item) WHERE EXISTS { (i)-->(:Entity) } RETURN count(i) AS items_with_facts }
RETURN nodes, edges, items, items_with_facts
