"""An in-memory :class:`~kg_enhance.graph.store.GraphStore`: the graph without a Neo4j server.

Why it exists: pipeline stages reach the graph only through the ``GraphStore``
Protocol, so a stage can be unit-tested with this store in milliseconds, with no
Java process, no ports and no database to clear. That is only worth something if
this store behaves like :class:`~kg_enhance.graph.store.Neo4jStore`, so every
method here re-implements the Cypher statement ``Neo4jStore`` runs (named in the
method's docstring) clause by clause: the same MERGE keys, ``ON CREATE`` versus
``SET`` properties, null-removes-a-property, rows whose ``MATCH`` finds nothing
being skipped yet counted, the same returned rows and orders. The contract test
``tests/unit/test_store_contract.py`` runs the same cases against both stores and
asserts that :func:`kg_enhance.graph.fingerprint.graph_fingerprint` gives the same
hash, which keeps the two equal when either changes.

Namespaces work as in Neo4j: a :class:`MemoryDatabase` plays the one Neo4j database
(every namespace's nodes and edges, the schema, the vector indexes, the run locks),
and an :class:`InMemoryGraphStore` is one namespace's view of it, as a ``Neo4jStore``
is. Items and users carry ``ns`` = the store's ``namespace``, entities and aliases
``ns`` = its ``entity_namespace``; the MERGE anchors are ``(ns, id)`` as the composite
constraints in ``cypher/schema/`` make them. Give several stores one database
(``InMemoryGraphStore(db, namespace=...)``, :meth:`InMemoryGraphStore.view` or
:meth:`InMemoryGraphStore.for_job`) to see how jobs sharing a Neo4j behave.

Known differences, all outside what the pipeline relies on:

* ``fulltext_candidates`` scores names with a small BM25 over Lucene-like tokens
  and Damerau-Levenshtein fuzzy terms instead of Lucene itself. Typical typos find
  the same candidates of the same type; the order of candidates with equal scores
  (Neo4j's is undocumented) and, through Lucene's lossy length norms, of near-equal
  ones can differ, and so can which of them make the ``limit`` cut (which, as in
  Neo4j, is taken over every namespace's entities before other namespaces' are dropped).
* A write that fails validation writes nothing here; Neo4j keeps the batches
  (``neo4j.batch_size`` rows each) committed before the failing one.
* An out-of-range vector dimension raises :class:`GraphStoreError` here; Neo4jStore
  lets the driver's ``ClientError`` through.
* Removing an anchor property (``item_id``, ``user_id``, ``key``) through a null in
  ``write_items``' props raises here; Neo4j's uniqueness constraints allow it.
* Anchors that are floats are turned into text like Python, not Java, does
  (``1e+20`` instead of ``1.0E20``); the pipeline's anchors are strings.
* There are no transactions, retries or concurrent sessions; ``close`` keeps the
  data readable so a test can inspect the graph a stage left behind.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import time
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import OSA

from kg_enhance.errors import GraphStoreError
from kg_enhance.graph.resolve import Resolution
from kg_enhance.graph.store import (
    DEFAULT_NAMESPACE,
    NON_FACT_TYPES,
    InteractionRow,
    Triple,
    fact_edge_row,
    fact_target,
)
from kg_enhance.names import entity_key
from kg_enhance.ontology.models import Ontology
from kg_enhance.types import Fact, QuarantineRecord

if TYPE_CHECKING:
    from kg_enhance.config.models import JobSpec
    from kg_enhance.graph.lock import LockBackend
    from kg_enhance.graph.store import GraphStore

logger = logging.getLogger(__name__)

#: the guard ``CypherLibrary.get`` applies to every label and type put into a statement
_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
#: ``label -> property`` that, with ``ns``, has a uniqueness constraint (``cypher/schema/*_unique``):
#: the MERGE anchors
_ANCHORS = {"Item": "item_id", "User": "user_id", "Entity": "key", "Alias": "key"}
#: the labels whose ``ns`` is the store's namespace, and those whose ``ns`` is its entity namespace
_NAMESPACED = frozenset(_ANCHORS)
_JOB_LABELS = frozenset({"Item", "User"})
_ENTITY_LABELS = frozenset({"Entity", "Alias"})
#: the ``CASE`` of ``read/fingerprint_*.cypher``: which anchor names a node, first match wins
_ANCHOR_PREFIXES = (("Item", "item:"), ("User", "user:"), ("Entity", "entity:"), ("Alias", "alias:"))
#: what ``Neo4jStore.ensure_schema`` creates, in its order (``schema/lock_unique`` and the ``(ns, id)`` constraints)
_CONSTRAINTS = (
    ("KgLock", "lock_namespace_unique"),
    ("Item", "item_ns_id_unique"),
    ("User", "user_ns_id_unique"),
    ("Entity", "entity_ns_key_unique"),
    ("Alias", "alias_ns_key_unique"),
)
#: the global-id constraints of graphs written before namespaces (``schema/legacy/``), dropped by ``ensure_schema``
_LEGACY_CONSTRAINTS = ("item_id_unique", "user_id_unique", "entity_key_unique", "alias_key_unique")
_FULLTEXT_INDEX = "entity_name_fulltext"
#: vector index name -> the label it covers (``schema/item_vector_index``, ``schema/entity_vector_index``)
_VECTOR_INDEXES = {"item_embedding": "Item", "entity_embedding": "Entity"}
_EMBEDDING_PROPERTIES = ("embedding", "embedding_model", "embedding_run")
#: text vector index name -> the label it covers (``schema/item_text_vector_index``, ``schema/user_text_vector_index``)
_TEXT_VECTOR_INDEXES = {"item": ("item_text_embedding", "Item"), "user": ("user_text_embedding", "User")}
_TEXT_EMBEDDING_PROPERTIES = ("text_embedding", "text_embedding_model", "text_embedding_run")
#: Lucene's StandardTokenizer (UAX #29 word breaks), near enough for names: letters and digits,
#: kept together across an apostrophe or a dot between them ("o'neil", "u.s.a", "3.5") and a
#: colon between letters ("a:b"); everything else separates tokens ("sci-fi" is "sci", "fi")
_LUCENE_WORD = re.compile(r"\w+(?:(?:['\u2019.]|(?<=[^\W\d_]):(?=[^\W\d_]))\w+)*")
_BM25_K1, _BM25_B = 1.2, 0.75  # Lucene's defaults
_FUZZY_MAX_EXPANSIONS = 50  # FuzzyQuery.defaultMaxExpansions
_TEMPORAL = (dt.date, dt.time, dt.timedelta)  # the driver sends these as Neo4j temporal values


@dataclass
class _Node:
    id: int
    labels: set[str]
    props: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Edge:
    id: int
    head: int
    type: str
    tail: int
    props: dict[str, Any] = field(default_factory=dict)


#: ``(anchor label, ns, anchor value)``, each value keyed with Cypher equality (:func:`_anchor_value`)
_AnchorKey = tuple[str, Any, Any]


class MemoryDatabase:
    """One in-memory Neo4j database, shared by the :class:`InMemoryGraphStore` views of its namespaces.

    It holds what a Neo4j database holds for every namespace at once: the nodes and
    edges, the ``(ns, id)`` anchor index the uniqueness constraints keep, the label
    tokens, the schema, the vector indexes' dimensions and the run locks.
    """

    def __init__(self) -> None:
        self.nodes: dict[int, _Node] = {}
        self.edges: dict[int, _Edge] = {}
        self._next_id = 0
        #: what the ``(ns, id)`` uniqueness constraints index in Neo4j
        self.anchor: dict[_AnchorKey, int] = {}
        self.out: dict[int, dict[int, None]] = defaultdict(dict)  # node id -> edge ids (ordered set)
        self.in_: dict[int, dict[int, None]] = defaultdict(dict)
        self.between: dict[tuple[int, str, int], dict[int, None]] = defaultdict(dict)
        #: label -> token id; ``labels(n)`` lists a node's labels in token order, as Neo4j does
        self.label_tokens: dict[str, int] = {}
        #: names of the constraints and indexes ``ensure_schema`` created (Neo4j keeps them on ``clear``)
        self.schema: set[str] = set()
        self.vector_dimensions: dict[str, int] = {}
        #: the ``(:KgLock {namespace})`` nodes' properties, in creation order
        self.locks: list[dict[str, Any]] = []

    def clear(self) -> int:
        """``admin/delete_all_batch``: every node of every namespace and every lock; returns how many.

        The schema (constraints, indexes, label tokens) stays, as in Neo4j.
        """
        deleted = len(self.nodes) + len(self.locks)
        self.nodes.clear()
        self.edges.clear()
        self.anchor.clear()
        self.out.clear()
        self.in_.clear()
        self.between.clear()
        self.locks.clear()
        return deleted

    # -- nodes ---------------------------------------------------------------------------------
    def token(self, label: str) -> int:
        return self.label_tokens.setdefault(label, len(self.label_tokens))

    def labels(self, node: _Node) -> list[str]:
        return sorted(node.labels, key=self.token)

    def add_label(self, node: _Node, label: str) -> None:
        self.token(label)
        node.labels.add(label)

    def find(self, label: str, ns: str, value: Any) -> _Node | None:
        """``MATCH (n:label {ns: ns, anchor: value})``; a null value matches nothing."""
        if value is None:
            return None
        node_id = self.anchor.get(_anchor_key(label, ns, value))
        return None if node_id is None else self.nodes[node_id]

    def merge_node(self, label: str, ns: str, value: Any) -> tuple[_Node, bool]:
        """``MERGE (n:label {ns: ns, anchor: value})``, and whether it created the node (``ON CREATE``)."""
        node = self.find(label, ns, value)
        if node is not None:
            return node, False
        self.token(label)
        self._next_id += 1
        node = _Node(self._next_id, {label}, {"ns": ns, _ANCHORS[label]: value})
        self.nodes[node.id] = node
        self.anchor[_anchor_key(label, ns, value)] = node.id
        return node, True

    def set_node_prop(self, node: _Node, key: str, value: Any) -> None:
        """``SET n.key = value`` that keeps the anchor index right when an anchor property changes."""
        for label in node.labels & _NAMESPACED:
            if key not in (_ANCHORS[label], "ns"):
                continue
            if value is None:
                raise GraphStoreError(
                    f"in-memory write failed: {label}.{key} cannot be removed (it is part of the node's anchor)"
                )
            old = _anchor_key(label, node.props["ns"], node.props[_ANCHORS[label]])
            new = (
                _anchor_key(label, value, node.props[_ANCHORS[label]])
                if key == "ns"
                else _anchor_key(label, node.props["ns"], value)
            )
            holder = self.anchor.get(new)
            if holder is not None and holder != node.id:
                raise GraphStoreError(
                    f"in-memory write failed: a {label} with {key} {value!r} already exists in its namespace "
                    "(uniqueness constraint)"
                )
            self.anchor.pop(old, None)
            self.anchor[new] = node.id
        _assign(node.props, key, value)

    def delete_node(self, node: _Node) -> None:
        """``DETACH DELETE n``."""
        for edge_id in [*self.out.get(node.id, {}), *self.in_.get(node.id, {})]:
            if edge_id in self.edges:
                self.delete_edge(self.edges[edge_id])
        for label in node.labels & _NAMESPACED:
            self.anchor.pop(_anchor_key(label, node.props["ns"], node.props[_ANCHORS[label]]), None)
        self.out.pop(node.id, None)
        self.in_.pop(node.id, None)
        del self.nodes[node.id]

    # -- edges ---------------------------------------------------------------------------------
    def merge_edge(self, head: _Node, type_: str, tail: _Node, match: dict[str, Any]) -> list[_Edge]:
        """``MERGE (head)-[r:type {match}]->(tail)``: every matching edge, or one new edge."""
        between = self.between[(head.id, type_, tail.id)]
        found = [
            self.edges[i]
            for i in between
            if all(_eq(self.edges[i].props.get(k), v) for k, v in match.items())
        ]
        if found:
            return found
        self._next_id += 1
        edge = _Edge(self._next_id, head.id, type_, tail.id, dict(match))
        self.edges[edge.id] = edge
        between[edge.id] = None
        self.out[head.id][edge.id] = None
        self.in_[tail.id][edge.id] = None
        return [edge]

    def delete_edge(self, edge: _Edge) -> None:
        del self.edges[edge.id]
        between = self.between.get((edge.head, edge.type, edge.tail))
        if between is not None:
            between.pop(edge.id, None)
            if not between:
                del self.between[(edge.head, edge.type, edge.tail)]
        self.out[edge.head].pop(edge.id, None)
        self.in_[edge.tail].pop(edge.id, None)

    def out_edges(self, node: _Node) -> Iterator[_Edge]:
        return (self.edges[i] for i in self.out.get(node.id, {}))

    def in_edges(self, node: _Node) -> Iterator[_Edge]:
        return (self.edges[i] for i in self.in_.get(node.id, {}))


class InMemoryGraphStore:
    """:class:`~kg_enhance.graph.store.GraphStore` in plain Python dictionaries (see the module docstring).

    One namespace's view of a :class:`MemoryDatabase` (a new, empty one unless ``database``
    is given), as a ``Neo4jStore`` is one namespace's view of its Neo4j database.
    """

    def __init__(
        self,
        database: MemoryDatabase | None = None,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        entity_namespace: str | None = None,
    ) -> None:
        self.database = database if database is not None else MemoryDatabase()
        self.namespace = namespace
        self.entity_namespace = entity_namespace or namespace
        self.closed = False

    @classmethod
    def for_job(cls, job: JobSpec, database: MemoryDatabase | None = None) -> InMemoryGraphStore:
        """The store of a job (its namespaces), like ``Neo4jStore.for_job``, on ``database`` or a new one."""
        return cls(database, namespace=job.namespace, entity_namespace=job.entity_namespace)

    def view(self, namespace: str, *, entity_namespace: str | None = None) -> InMemoryGraphStore:
        """Another namespace's store on the same database (another ``Neo4jStore`` on the same server)."""
        return InMemoryGraphStore(self.database, namespace=namespace, entity_namespace=entity_namespace)

    @property
    def owns_entities(self) -> bool:
        """Whether the entity namespace is the job's own (then entity vectors are written back)."""
        return self.entity_namespace == self.namespace

    @property
    def schema(self) -> set[str]:
        """Names of the constraints and indexes of the database (shared by every namespace)."""
        return self.database.schema

    # -- plumbing ------------------------------------------------------------------------------
    def close(self) -> None:
        """Mark the store closed; the data stays readable so tests can look at what a stage wrote."""
        self.closed = True

    def __enter__(self) -> InMemoryGraphStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def clear(self) -> int:
        """Delete every node, relationship and lock of every namespace (``admin/delete_all_batch``).

        Returns the nodes deleted (lock nodes included, as in Neo4j). Like
        ``Neo4jStore.clear`` this leaves the schema (constraints, indexes) in place.
        """
        return self.database.clear()

    def vector_index_dimensions(self) -> dict[str, int]:
        """``{index name: dimensions}`` of the vector indexes, like ``schema/vector_index_names``."""
        return dict(self.database.vector_dimensions)

    # -- schema --------------------------------------------------------------------------------
    def ensure_schema(self, ontology: Ontology) -> None:
        """The constraints and indexes of ``cypher/schema/``, in ``Neo4jStore.ensure_schema``'s order.

        The global-id constraints of graphs written before namespaces are dropped first.
        Creating the rest also creates the label tokens, which fixes the order ``labels(n)``
        reports (``['Item', 'Movie']``, ``['Entity', 'Genre']``).
        """
        db = self.database
        db.schema.difference_update(_LEGACY_CONSTRAINTS)
        for label, name in _CONSTRAINTS:
            db.token(label)
            db.schema.add(name)
        db.schema.add(_FULLTEXT_INDEX)
        for label in ontology.entity_types:
            db.token(_identifier(ontology.check_label(label)))
            db.schema.add(f"{label}.name")

    # -- writes --------------------------------------------------------------------------------
    def write_items(self, rows: Iterable[dict[str, Any]], *, item_label: str) -> int:
        """``write/merge_items``: MERGE on ``(ns, item_id)``, ``SET i += props {.*, ns: $ns}`` (null
        removes; a ``ns`` in the props cannot move the item to another namespace), add the label."""
        label = _identifier(item_label)
        rows = list(rows)
        prepared: list[tuple[Any, dict[str, Any]]] = []
        for row in rows:
            props = row.get("props")
            if not isinstance(props, Mapping):
                raise GraphStoreError(f"in-memory write failed: row.props must be a map, got {props!r}")
            prepared.append((_merge_value("Item", "item_id", row.get("item_id")), _storable_map(props)))
        for item_id, props in prepared:
            node = self._merge_node("Item", item_id)
            for key, value in props.items():
                if key != "ns":  # props {.*, ns: $ns}: the namespace wins
                    self.database.set_node_prop(node, key, value)
            self.database.add_label(node, label)
        return len(rows)

    def write_users(self, user_ids: Iterable[str]) -> int:
        """``write/merge_users``: one User per distinct id."""
        rows = sorted(set(user_ids))
        prepared = [_merge_value("User", "user_id", u) for u in rows]
        for user_id in prepared:
            self._merge_node("User", user_id)
        return len(rows)

    def write_interactions(self, rows: Iterable[dict[str, Any]]) -> int:
        """``write/merge_interactions``: one INTERACTED edge per (user, item) of the namespace;
        rating and ts are overwritten.

        Rows whose user or item is missing are skipped (the ``MATCH`` finds nothing) but
        counted, as ``Neo4jStore`` counts the rows it sent.
        """
        rows = list(rows)
        prepared = [
            (
                row.get("user_id"),
                row.get("item_id"),
                _storable("rating", row.get("rating")),
                _storable("ts", row.get("ts")),
            )
            for row in rows
        ]
        for user_id, item_id, rating, ts in prepared:
            user, item = self._find("User", user_id), self._find("Item", item_id)
            if user is None or item is None:
                continue
            for edge in self.database.merge_edge(user, "INTERACTED", item, {}):
                _assign(edge.props, "rating", rating)
                _assign(edge.props, "ts", ts)
        return len(rows)

    def seed_vocabulary(self, ontology: Ontology, *, run_id: str) -> int:
        """``write/seed_vocabulary``: vocabulary entities in the entity namespace; existing ones only
        gain the label and the flag."""
        written = 0
        for type_name, ent in sorted(ontology.entity_types.items()):
            if not ent.vocabulary:
                continue
            label = _identifier(ontology.check_label(type_name))
            for name in ent.vocabulary:
                node, created = self._merge_node_created("Entity", entity_key(type_name, name))
                if created:
                    _assign(node.props, "name", name)
                    _assign(node.props, "type", type_name)
                    _assign(node.props, "first_run", run_id)
                self.database.add_label(node, label)
                node.props["vocabulary"] = True
                written += 1
        return written

    def write_facts(
        self,
        facts: Iterable[Fact],
        ontology: Ontology,
        *,
        job: str,
        run_id: str,
        resolutions: Mapping[tuple[str, str], Resolution] | None = None,
    ) -> int:
        """Entities (``write/merge_entities``), then fact edges (``write/merge_item_facts`` / ``merge_user_facts``).

        The rows are the ones ``Neo4jStore.write_facts`` streams (:func:`~kg_enhance.graph.store.fact_target`
        and :func:`~kg_enhance.graph.store.fact_edge_row`): the first name a key is seen with names a new
        entity, an edge is one per (head, relation, entity, source) and its properties are replaced, the
        edges of one relationship type are written in fact order. Neo4j writes entities and edges in
        interleaved batches; the graph that results is the same as writing all entities first, as here.
        """
        groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        entities: dict[str, dict[str, str]] = {}
        for f in facts:
            key, name, rel_type = fact_target(f, ontology, resolutions)
            entities.setdefault(key, {"key": key, "name": name, "type": f.object_type})
            groups[(f.head_kind, rel_type)].append(fact_edge_row(f, key))
        by_type: dict[str, list[dict[str, str]]] = defaultdict(list)
        for row in entities.values():
            by_type[row["type"]].append(row)
        for type_name, rows in sorted(by_type.items()):
            self._merge_entities(rows, _identifier(ontology.check_label(type_name)), run_id=run_id)
        written = 0
        for (head_kind, rel_type), rows in sorted(groups.items()):
            written += self._merge_facts(rows, head_kind, _identifier(rel_type), job=job, run_id=run_id)
        return written

    def _merge_entities(self, rows: Sequence[dict[str, str]], label: str, *, run_id: str) -> None:
        """``write/merge_entities``: MERGE on ``($ens, key)``; everything is ``ON CREATE``, so an
        existing entity keeps name and labels."""
        prepared = [
            (
                _merge_value("Entity", "key", r.get("key")),
                _storable_map({"name": r.get("name"), "type": r.get("type")}),
            )
            for r in rows
        ]
        for key, props in prepared:
            node, created = self._merge_node_created("Entity", key)
            if created:
                for name, value in props.items():
                    _assign(node.props, name, value)
                _assign(node.props, "first_run", run_id)
                self.database.add_label(node, label)

    def _merge_facts(
        self, rows: Sequence[dict[str, Any]], head_kind: str, rel_type: str, *, job: str, run_id: str
    ) -> int:
        """``write/merge_item_facts`` (the item must exist) or ``merge_user_facts`` (the user is MERGEd);
        heads in the namespace, entities in the entity namespace."""
        for row in rows:
            _merge_value("Relationship", "source", row.get("source"))
            _storable_map(row["props"])
        for row in rows:
            if head_kind == "Item":
                head = self._find("Item", row.get("head_id"))
            else:
                head = self._merge_node("User", _merge_value("User", "user_id", row.get("head_id")))
            entity = self._find("Entity", row.get("key"))
            if head is None or entity is None:
                continue
            for edge in self.database.merge_edge(head, rel_type, entity, {"source": row["source"]}):
                edge.props = _storable_map(row["props"])  # SET r = row.props: replaced, not patched
                _assign(edge.props, "job", job)
                _assign(edge.props, "run_id", run_id)
        return len(rows)

    def delete_stale_facts(self, *, job: str, run_id: str, sources: Sequence[str]) -> int:
        """``write/delete_stale_facts`` (per relationship type but ``INTERACTED``, ``ALIAS_OF`` and
        ``RECOMMENDED``): ``job``'s edges from the namespace's items and users to entities, from
        ``sources``, whose ``run_id`` is less or greater than ``run_id``.

        Edges without a ``job``, ``source`` or ``run_id`` are kept (a null comparison is not true), and
        so are edges whose ``run_id`` does not compare with a string (another kind of value).
        """
        stale = [
            edge
            for edge in self.database.edges.values()
            if edge.type not in NON_FACT_TYPES
            and self._in_namespace(self._node(edge.head), _JOB_LABELS)
            and "Entity" in self._node(edge.tail).labels
            and _eq(edge.props.get("job"), job)
            and _in(edge.props.get("source"), sources)
            and (_lt(edge.props.get("run_id"), run_id) or _lt(run_id, edge.props.get("run_id")))
        ]
        for edge in stale:
            self.database.delete_edge(edge)
        return len(stale)

    # -- incremental refresh ---------------------------------------------------------------------
    def delete_subject_facts(
        self, head_kind: str, ids: Sequence[str], *, job: str, run_id: str, sources: Sequence[str]
    ) -> tuple[int, set[str]]:
        """``write/delete_item_facts`` / ``write/delete_user_facts``: the subjects' fact edges to entities
        (not ``INTERACTED``, ``ALIAS_OF``, ``RECOMMENDED``) of ``job`` from ``sources`` whose ``run_id`` is
        less or greater than ``run_id``; the count and the entity keys they pointed at."""
        deleted, keys = 0, set()
        for value in ids:
            head = self._find(head_kind, value)
            if head is None:
                continue
            for edge, tail in list(self._entity_edges(head)):
                if (
                    edge.type not in NON_FACT_TYPES
                    and _eq(edge.props.get("job"), job)
                    and _in(edge.props.get("source"), sources)
                    and (_lt(edge.props.get("run_id"), run_id) or _lt(run_id, edge.props.get("run_id")))
                ):
                    keys.add(tail.props["key"])
                    self.database.delete_edge(edge)
                    deleted += 1
        return deleted, keys

    def retire_items(self, ids: Sequence[str]) -> tuple[int, set[str], set[str]]:
        """``write/retire_items``: ``DETACH DELETE`` each item; the entity keys its edges pointed at and the
        namespace's users with an edge to it."""
        deleted, keys, users = 0, set(), set()
        for value in ids:
            item = self._find("Item", value)
            if item is None:
                continue
            keys |= {tail.props["key"] for _, tail in self._entity_edges(item)}
            for edge in self.database.in_edges(item):
                head = self._node(edge.head)
                if self._in_namespace(head, {"User"}):
                    users.add(head.props["user_id"])
            self.database.delete_node(item)
            deleted += 1
        return deleted, keys, users

    def delete_interactions(self, rows: Iterable[dict[str, Any]]) -> int:
        """``write/delete_interactions``: every row is counted, as ``_write`` counts the rows it sends."""
        count = 0
        for row in rows:
            count += 1
            user, item = self._find("User", row["user_id"]), self._find("Item", row["item_id"])
            if user is None or item is None:
                continue
            for edge in list(self.database.out_edges(user)):
                if edge.type == "INTERACTED" and edge.tail == item.id:
                    self.database.delete_edge(edge)
        return count

    def delete_orphans(self, entity_keys: Collection[str], user_ids: Collection[str]) -> tuple[int, int]:
        """``write/delete_orphan_entities`` then ``write/delete_orphan_users``."""
        entities = users = 0
        if self.owns_entities:
            for key in sorted(entity_keys):
                node = self._find("Entity", key)
                if node is None or node.props.get("vocabulary") is not None:
                    continue
                if next(self.database.in_edges(node), None) is None:
                    self.database.delete_node(node)
                    entities += 1
        for user_id in sorted(user_ids):
            node = self._find("User", user_id)
            if node is None:
                continue
            if (
                next(self.database.in_edges(node), None) is None
                and next(self.database.out_edges(node), None) is None
            ):
                self.database.delete_node(node)
                users += 1
        return entities, users

    def write_aliases(self, rows: Sequence[dict[str, Any]], *, run_id: str) -> int:
        """``resolve/write_aliases``: an Alias per merged key with an ALIAS_OF edge to its canonical entity,
        both in the entity namespace.

        A row whose canonical entity is missing writes nothing. An alias re-pointed at
        another entity keeps its old ALIAS_OF edge too, as the MERGE in Cypher does.
        """
        prepared = [
            (
                row.get("canonical_key"),
                row.get("key"),
                _storable_map({"name": row.get("name"), "type": row.get("type")}),
                _storable_map(
                    {
                        "reason": row.get("reason"),
                        "score": row.get("score"),
                        "matched_name": row.get("matched_name"),
                        "run_id": run_id,
                    }
                ),
            )
            for row in rows
        ]
        for canonical_key, key, alias_props, edge_props in prepared:
            entity = self._find("Entity", canonical_key)
            if entity is None:
                continue
            alias, created = self._merge_node_created("Alias", _merge_value("Alias", "key", key))
            if created:
                _assign(alias.props, "first_run", run_id)
            for name, value in alias_props.items():
                _assign(alias.props, name, value)
            for edge in self.database.merge_edge(alias, "ALIAS_OF", entity, {}):
                for name, value in edge_props.items():
                    _assign(edge.props, name, value)
        return len(rows)

    def mark_quarantined(self, records: Sequence[QuarantineRecord], *, run_id: str) -> int:
        """``write/clear_quarantine_flags`` then ``write/mark_quarantined`` (at most 5 errors per item),
        on the namespace's items."""
        for node in self._scoped("Item"):
            if node.props.get("quarantined_run") is not None:
                node.props.pop("quarantined_run", None)
                node.props.pop("quarantine_errors", None)
        rows = [(r.item_id, _storable("quarantine_errors", r.errors[:5])) for r in records]
        for item_id, errors in rows:
            item = self._find("Item", item_id)
            if item is not None:
                _assign(item.props, "quarantined_run", run_id)
                _assign(item.props, "quarantine_errors", errors)
        return len(rows)

    def write_embeddings(self, kind: str, rows: Sequence[dict[str, Any]], *, model: str, run_id: str) -> int:
        """``write/set_item_embeddings`` / ``set_entity_embeddings``: vector, model and run on existing
        nodes (items of the namespace, entities of the entity namespace)."""
        label = {"item": "Item", "entity": "Entity"}[kind]  # KeyError for another kind, like Neo4jStore
        return self._set_vectors(label, "embedding", rows, model=model, run_id=run_id)

    def stamp_embeddings(self, kind: str, ids: Sequence[str], *, previous_run: str, run_id: str) -> int:
        """``write/stamp_item_embeddings`` / ``stamp_entity_embeddings``: ``embedding_run`` of the nodes
        that still hold ``previous_run``'s vector; returns how many."""
        label = {"item": "Item", "entity": "Entity"}[kind]
        stamped = 0
        for anchor in ids:
            node = self._find(label, anchor)
            if node is not None and node.props.get("embedding_run") == previous_run:
                node.props["embedding_run"] = run_id
                stamped += 1
        return stamped

    def _set_vectors(
        self, label: str, prop: str, rows: Iterable[dict[str, Any]], *, model: str, run_id: str
    ) -> int:
        """``prop`` (a vector), ``<prop>_model`` and ``<prop>_run`` on existing ``label`` nodes, by id;
        every vector is checked before any is written."""
        prepared = [(row.get("id"), _storable(prop, row.get("vector"))) for row in rows]
        for anchor, vector in prepared:
            node = self._find(label, anchor)
            if node is not None:
                _assign(node.props, prop, vector)
                _assign(node.props, f"{prop}_model", model)
                _assign(node.props, f"{prop}_run", run_id)
        return len(prepared)

    def _claim_vector_index(self, name: str, label: str, prop: str, dimensions: int, what: str) -> bool:
        """Create (or re-size) vector index ``name`` for ``dimensions``, as Neo4j's
        ``CREATE VECTOR INDEX ... IF NOT EXISTS`` after a drop of a differently sized one would;
        False, with a warning, when another namespace's vectors hold it at another size."""
        db = self.database
        existing = db.vector_dimensions.get(name)
        if existing is not None and existing != dimensions:
            if any(
                label in n.labels and _ne(n.props.get("ns"), self.namespace) and n.props.get(prop) is not None
                for n in db.nodes.values()
            ):
                logger.warning(
                    "vector index %s has %s dimensions and holds other namespaces' %s; "
                    "namespace %r's %d-dimensional %s are stored but not indexed",
                    name,
                    existing,
                    what,
                    self.namespace,
                    dimensions,
                    what,
                )
                return False
            del db.vector_dimensions[name]
        if not 1 <= dimensions <= 4096:  # Neo4j 5 refuses such a vector index
            raise GraphStoreError(f"in-memory vector index: dimensions must be 1..4096, got {dimensions}")
        db.vector_dimensions.setdefault(name, dimensions)
        return True

    def finish_embeddings(self, *, dimensions: int, run_id: str) -> list[str]:
        """``write/clear_stale_embeddings`` on the namespace's items and entities, then the vector indexes.

        As ``Neo4jStore.finish_embeddings``: an index whose dimension differs is recreated
        unless another namespace has vectors of its label (``read/other_namespace_vectors``),
        in which case it is left alone. Returns the indexes that cover this namespace's vectors.
        """
        db = self.database
        for node in db.nodes.values():
            if not node.labels & {"Item", "Entity"} or not _eq(node.props.get("ns"), self.namespace):
                continue
            if _ne(node.props.get("embedding_run"), run_id):
                for name in _EMBEDDING_PROPERTIES:
                    node.props.pop(name, None)
        indexed = [
            name
            for name, label in _VECTOR_INDEXES.items()
            if self._claim_vector_index(name, label, "embedding", dimensions, "vectors")
        ]
        return indexed

    def write_text_embeddings(
        self, kind: str, rows: Iterable[dict[str, Any]], *, model: str, run_id: str
    ) -> int:
        """``write/set_item_text_embeddings`` / ``set_user_text_embeddings``: vector, model and run on
        existing items or users of the namespace."""
        label = _TEXT_VECTOR_INDEXES[kind][1]  # KeyError for another kind, like Neo4jStore
        return self._set_vectors(label, "text_embedding", rows, model=model, run_id=run_id)

    def finish_text_embeddings(self, *, dimensions: dict[str, int], run_id: str) -> list[str]:
        """``write/clear_stale_text_embeddings`` on the namespace's items and users, then the text
        vector indexes, as ``Neo4jStore.finish_text_embeddings``."""
        db = self.database
        for node in db.nodes.values():
            if not node.labels & {"Item", "User"} or not _eq(node.props.get("ns"), self.namespace):
                continue
            if _ne(node.props.get("text_embedding_run"), run_id):
                for name in _TEXT_EMBEDDING_PROPERTIES:
                    node.props.pop(name, None)
        indexed = []
        for kind, dim in dimensions.items():
            name, label = _TEXT_VECTOR_INDEXES[kind]
            if self._claim_vector_index(name, label, "text_embedding", dim, "text vectors"):
                indexed.append(name)
        return indexed

    def text_neighbours(self, item_id: str, *, k: int = 10) -> list[dict[str, Any]]:
        """``read/text_neighbours``: exact cosine over the namespace's indexed items, as Neo4j's
        ``(1 + cos) / 2`` score. Neo4j's index is approximate (HNSW) and, in 5.26, quantised by
        default, so its scores differ (most for vectors far from the query); on small graphs both
        give the same neighbours in the same order."""
        me = self._find("Item", item_id)
        dim = self.database.vector_dimensions.get("item_text_embedding")
        if me is None or me.props.get("text_embedding") is None or dim is None:
            return []
        query = np.asarray(me.props["text_embedding"], dtype=np.float64)
        scored: list[tuple[float, str]] = []
        for node in self.database.nodes.values():
            vec = node.props.get("text_embedding")
            if (
                node is me
                or "Item" not in node.labels
                or not _eq(node.props.get("ns"), self.namespace)
                or vec is None
                or len(vec) != dim
            ):
                continue
            v = np.asarray(vec, dtype=np.float64)
            cos = float(query @ v / (np.linalg.norm(query) * np.linalg.norm(v) + 1e-12))
            scored.append(((1 + cos) / 2, str(node.props.get("item_id"))))  # Neo4j's cosine score
        scored.sort(key=lambda r: (-r[0], r[1]))
        return [{"item_id": item_id, "score": score} for score, item_id in scored[:k]]

    def write_recommendations(self, rows: Sequence[dict[str, Any]], *, job: str, run_id: str) -> int:
        """``write/merge_recommendations`` (one edge per user, item and job of the namespace), then
        ``write/delete_stale_recommendations`` (the job's edges of older runs from the namespace's users)."""
        fields = ("rank", "score", "model", "via_items", "via_entities")
        prepared = [
            (row.get("user_id"), row.get("item_id"), _storable_map({f: row.get(f) for f in fields}))
            for row in rows
        ]
        if rows:
            _merge_value("RECOMMENDED relationship", "job", job)
        for user_id, item_id, props in prepared:
            user, item = self._find("User", user_id), self._find("Item", item_id)
            if user is None or item is None:
                continue
            for edge in self.database.merge_edge(user, "RECOMMENDED", item, {"job": job}):
                _assign(edge.props, "rank", props.get("rank"))
                _assign(edge.props, "score", props.get("score"))
                _assign(edge.props, "run", run_id)
                for name in ("model", "via_items", "via_entities"):
                    _assign(edge.props, name, props.get(name))
        stale = [
            edge
            for edge in self.database.edges.values()
            if edge.type == "RECOMMENDED"
            and _eq(edge.props.get("job"), job)
            and _ne(edge.props.get("run"), run_id)
            and self._in_namespace(self._node(edge.head), {"User"})
            and "Item" in self._node(edge.tail).labels
        ]
        for edge in stale:
            self.database.delete_edge(edge)
        return len(rows)

    # -- locks (kg_enhance.graph.lock.LockBackend) ----------------------------------------------
    def try_lock(self, owner: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """``admin/acquire_lock``: create the namespace's lock for ``owner`` unless there is one;
        whether it is ``owner``'s (same ``run_id``) and the holder's properties."""
        props = _storable_map(owner)
        self.database.token("KgLock")
        self.database.schema.add("lock_namespace_unique")
        lock = self._lock()
        if lock is None:
            lock = {"namespace": self.namespace}
            for key, value in props.items():  # ON CREATE SET l += $owner, l.heartbeat = timestamp()
                _assign(lock, key, value)
            lock["heartbeat"] = _timestamp()
            self.database.locks.append(lock)
        return _eq(lock.get("run_id"), owner.get("run_id")), _copy(lock)

    def take_over_lock(self, owner: dict[str, Any], *, stale_run_id: str) -> bool:
        """``admin/take_over_lock``: compare-and-set of the holder, only if ``stale_run_id`` still holds it."""
        props = _storable_map(owner)
        lock = self._lock()
        if lock is None or not _eq(lock.get("run_id"), stale_run_id):
            return False
        for key, value in props.items():  # SET l += $owner, heartbeat, took_over_from
            _assign(lock, key, value)
        lock["heartbeat"] = _timestamp()
        _assign(lock, "took_over_from", stale_run_id)
        return _eq(lock.get("run_id"), owner.get("run_id"))

    def refresh_lock(self, run_id: str) -> bool:
        """``admin/refresh_lock``: a new heartbeat, if ``run_id`` holds the lock."""
        lock = self._lock(run_id)
        if lock is None:
            return False
        lock["heartbeat"] = _timestamp()
        return True

    def release_lock(self, run_id: str) -> None:
        """``admin/release_lock``: delete the lock if ``run_id`` holds it."""
        lock = self._lock(run_id)
        if lock is not None:
            self.database.locks.remove(lock)

    def _lock(self, run_id: Any = ...) -> dict[str, Any] | None:
        """``MATCH (l:KgLock {namespace: $ns})``, with ``run_id: $run_id`` when given."""
        for lock in self.database.locks:
            if _eq(lock.get("namespace"), self.namespace) and (
                run_id is ... or _eq(lock.get("run_id"), run_id)
            ):
                return lock
        return None

    def clear_namespace(self) -> int:
        """``admin/delete_namespace_batch``: DETACH DELETE the nodes whose ``ns`` is the namespace (its
        items and users, and the entities and aliases of the entity namespace of that name); the
        lock and other namespaces stay. Returns the nodes deleted."""
        doomed = [n for n in self.database.nodes.values() if self._in_namespace(n, _NAMESPACED)]
        for node in doomed:
            self.database.delete_node(node)
        return len(doomed)

    # -- resolution (kg_enhance.graph.resolve.ResolutionBackend) --------------------------------
    def existing_entities(self, keys: Sequence[str]) -> dict[str, str]:
        """``resolve/existing_entities``: ``{key: name}`` of the keys that are entities of the entity namespace."""
        out: dict[str, Any] = {}  # a name Neo4j lacks comes back as None, here too
        for key in keys:
            node = self._find("Entity", key)
            if node is not None:
                out[node.props["key"]] = node.props.get("name")
        return out

    def entity_types_present(self, types: Sequence[str]) -> set[str]:
        """``resolve/entity_types_present``: the types of ``types`` that some entity of the entity namespace has."""
        present = {e.props.get("type") for e in self._scoped("Entity")}
        return {t for t in types if _in(t, present)}

    def alias_targets(self, keys: Sequence[str]) -> dict[str, tuple[str, str]]:
        """``resolve/alias_targets``: ``{alias key: (canonical key, canonical name)}`` in the entity namespace."""
        out: dict[str, tuple[Any, Any]] = {}
        for key in keys:
            alias = self._find("Alias", key)
            if alias is None:
                continue
            for edge in self.database.out_edges(alias):
                target = self._node(edge.tail)
                if edge.type == "ALIAS_OF" and "Entity" in target.labels:
                    out[alias.props["key"]] = (target.props.get("key"), target.props.get("name"))
        return out

    def fulltext_candidates(
        self, rows: Sequence[dict[str, str]], *, limit: int
    ) -> dict[str, list[tuple[str, str]]]:
        """``resolve/fulltext_candidates``: the top ``limit`` names for ``row.query``, then the entity
        namespace's of the same type only.

        As in the Cypher, the index spans every namespace and the limit applies before the
        namespace and type filters. The query is the Lucene syntax
        :func:`kg_enhance.graph.resolve.fulltext_query` builds (``term``, ``term~1``,
        ``term~2``), scored with :class:`_NameIndex`.
        """
        if _FULLTEXT_INDEX not in self.database.schema:
            raise GraphStoreError(
                f"in-memory read failed: there is no such fulltext schema index: {_FULLTEXT_INDEX} "
                "(call ensure_schema first)"
            )
        index = _NameIndex([n for n in self._nodes_with("Entity") if isinstance(n.props.get("name"), str)])
        out: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for row in rows:
            for node in index.search(row["query"], limit=limit):
                if (
                    _eq(node.props.get("ns"), self.entity_namespace)
                    and _eq(node.props.get("type"), row["type"])
                    and _ne(node.props.get("key"), row["key"])
                ):
                    out[row["key"]].append((node.props["key"], node.props["name"]))
        return dict(out)

    def explain_key(self, key: str) -> dict[str, Any]:
        """``resolve/explain_name``: one row, with nulls where the key is neither an entity nor an alias
        of the entity namespace."""
        entity = self._find("Entity", key)
        row: dict[str, Any] = {
            "entity_key": entity.props.get("key") if entity else None,
            "entity_name": entity.props.get("name") if entity else None,
            "alias_target_key": None,
            "alias_target_name": None,
            "alias_name": None,
            "reason": None,
            "score": None,
            "matched_name": None,
            "run_id": None,
        }
        alias = self._find("Alias", key)
        for edge in self.database.out_edges(alias) if alias else ():
            target = self._node(edge.tail)
            if edge.type == "ALIAS_OF" and "Entity" in target.labels and alias is not None:
                row.update(
                    alias_target_key=target.props.get("key"),
                    alias_target_name=target.props.get("name"),
                    alias_name=alias.props.get("name"),
                    reason=edge.props.get("reason"),
                    score=edge.props.get("score"),
                    matched_name=edge.props.get("matched_name"),
                    run_id=edge.props.get("run_id"),
                )
                break
        return row

    # -- reads ---------------------------------------------------------------------------------
    def totals(self) -> dict[str, int]:
        """``read/count_totals``: the namespace's nodes (with its entity namespace's entities and aliases)
        and the edges leaving the namespace's nodes."""
        items = list(self._scoped("Item"))
        return {
            "nodes": sum(1 for _ in self._counted_nodes()),
            "edges": sum(1 for _ in self._counted_edges()),
            "items": len(items),
            "items_with_facts": sum(1 for i in items if any(self._entity_edges(i))),
        }

    def counts_by_label(self) -> dict[str, int]:
        """``read/count_nodes_by_label``, ordered by label."""
        counts: dict[str, int] = defaultdict(int)
        for node in self._counted_nodes():
            for label in node.labels:
                counts[label] += 1
        return {label: counts[label] for label in sorted(counts, key=_order_key)}

    def counts_by_type(self) -> dict[str, int]:
        """``read/count_edges_by_type``, ordered by type."""
        counts: dict[str, int] = defaultdict(int)
        for edge in self._counted_edges():
            counts[edge.type] += 1
        return {type_: counts[type_] for type_ in sorted(counts, key=_order_key)}

    def _counted_nodes(self) -> Iterator[_Node]:
        """``(n.ns = $ns AND (n:Item OR n:User OR n:Entity OR n:Alias)) OR (n.ns = $ens AND (n:Entity OR n:Alias))``."""
        for node in self.database.nodes.values():
            if self._in_namespace(node, _NAMESPACED) or (
                node.labels & _ENTITY_LABELS and _eq(node.props.get("ns"), self.entity_namespace)
            ):
                yield node

    def _counted_edges(self) -> Iterator[_Edge]:
        """``(a)-[r]->() WHERE a.ns = $ns AND (a:Item OR a:User OR a:Entity OR a:Alias)``."""
        return (
            e for e in self.database.edges.values() if self._in_namespace(self._node(e.head), _NAMESPACED)
        )

    def item_fact_triples(self, sources: list[str] | None = None) -> list[Triple]:
        """``read/item_fact_triples``: distinct, ordered; ``sources=None`` means every source."""
        return self._fact_triples("Item", sources)

    def user_fact_triples(self, sources: list[str] | None = None) -> list[Triple]:
        """``read/user_fact_triples``: as :meth:`item_fact_triples` for User heads."""
        return self._fact_triples("User", sources)

    def _fact_triples(self, head_label: str, sources: list[str] | None) -> list[Triple]:
        found: dict[Triple, None] = {}
        for head in self._scoped(head_label):
            for edge, entity in self._entity_edges(head):
                if sources is not None and not _in(edge.props.get("source"), sources):
                    continue
                found[(_anchor_text(head, head_label), edge.type, _anchor_text(entity, "Entity"))] = None
        return sorted(found, key=lambda t: tuple(_order_key(v) for v in t))

    def interaction_triples(self, min_rating: float | None = None) -> list[Triple]:
        """``read/interaction_triples``: INTERACTED edges rated at least ``min_rating`` (unrated ones only without it)."""
        out: list[Triple] = []
        for user, edge, item in self._interacted():
            if min_rating is None or _ge(edge.props.get("rating"), min_rating):
                out.append((_anchor_text(user, "User"), "INTERACTED", _anchor_text(item, "Item")))
        return sorted(out, key=lambda t: (_order_key(t[0]), _order_key(t[2])))

    def interactions(self) -> list[InteractionRow]:
        """``read/interactions``: ``(user_id, item_id, rating, ts)``, unordered as in Neo4j."""
        out: list[InteractionRow] = []
        for user, edge, item in self._interacted():
            rating, ts = edge.props.get("rating"), edge.props.get("ts")
            out.append(
                (
                    str(user.props.get("user_id")),
                    str(item.props.get("item_id")),
                    None if rating is None else float(rating),
                    None if ts is None else int(ts),
                )
            )
        return out

    def entity_degrees(self) -> list[dict[str, Any]]:
        """``read/entity_degrees``: per entity of the entity namespace, how many distinct items and
        users of the namespace point at it."""
        rows = []
        for entity in self._scoped("Entity"):
            heads = [self._node(e.head) for e in self.database.in_edges(entity)]
            rows.append(
                {
                    "key": entity.props.get("key"),
                    "type": entity.props.get("type"),
                    "items": len({h.id for h in heads if self._in_namespace(h, {"Item"})}),
                    "users": len({h.id for h in heads if self._in_namespace(h, {"User"})}),
                }
            )
        return rows

    def item_fact_counts(self) -> list[dict[str, Any]]:
        """``read/item_fact_counts``: per item of the namespace, how many distinct entities its facts point at."""
        return [
            {
                "item_id": item.props.get("item_id"),
                "entities": len({e.id for _, e in self._entity_edges(item)}),
            }
            for item in self._scoped("Item")
        ]

    def entity_keys(self) -> list[dict[str, Any]]:
        """``read/entity_keys``: key, type and name of every entity of the entity namespace, ordered by key."""
        return sorted(self.stream_entity_keys(), key=lambda r: _order_key(r["key"]))

    def stream_entity_keys(self) -> Iterator[dict[str, Any]]:
        """``read/entity_keys_unordered``: :meth:`entity_keys` in creation order."""
        for e in list(self._scoped("Entity")):
            yield {"key": e.props.get("key"), "type": e.props.get("type"), "name": e.props.get("name")}

    def entity_degree_histogram(self) -> list[dict[str, Any]]:
        """``read/entity_degree_histogram``: :meth:`entity_degrees` counted by ``(type, items, with_users)``."""
        counts: dict[tuple[Any, int, bool], int] = defaultdict(int)
        for row in self.entity_degrees():
            counts[(row["type"], row["items"], row["users"] > 0)] += 1
        return [
            {"type": t, "items": items, "with_users": users, "entities": n}
            for (t, items, users), n in counts.items()
        ]

    def item_fact_histogram(self) -> list[dict[str, Any]]:
        """``read/item_fact_histogram``: :meth:`item_fact_counts` counted by ``entities``."""
        counts: dict[int, int] = defaultdict(int)
        for row in self.item_fact_counts():
            counts[row["entities"]] += 1
        return [{"entities": k, "items": n} for k, n in counts.items()]

    def rdf_facts(self, sources: list[str] | None = None) -> list[dict[str, Any]]:
        """``read/rdf_facts``: distinct facts of the namespace's items and users with names, ordered for a
        stable export."""
        found: dict[tuple[Any, ...], None] = {}
        for head in self.database.nodes.values():
            if not self._in_namespace(head, _JOB_LABELS):
                continue
            for edge, entity in self._entity_edges(head):
                if sources is not None and not _in(edge.props.get("source"), sources):
                    continue
                head_id = head.props.get("item_id")
                found[
                    (
                        "item" if "Item" in head.labels else "user",
                        head_id if head_id is not None else head.props.get("user_id"),
                        head.props.get("title"),
                        edge.type,
                        entity.props.get("key"),
                        entity.props.get("name"),
                        entity.props.get("type"),
                    )
                ] = None
        columns = ("head_kind", "head_id", "head_title", "relation", "key", "name", "type")
        ordered = sorted(
            found, key=lambda r: (_order_key(r[0]), _order_key(r[1]), _order_key(r[3]), _order_key(r[4]))
        )
        return [dict(zip(columns, r, strict=True)) for r in ordered]

    def fingerprint_nodes(self) -> list[dict[str, Any]]:
        """``read/fingerprint_nodes``: the namespace's nodes with anchor id, labels (in token order) and
        a copy of the properties.

        Those are its items and users, and the entities and aliases of its entity
        namespace when it owns that (``owns_entities``); with shared entities, only the
        entities its items and users point at.
        """
        own = self.owns_entities
        found = []
        for node in self.database.nodes.values():
            if self._in_namespace(node, _NAMESPACED if own else _JOB_LABELS) or (
                not own
                and "Entity" in node.labels
                and _eq(node.props.get("ns"), self.entity_namespace)
                and any(
                    self._in_namespace(self._node(e.head), _JOB_LABELS) for e in self.database.in_edges(node)
                )
            ):
                found.append(
                    {
                        "id": self._fingerprint_id(node),
                        "labels": self.database.labels(node),
                        "props": _copy(node.props),
                    }
                )
        return found

    def fingerprint_edges(self, exclude_types: Sequence[str]) -> list[dict[str, Any]]:
        """``read/fingerprint_edges``: the relationships leaving the namespace's nodes (as in
        :meth:`fingerprint_nodes`; entities and aliases only when it owns them), not of ``exclude_types``,
        by their ends' anchors."""
        excluded = set(exclude_types)
        heads = _NAMESPACED if self.owns_entities else _JOB_LABELS
        return [
            {
                "head": self._fingerprint_id(self._node(e.head)),
                "type": e.type,
                "tail": self._fingerprint_id(self._node(e.tail)),
                "props": _copy(e.props),
            }
            for e in self.database.edges.values()
            if e.type not in excluded and self._in_namespace(self._node(e.head), heads)
        ]

    def stream_fingerprint_nodes(self, exclude_properties: Collection[str]) -> Iterator[dict[str, Any]]:
        """``read/fingerprint_node_rows``: :meth:`fingerprint_nodes` without ``exclude_properties``."""
        excluded = set(exclude_properties)
        for row in self.fingerprint_nodes():
            row["props"] = {k: v for k, v in row["props"].items() if k not in excluded}
            yield row

    def stream_fingerprint_edges(
        self, exclude_types: Sequence[str], exclude_properties: Collection[str]
    ) -> Iterator[dict[str, Any]]:
        """``read/fingerprint_edge_rows``: :meth:`fingerprint_edges` without ``exclude_properties``."""
        excluded = set(exclude_properties)
        for row in self.fingerprint_edges(exclude_types):
            row["props"] = {k: v for k, v in row["props"].items() if k not in excluded}
            yield row

    # -- the graph underneath ------------------------------------------------------------------
    def _ns_of(self, label: str) -> str:
        """The ``ns`` a node of ``label`` gets from this store: ``$ns`` or, for entities and aliases, ``$ens``."""
        return self.entity_namespace if label in _ENTITY_LABELS else self.namespace

    def _in_namespace(self, node: _Node, labels: Iterable[str]) -> bool:
        """``n.ns = $ns AND (n:A OR n:B ...)``."""
        return bool(node.labels & set(labels)) and _eq(node.props.get("ns"), self.namespace)

    def _scoped(self, label: str) -> Iterator[_Node]:
        """``MATCH (n:label {ns: $ns})`` (``$ens`` for Entity and Alias)."""
        ns = self._ns_of(label)
        return (n for n in self._nodes_with(label) if _eq(n.props.get("ns"), ns))

    def _find(self, label: str, value: Any) -> _Node | None:
        """``MATCH (n:label {ns: $ns, anchor: value})`` (``$ens`` for Entity and Alias)."""
        return self.database.find(label, self._ns_of(label), value)

    def _merge_node(self, label: str, value: Any) -> _Node:
        return self._merge_node_created(label, value)[0]

    def _merge_node_created(self, label: str, value: Any) -> tuple[_Node, bool]:
        """``MERGE (n:label {ns: $ns, anchor: value})`` (``$ens`` for Entity and Alias)."""
        return self.database.merge_node(label, self._ns_of(label), value)

    def _node(self, node_id: int) -> _Node:
        return self.database.nodes[node_id]

    def _nodes_with(self, label: str) -> Iterator[_Node]:
        return (n for n in self.database.nodes.values() if label in n.labels)

    def _entity_edges(self, head: _Node) -> Iterator[tuple[_Edge, _Node]]:
        """``(head)-[r]->(e:Entity)``: every outgoing edge to an entity, whatever its type."""
        for edge in self.database.out_edges(head):
            tail = self._node(edge.tail)
            if "Entity" in tail.labels:
                yield edge, tail

    def _interacted(self) -> Iterator[tuple[_Node, _Edge, _Node]]:
        """``(u:User {ns: $ns})-[r:INTERACTED]->(i:Item)``."""
        for edge in self.database.edges.values():
            user, item = self._node(edge.head), self._node(edge.tail)
            if edge.type == "INTERACTED" and self._in_namespace(user, {"User"}) and "Item" in item.labels:
                yield user, edge, item

    def _fingerprint_id(self, node: _Node) -> str:
        for label, _ in _ANCHOR_PREFIXES:
            if label in node.labels:
                return _anchor_text(node, label)
        return f"node:memory:{node.id}"  # elementId() in Neo4j: never stable, so never in a fingerprint that matters


if TYPE_CHECKING:  # mypy checks that the store keeps to both Protocols

    def _is_graph_store(store: InMemoryGraphStore) -> GraphStore:
        return store

    def _is_lock_backend(store: InMemoryGraphStore) -> LockBackend:
        return store


class _NameIndex:
    """The ``entity_name_fulltext`` index, approximated: Lucene-like tokens, BM25, fuzzy terms.

    ``search`` answers the query syntax :func:`kg_enhance.graph.resolve.fulltext_query`
    writes (space-separated ``term`` / ``term~N``, any term may match). Each fuzzy term
    expands to indexed tokens within N Damerau-Levenshtein edits, each weighted like
    Lucene's ``FuzzyQuery`` does (``1 - edits / shorter length``) times its own BM25
    score, and the scores of all matching tokens add up. Checked against Neo4j 5.26
    on typical names, this gives Lucene's scores up to its lossy length norms; equal
    scores are ordered by creation here, in no documented order in Neo4j.
    """

    def __init__(self, nodes: Sequence[_Node]) -> None:
        self.nodes = list(nodes)  # in creation order: Lucene breaks score ties by document order
        self.tokens = [_lucene_tokens(str(n.props["name"])) for n in self.nodes]
        self.postings: dict[str, list[int]] = defaultdict(list)
        for doc, tokens in enumerate(self.tokens):
            for token in dict.fromkeys(tokens):
                self.postings[token].append(doc)
        self.vocabulary = list(self.postings)
        self.avg_len = sum(len(t) for t in self.tokens) / len(self.tokens) if self.tokens else 0.0

    def search(self, query: str, *, limit: int) -> list[_Node]:
        scores: dict[int, float] = defaultdict(float)
        for part in query.split():
            term, fuzzy, edits = part.partition("~")
            term = term.lower()
            if not term:
                continue
            # "term~N" allows N edits; a bare "term~" means Lucene's default of 2
            expansions = self._expand(term, (int(edits) if edits.isdigit() else 2) if fuzzy else 0)
            if not expansions:
                continue
            for token, boost in expansions.items():
                df = len(self.postings[token])
                idf = math.log(1 + (len(self.nodes) - df + 0.5) / (df + 0.5))
                for doc in self.postings[token]:
                    tf = self.tokens[doc].count(token)
                    norm = _BM25_K1 * (1 - _BM25_B + _BM25_B * len(self.tokens[doc]) / self.avg_len)
                    scores[doc] += boost * idf * tf / (tf + norm)
        ranked = sorted(scores, key=lambda doc: (-scores[doc], doc))
        return [self.nodes[doc] for doc in ranked[: max(limit, 0)]]

    def _expand(self, term: str, edits: int) -> dict[str, float]:
        """Indexed tokens within ``edits`` of ``term`` and their boosts (the best 50, like ``FuzzyQuery``)."""
        if edits <= 0:
            return {term: 1.0} if term in self.postings else {}
        found: dict[str, float] = {}
        for token, distance, _ in process.extract(
            term, self.vocabulary, scorer=OSA.distance, score_cutoff=min(edits, 2), limit=None
        ):
            boost = 1.0 if distance == 0 else 1.0 - distance / min(len(token), len(term))
            if boost > 0:
                found[token] = boost
        best = sorted(found.items(), key=lambda kv: (-kv[1], kv[0]))[:_FUZZY_MAX_EXPANSIONS]
        return dict(best)


# -- Cypher value semantics ------------------------------------------------------------------------
def _identifier(name: str) -> str:
    """The check ``CypherLibrary.get`` makes before a label or type goes into a statement."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"refusing identifier {name!r}: not a plain name")
    return name


def _lucene_tokens(text: str) -> list[str]:
    return [t.lower() for t in _LUCENE_WORD.findall(text)]


def _plain(value: Any) -> Any:
    """NumPy scalars and arrays as Python values, which is how the driver sends them."""
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return value.tolist()
    return value


def _kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "str"
    if isinstance(value, bytes):
        return "bytes"
    if isinstance(value, _TEMPORAL):
        return type(value).__name__
    return None


def _storable(name: str, value: Any) -> Any:
    """``value`` as Neo4j stores it as a property, or the error Neo4j gives for it.

    Neo4j stores scalars and homogeneous lists of scalars; a list of ints and floats
    becomes a list of floats; a null removes the property (returned as ``None`` here).
    """
    value = _plain(value)
    if value is None:
        return None
    if isinstance(value, list | tuple):
        items = [_plain(v) for v in value]
        if any(v is None for v in items):
            raise GraphStoreError(f"in-memory write failed: {name}: lists containing nulls cannot be stored")
        kinds = {_kind(v) for v in items}
        if None in kinds or len(kinds) > 1:
            raise GraphStoreError(
                f"in-memory write failed: {name}: lists must hold values of one primitive type, got {value!r}"
            )
        if kinds == {"number"} and any(isinstance(v, float) for v in items):
            items = [float(v) for v in items]
        return [_storable(name, v) for v in items]
    kind = _kind(value)
    if kind is None:
        raise GraphStoreError(
            f"in-memory write failed: {name}: property values can only be of primitive types or arrays "
            f"thereof, got {type(value).__name__}"
        )
    if kind == "number" and isinstance(value, int) and not -(2**63) <= value < 2**63:
        raise GraphStoreError(f"in-memory write failed: {name}: integer {value} does not fit in 64 bits")
    return value


def _storable_map(props: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): _storable(str(k), v) for k, v in props.items()}


def _merge_value(label: str, key: str, value: Any) -> Any:
    """A MERGE key: Neo4j refuses to MERGE on a null property."""
    value = _storable(key, value)
    if value is None:
        raise GraphStoreError(
            f"in-memory write failed: cannot merge the following {label} because of null property value for {key!r}"
        )
    return value


def _assign(props: dict[str, Any], key: str, value: Any) -> None:
    """``SET x.key = value``: a null removes the property."""
    if value is None:
        props.pop(key, None)
    else:
        props[key] = _storable(key, value)


def _anchor_value(value: Any) -> Any:
    """Index key with Cypher equality: ``1 = 1.0`` but ``true <> 1``."""
    return (type(value) is bool, value)


def _eq(a: Any, b: Any) -> bool:
    """Cypher ``a = b`` is true (null compares to nothing; booleans are not numbers)."""
    if a is None or b is None or isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)


def _ne(a: Any, b: Any) -> bool:
    """Cypher ``a <> b`` is true (false when either side is null)."""
    return a is not None and b is not None and not _eq(a, b)


def _in(value: Any, values: Iterable[Any]) -> bool:
    """Cypher ``value IN values`` is true."""
    return any(_eq(value, v) for v in values)


def _lt(a: Any, b: Any) -> bool:
    """Cypher ``a < b`` is true; values of different kinds do not compare (null)."""
    kind = _kind(a)
    if kind is None or kind != _kind(b) or any(isinstance(v, float) and math.isnan(v) for v in (a, b)):
        return False
    if kind == "str":
        return _order_key(a) < _order_key(b)  # Java's order: UTF-16 code units
    return bool(a < b)


def _ge(a: Any, b: Any) -> bool:
    """Cypher ``a >= b`` is true; values of different kinds do not compare (null)."""
    kind = _kind(a)
    if kind is None or kind != _kind(b) or (isinstance(a, float) and math.isnan(a)):
        return False
    return bool(a >= b)


def _order_key(value: Any) -> tuple[int, Any]:
    """Cypher ``ORDER BY``: strings by UTF-16 code units (Java's order), nulls last."""
    if value is None:
        return (3, b"")
    if isinstance(value, str):
        return (0, value.encode("utf-16-be", "surrogatepass"))
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, int | float):
        return (2, value)
    return (0, str(value).encode("utf-16-be", "surrogatepass"))


def _anchor_text(node: _Node, label: str) -> str:
    """``'item:' + n.item_id`` and its siblings (a node's anchor is never null: MERGE refuses that)."""
    prefix = dict(_ANCHOR_PREFIXES)[label]
    value = node.props[_ANCHORS[label]]
    return prefix + (
        value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)
    )


def _copy(props: Mapping[str, Any]) -> dict[str, Any]:
    """Properties as a read returns them: a fresh map with fresh lists, so callers cannot edit the graph."""
    return {k: list(v) if isinstance(v, list) else v for k, v in props.items()}


def _anchor_key(label: str, ns: Any, value: Any) -> _AnchorKey:
    """The ``(ns, id)`` uniqueness constraint's index key of a node."""
    return (label, _anchor_value(ns), _anchor_value(value))


def _timestamp() -> int:
    """Cypher ``timestamp()``: milliseconds since the epoch."""
    return time.time_ns() // 1_000_000
