// Graphs written before namespaces had global ids; the (ns, id) constraint replaces this one.
DROP CONSTRAINT entity_key_unique IF EXISTS
