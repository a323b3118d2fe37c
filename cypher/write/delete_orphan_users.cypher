// Incremental refresh: of the users in $ids (those that lost an interaction), delete the ones with
// no edge left (a full load makes a User only for an interaction or a user fact).
UNWIND $ids AS id
MATCH (u:User {ns: $ns, user_id: id})
WHERE NOT EXISTS { MATCH (u)--() }
DELETE u
RETURN count(*) AS deleted
