// How one entity key resolves: to itself (an entity), through an alias, or not at all.
OPTIONAL MATCH (e:Entity {key: $key})
OPTIONAL MATCH (a:Alias {key: $key})-[m:ALIAS_OF]->(t:Entity)
RETURN e.key AS entity_key, e.name AS entity_name,
       t.key AS alias_target_key, t.name AS alias_target_name,
       a.name AS alias_name, m.reason AS reason, m.score AS score, m.matched_name AS matched_name, m.run_id AS run_id
