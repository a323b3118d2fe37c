// The alias table: one (:Alias) per surface name that resolution merged into another entity.
CREATE CONSTRAINT alias_key_unique IF NOT EXISTS FOR (n:Alias) REQUIRE n.key IS UNIQUE
