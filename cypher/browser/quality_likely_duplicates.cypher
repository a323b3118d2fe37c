// Quality check: likely duplicate entities, same type, found through the full-text
// index (fuzzy terms built from each name's letters and digits; never all pairs).
// The resolver merged pairs above graph.resolution.threshold; these are the rest.
// Every query is scoped to one job's namespace (its own entities):  :param ns => 'movielens-demo'
MATCH (e:Entity {ns: $ns})
WHERE size(e.name) >= 6
WITH e, [t IN split(toLower(e.name), ' ') WHERE t =~ '[a-z0-9]{4,}' | t + '~1'] AS terms
WHERE size(terms) > 0
CALL db.index.fulltext.queryNodes('entity_name_fulltext', reduce(q = '', t IN terms | q + ' ' + t), {limit: 5})
YIELD node, score
WHERE node.ns = $ns AND node.type = e.type AND elementId(node) > elementId(e)
RETURN e.name AS name, node.name AS similar_to, e.type AS type, round(score, 3) AS score
ORDER BY score DESC, name
LIMIT 50
