// Other namespaces whose items or users point at this namespace's own entities: jobs that declare
// it as their graph.entity_namespace. Deleting this namespace (admin/delete_namespace_*) would take
// the objects of their facts with it, so `kg-enhance graph drop` refuses while any is listed.
// Starts from the namespace's entities by index seek: the cost follows their facts, not the database.
MATCH (e:Entity) WHERE e.ns = $ns AND e.key IS NOT NULL
MATCH (h)-->(e)
WHERE h.ns <> $ns
RETURN DISTINCT h.ns AS ns
ORDER BY ns
LIMIT 20
