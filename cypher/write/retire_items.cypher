// Incremental refresh: items gone from the catalog are deleted with every edge (their facts,
// interactions and recommendations). Returns how many, the keys of the entities their facts
// pointed at and the users who had interacted with them (candidates for the orphan clean-up).
UNWIND $ids AS id
MATCH (i:Item {ns: $ns, item_id: id})
WITH i, [(i)-->(e:Entity) | e.key] AS keys, [(u:User {ns: $ns})-->(i) | u.user_id] AS users
DETACH DELETE i
WITH count(*) AS deleted, collect(keys) AS key_lists, collect(users) AS user_lists
RETURN deleted,
       reduce(acc = [], l IN key_lists | acc + l) AS keys,
       reduce(acc = [], l IN user_lists | acc + l) AS users
