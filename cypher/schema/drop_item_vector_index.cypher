DROP INDEX item_embedding IF EXISTS
