// Graphs written before namespaces had global ids; the (ns, id) constraint replaces this one.
DROP CONSTRAINT item_id_unique IF EXISTS
