// Every namespace in the database with its node count per kind (an operator's listing for a shared
// Neo4j, `kg-enhance graph namespaces`): one label scan of every job's items, users, entities and
// aliases, so its cost follows the database. Not run by the pipeline.
CALL () {
  MATCH (n:Item) RETURN n.ns AS ns, 'items' AS kind, count(*) AS count
  UNION ALL
  MATCH (n:User) RETURN n.ns AS ns, 'users' AS kind, count(*) AS count
  UNION ALL
  MATCH (n:Entity) RETURN n.ns AS ns, 'entities' AS kind, count(*) AS count
  UNION ALL
  MATCH (n:Alias) RETURN n.ns AS ns, 'aliases' AS kind, count(*) AS count
}
RETURN ns, collect([kind, count]) AS counts
ORDER BY ns
