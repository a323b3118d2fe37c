DROP INDEX item_text_embedding IF EXISTS
