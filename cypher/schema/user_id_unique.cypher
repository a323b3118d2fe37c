// Users are anchored on their id within a namespace.
CREATE CONSTRAINT user_ns_id_unique IF NOT EXISTS FOR (n:User) REQUIRE (n.ns, n.user_id) IS UNIQUE
