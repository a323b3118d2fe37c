// One canonical entity per key ("<Type>:<normalised name>") within an entity namespace.
CREATE CONSTRAINT entity_ns_key_unique IF NOT EXISTS FOR (n:Entity) REQUIRE (n.ns, n.key) IS UNIQUE
