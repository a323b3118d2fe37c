// Relationship types in use in the database (every namespace's; read from the token store, no scan).
CALL db.relationshipTypes() YIELD relationshipType
RETURN relationshipType AS type
