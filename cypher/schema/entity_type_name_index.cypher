// One per ontology entity type; {{label}} is a validated ontology type name.
CREATE INDEX IF NOT EXISTS FOR (n:{{label}}) ON (n.name)
