// {{item_label}} is the ontology's item label (validated).
UNWIND $rows AS row
MERGE (i:Item {item_id: row.item_id})
SET i += row.props, i:{{item_label}}
