// Aliases live in the entity namespace of the entities they point to.
CREATE CONSTRAINT alias_ns_key_unique IF NOT EXISTS FOR (n:Alias) REQUIRE (n.ns, n.key) IS UNIQUE
