// Entity key = "<Type>:<normalised name>", so one canonical node per type and name.
CREATE CONSTRAINT entity_key_unique IF NOT EXISTS FOR (n:Entity) REQUIRE n.key IS UNIQUE
