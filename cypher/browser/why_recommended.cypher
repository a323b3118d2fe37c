// Why an item was recommended to a user: the precomputed rank and score, and the KG
// paths user -> an item they rated -> a shared entity -> the recommended item,
// rarest entities first.
// Every query is scoped to one job's namespace:  :param ns => 'movielens-demo'  :param user_id => '1'  (and optionally :param item_id => null)
MATCH (u:User {ns: $ns, user_id: $user_id})-[rec:RECOMMENDED]->(i:Item)
WHERE $item_id IS NULL OR i.item_id = $item_id
OPTIONAL MATCH (u)-[:INTERACTED]->(j:Item)-->(e:Entity)<--(i)
WHERE j <> i
WITH rec, i, j, e, COUNT { (e)<--(:Item {ns: $ns}) } AS entity_items
ORDER BY rec.rank, entity_items
WITH rec, i, collect(DISTINCT {via: j.title, entity: e.name, entity_items: entity_items})[..3] AS paths
RETURN rec.rank AS rank, i.item_id AS item_id, i.title AS title, round(rec.score, 4) AS score,
       rec.model AS model, [p IN paths WHERE p.via IS NOT NULL] AS paths
ORDER BY rank
LIMIT 20
