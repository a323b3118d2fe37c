"""A canonical hash of the graph: proves idempotent loads and ties artifacts to a graph.

Nodes are identified by their anchors (``item:<item_id>``, ``user:<user_id>``,
``entity:<key>``, ``alias:<key>``), never by internal ids, so two databases loaded
with the same data have the same fingerprint. Volatile properties (run ids, the
embedding vectors written back by the embed stage) and derived relationships
(``RECOMMENDED``) are left out: they change on every run without the knowledge
changing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from kg_enhance.graph.store import GraphStore

#: properties that differ between runs over identical knowledge
VOLATILE_PROPERTIES = frozenset(
    {"run_id", "first_run", "quarantined_run", "embedding", "embedding_model", "embedding_run"}
)
#: the namespace says whose the nodes are, not what they know: the same knowledge in
#: two namespaces has the same fingerprint
IGNORED_PROPERTIES = VOLATILE_PROPERTIES | {"ns"}
#: relationship types that are outputs of later stages, not knowledge
DERIVED_RELATIONSHIPS = ("RECOMMENDED",)


@dataclass(frozen=True)
class Fingerprint:
    hash: str
    nodes: int
    edges: int

    def as_dict(self) -> dict[str, Any]:
        return {"fingerprint": self.hash, "nodes": self.nodes, "edges": self.edges}


def _canonical(value: Any) -> Any:
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value if isinstance(value, (str, int, bool)) or value is None else str(value)


def _stable(props: dict[str, Any]) -> dict[str, Any]:
    return {k: _canonical(v) for k, v in sorted(props.items()) if k not in IGNORED_PROPERTIES}


def graph_fingerprint(store: GraphStore) -> Fingerprint:
    """Fingerprint of the store's namespace: its nodes and the edges leaving them (see the module docstring)."""
    lines = []
    nodes = store.fingerprint_nodes()
    for row in nodes:
        lines.append(
            json.dumps(["N", row["id"], sorted(row["labels"]), _stable(row["props"])], sort_keys=True)
        )
    edges = store.fingerprint_edges(DERIVED_RELATIONSHIPS)
    for row in edges:
        lines.append(
            json.dumps(["E", row["head"], row["type"], row["tail"], _stable(row["props"])], sort_keys=True)
        )
    digest = hashlib.sha256()
    for line in sorted(lines):
        digest.update(line.encode("utf-8"))
        digest.update(b"\n")
    return Fingerprint(hash=digest.hexdigest()[:16], nodes=len(nodes), edges=len(edges))
