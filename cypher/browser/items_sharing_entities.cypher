// Items sharing the most entities with an item.  :param item_id => '1'
// Every query is scoped to one job's namespace:  :param ns => 'movielens-demo'
MATCH (i:Item {ns: $ns, item_id: $item_id})-->(e:Entity)<--(other:Item {ns: $ns})
WHERE other <> i
RETURN other.item_id AS item_id, other.title AS title, count(DISTINCT e) AS shared,
       collect(DISTINCT e.name)[..10] AS entities
ORDER BY shared DESC, item_id
LIMIT 20
