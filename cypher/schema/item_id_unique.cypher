// Every catalog item is anchored on its catalog id.
CREATE CONSTRAINT item_id_unique IF NOT EXISTS FOR (n:Item) REQUIRE n.item_id IS UNIQUE
