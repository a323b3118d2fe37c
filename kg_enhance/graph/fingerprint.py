"""A canonical hash of the graph: proves idempotent loads and ties artifacts to a graph.

Nodes are identified by their anchors (``item:<item_id>``, ``user:<user_id>``,
``entity:<key>``, ``alias:<key>``), never by internal ids, so two databases loaded
with the same data have the same fingerprint. Volatile properties (run ids, the
embedding vectors written back by the embed and embed_text stages) and derived relationships
(``RECOMMENDED``) are left out: they change on every run without the knowledge
changing.

Bounded memory, any order: the store streams the namespace's node and edge rows (the
volatile properties already dropped by the database, so vectors never reach Python),
each row is hashed on its own (BLAKE2b-128 of its canonical JSON line), and the row
digests are added modulo 2**128. A sum is independent of the order the rows arrive in
and counts a repeated row twice (an XOR would cancel it), so nothing is sorted or held.
The final hash covers the format version, the node and edge counts and that sum.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from kg_enhance.graph.store import GraphStore

#: properties that differ between runs over identical knowledge
VOLATILE_PROPERTIES = frozenset(
    {
        "run_id",
        "first_run",
        "quarantined_run",
        "embedding",
        "embedding_model",
        "embedding_run",
        "text_embedding",
        "text_embedding_model",
        "text_embedding_run",
    }
)
#: the namespace says whose the nodes are, not what they know: the same knowledge in
#: two namespaces has the same fingerprint
IGNORED_PROPERTIES = VOLATILE_PROPERTIES | {"ns"}
#: relationship types that are outputs of later stages, not knowledge
DERIVED_RELATIONSHIPS = ("RECOMMENDED",)
#: changes whenever the hashing below changes, so old and new hashes never compare equal by accident
FORMAT = "kg-enhance-fingerprint-v2"
_MODULUS = 1 << 128


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


#: ``json.dumps(obj, sort_keys=True)`` builds a new encoder on every call; one encoder gives the same
#: text (a test compares them), and with the fast path below the rows of ml-latest-small's graph
#: (200k) hash in 66-77% of the time (benchmarks/fingerprint.py)
_encode = json.JSONEncoder(sort_keys=True).encode


def _stable(props: dict[str, Any]) -> dict[str, Any]:
    # the encoder sorts the keys; plain values (most of them) skip _canonical
    out: dict[str, Any] = {}
    for k, v in props.items():
        if k in IGNORED_PROPERTIES:
            continue
        t = type(v)
        out[k] = v if t is str or t is int or t is bool or v is None else _canonical(v)
    return out


def node_line(row: dict[str, Any]) -> str:
    """The canonical text of a node row (``id``, ``labels``, ``props``)."""
    return _encode(["N", row["id"], sorted(row["labels"]), _stable(row["props"])])


def edge_line(row: dict[str, Any]) -> str:
    """The canonical text of an edge row (``head``, ``type``, ``tail``, ``props``)."""
    return _encode(["E", row["head"], row["type"], row["tail"], _stable(row["props"])])


def _digest(line: str) -> int:
    return int.from_bytes(hashlib.blake2b(line.encode("utf-8"), digest_size=16).digest(), "big")


def graph_fingerprint(store: GraphStore) -> Fingerprint:
    """Fingerprint of the store's namespace: its nodes and the edges leaving them (see the module docstring)."""
    total = nodes = edges = 0
    for row in store.stream_fingerprint_nodes(IGNORED_PROPERTIES):
        total = (total + _digest(node_line(row))) % _MODULUS
        nodes += 1
    for row in store.stream_fingerprint_edges(DERIVED_RELATIONSHIPS, IGNORED_PROPERTIES):
        total = (total + _digest(edge_line(row))) % _MODULUS
        edges += 1
    final = hashlib.sha256(f"{FORMAT}\n{nodes}\n{edges}\n{total:032x}".encode()).hexdigest()
    return Fingerprint(hash=final[:16], nodes=nodes, edges=edges)
