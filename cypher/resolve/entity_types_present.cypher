// Which of $types have at least one entity in the entity namespace. Resolution asks the full-text
// index only about names of these types: for any other type its answer, filtered to $ens and the
// type, is empty (a first load into an empty namespace skips every full-text lookup but the vocabulary's).
UNWIND $types AS type
RETURN type, EXISTS { MATCH (e:Entity) WHERE e.ns = $ens AND e.key IS NOT NULL AND e.type = type } AS present
