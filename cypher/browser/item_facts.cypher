// What the KG knows about an item, with the source of every fact.
// Every query is scoped to one job's namespace:  :param ns => 'movielens-demo'
// In Neo4j Browser first run:  :param item_id => '1'
MATCH (i:Item {ns: $ns, item_id: $item_id})-[r]->(e:Entity)
RETURN i.title AS item, type(r) AS relation, e.name AS entity, labels(e) AS labels,
       r.source AS source, r.confidence AS confidence
ORDER BY relation, entity
