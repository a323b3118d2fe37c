// At most one run lock per namespace (admin/acquire_lock relies on it).
CREATE CONSTRAINT lock_namespace_unique IF NOT EXISTS FOR (n:KgLock) REQUIRE n.namespace IS UNIQUE
