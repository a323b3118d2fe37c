// Incremental refresh: of the entities in $keys (those that lost an edge), delete the ones nothing
// points at any more, so the graph equals a full load of the current inputs. Only in a namespace
// that owns its entities ($own_entities: shared entities belong to other jobs too); seeded
// vocabulary stays (a full load seeds it), and so does an entity an Alias points at.
UNWIND $keys AS key
MATCH (e:Entity {ns: $ens, key: key})
WHERE $own_entities AND e.vocabulary IS NULL AND NOT EXISTS { MATCH ()-->(e) }
DETACH DELETE e
RETURN count(*) AS deleted
