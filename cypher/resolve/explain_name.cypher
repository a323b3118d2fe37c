OPTIONAL MATCH (e:Entity {ns: $ens, key: $key})
OPTIONAL MATCH (a:Alias {ns: $ens, key: $key})-[m:ALIAS_OF]->(t:Entity)
RETURN e.key AS entity_key, e.name AS entity_name,
       t.key AS alias_target_key, t.name AS alias_target_name,
       a.name AS alias_name, m.reason AS reason, m.score AS score, m.matched_name AS matched_name, m.run_id AS run_id
