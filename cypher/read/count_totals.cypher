CALL () {
  MATCH (n)
  WHERE (n.ns = $ns AND (n:Item OR n:User OR n:Entity OR n:Alias)) OR (n.ns = $ens AND (n:Entity OR n:Alias))
  RETURN count(n) AS nodes
}
CALL () {
  MATCH (a)-[r]->()
  WHERE a.ns = $ns AND (a:Item OR a:User OR a:Entity OR a:Alias)
  RETURN count(r) AS edges
}
CALL () { MATCH (i:Item {ns: $ns}) RETURN count(i) AS items }
CALL () { MATCH (i:Item {ns: $ns}) WHERE EXISTS { (i)-->(:Entity) } RETURN count(i) AS items_with_facts }
RETURN nodes, edges, items, items_with_facts
