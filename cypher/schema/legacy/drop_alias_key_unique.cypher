// Graphs written before namespaces had global ids; the (ns, id) constraint replaces this one.
DROP CONSTRAINT alias_key_unique IF EXISTS
