// Wait (up to 60 s) until new indexes, e.g. the full-text index, are online.
CALL db.awaitIndexes(60)
