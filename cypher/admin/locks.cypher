// Every namespace's run lock with its holder (`kg-enhance graph namespaces`).
MATCH (l:KgLock)
RETURN l.namespace AS namespace, properties(l) AS holder
ORDER BY namespace
