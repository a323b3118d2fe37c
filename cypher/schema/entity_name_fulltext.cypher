// Full-text index over entity names: the candidate source of fuzzy entity resolution
// and of the "likely duplicates" quality check (never an all-pairs comparison).
CREATE FULLTEXT INDEX entity_name_fulltext IF NOT EXISTS FOR (n:Entity) ON EACH [n.name]
