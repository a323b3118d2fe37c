// Graphs written before namespaces had global ids; the (ns, id) constraint replaces this one.
DROP CONSTRAINT user_id_unique IF EXISTS
