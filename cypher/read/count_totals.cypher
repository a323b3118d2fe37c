// The namespace's totals; every part starts from index seeks on the (ns, anchor) uniqueness
// constraints, so the cost follows these namespaces, not the database.
CALL () {
  CALL () {
    MATCH (n:Item) WHERE n.ns = $ns AND n.item_id IS NOT NULL RETURN n
    UNION
    MATCH (n:User) WHERE n.ns = $ns AND n.user_id IS NOT NULL RETURN n
    UNION
    MATCH (n:Entity) WHERE n.ns IN [$ns, $ens] AND n.key IS NOT NULL RETURN n
    UNION
    MATCH (n:Alias) WHERE n.ns IN [$ns, $ens] AND n.key IS NOT NULL RETURN n
  }
  RETURN count(n) AS nodes
}
CALL () {
  CALL () {
    MATCH (a:Item) WHERE a.ns = $ns AND a.item_id IS NOT NULL RETURN a
    UNION
    MATCH (a:User) WHERE a.ns = $ns AND a.user_id IS NOT NULL RETURN a
    UNION
    MATCH (a:Entity) WHERE a.ns = $ns AND a.key IS NOT NULL RETURN a
    UNION
    MATCH (a:Alias) WHERE a.ns = $ns AND a.key IS NOT NULL RETURN a
  }
  MATCH (a)-[r]->()
  RETURN count(r) AS edges
}
CALL () { MATCH (i:Item) WHERE i.ns = $ns AND i.item_id IS NOT NULL RETURN count(i) AS items }
CALL () {
  MATCH (i:Item) WHERE i.ns = $ns AND i.item_id IS NOT NULL AND EXISTS { (i)-->(:Entity) }
  RETURN count(i) AS items_with_facts
}
RETURN nodes, edges, items, items_with_facts
