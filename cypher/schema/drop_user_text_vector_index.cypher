DROP INDEX user_text_embedding IF EXISTS
