// {{item_label}} is the ontology's item label (validated). $ns: the job's namespace.
UNWIND $rows AS row
MERGE (i:Item {ns: $ns, item_id: row.item_id})
WITH i, row.props AS props
// $ns overrides a catalog column named `ns`: it must not move the item into another namespace
SET i += props {.*, ns: $ns}, i:{{item_label}}
