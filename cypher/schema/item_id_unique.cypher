// Every catalog item is anchored on its catalog id, within its job's namespace ($ns).
CREATE CONSTRAINT item_ns_id_unique IF NOT EXISTS FOR (n:Item) REQUIRE (n.ns, n.item_id) IS UNIQUE
