// Nodes of the namespace, plus the entities of its entity namespace.
MATCH (n)
WHERE (n.ns = $ns AND (n:Item OR n:User OR n:Entity OR n:Alias)) OR (n.ns = $ens AND (n:Entity OR n:Alias))
UNWIND labels(n) AS label
RETURN label, count(*) AS count
ORDER BY label
