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

Known differences, all outside what the pipeline relies on:

* ``fulltext_candidates`` scores names with a small BM25 over Lucene-like tokens
  and Damerau-Levenshtein fuzzy terms instead of Lucene itself. Typical typos find
  the same candidates of the same type; the order of candidates with equal scores
  (Neo4j's is undocumented) and, through Lucene's lossy length norms, of near-equal
  ones can differ, and so can which of them make the ``limit`` cut.
* A write that fails validation writes nothing here; Neo4j keeps the batches
  (``neo4j.batch_size`` rows each) committed before the failing one.
* An out-of-range vector dimension raises :class:`GraphStoreError` here; Neo4jStore
  lets the driver's ``ClientError`` through.
* Anchors that are floats are turned into text like Python, not Java, does
  (``1e+20`` instead of ``1.0E20``); the pipeline's anchors are strings.
* There are no transactions, retries or concurrent sessions; ``close`` keeps the
  data readable so a test can inspect the graph a stage left behind.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import process
from rapidfuzz.distance import OSA

from kg_enhance.errors import GraphStoreError
from kg_enhance.graph.resolve import Resolution
from kg_enhance.graph.store import InteractionRow, Triple
from kg_enhance.names import entity_key
from kg_enhance.ontology.models import Ontology
from kg_enhance.types import Fact, QuarantineRecord

#: the guard ``CypherLibrary.get`` applies to every label and type put into a statement
_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
#: ``label -> property`` with a uniqueness constraint (``cypher/schema/*_unique``): the MERGE anchors
_ANCHORS = {"Item": "item_id", "User": "user_id", "Entity": "key", "Alias": "key"}
#: the ``CASE`` of ``read/fingerprint_*.cypher``: which anchor names a node, first match wins
_ANCHOR_PREFIXES = (("Item", "item:"), ("User", "user:"), ("Entity", "entity:"), ("Alias", "alias:"))
_FULLTEXT_INDEX = "entity_name_fulltext"
_VECTOR_INDEXES = ("item_embedding", "entity_embedding")
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


class InMemoryGraphStore:
    """:class:`~kg_enhance.graph.store.GraphStore` in plain Python dictionaries (see the module docstring)."""

    def __init__(self) -> None:
        self._nodes: dict[int, _Node] = {}
        self._edges: dict[int, _Edge] = {}
        self._next_id = 0
        #: ``(anchor label, value) -> node id``: what the uniqueness constraints index in Neo4j
        self._anchor: dict[tuple[str, Any], int] = {}
        self._out: dict[int, dict[int, None]] = defaultdict(dict)  # node id -> edge ids (ordered set)
        self._in: dict[int, dict[int, None]] = defaultdict(dict)
        self._between: dict[tuple[int, str, int], dict[int, None]] = defaultdict(dict)
        #: label -> token id; ``labels(n)`` lists a node's labels in token order, as Neo4j does
        self._label_tokens: dict[str, int] = {}
        #: names of the constraints and indexes ``ensure_schema`` created (Neo4j keeps them on ``clear``)
        self.schema: set[str] = set()
        self._vector_dimensions: dict[str, int] = {}
        self.closed = False

    # -- plumbing ------------------------------------------------------------------------------
    def close(self) -> None:
        """Mark the store closed; the data stays readable so tests can look at what a stage wrote."""
        self.closed = True

    def __enter__(self) -> InMemoryGraphStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def clear(self) -> int:
        """Delete every node and relationship (``admin/delete_all_batch``); returns the nodes deleted.

        Like ``Neo4jStore.clear`` this leaves the schema (constraints, indexes) in place.
        """
        deleted = len(self._nodes)
        self._nodes.clear()
        self._edges.clear()
        self._anchor.clear()
        self._out.clear()
        self._in.clear()
        self._between.clear()
        return deleted

    def vector_index_dimensions(self) -> dict[str, int]:
        """``{index name: dimensions}`` of the vector indexes, like ``schema/vector_index_names``."""
        return dict(self._vector_dimensions)

    # -- schema --------------------------------------------------------------------------------
    def ensure_schema(self, ontology: Ontology) -> None:
        """The constraints and indexes of ``cypher/schema/``, in ``Neo4jStore.ensure_schema``'s order.

        Creating them also creates the label tokens, which fixes the order ``labels(n)``
        reports (``['Item', 'Movie']``, ``['Entity', 'Genre']``).
        """
        for label in ("Item", "User", "Entity", "Alias"):
            self._token(label)
        self.schema.update(("item_id_unique", "user_id_unique", "entity_key_unique", "alias_key_unique"))
        self.schema.add(_FULLTEXT_INDEX)
        for label in ontology.entity_types:
            self._token(_identifier(ontology.check_label(label)))
            self.schema.add(f"{label}.name")

    # -- writes --------------------------------------------------------------------------------
    def write_items(self, rows: Sequence[dict[str, Any]], *, item_label: str) -> int:
        """``write/merge_items``: MERGE on ``item_id``, ``SET i += row.props`` (null removes), add the label."""
        label = _identifier(item_label)
        prepared: list[tuple[Any, dict[str, Any]]] = []
        for row in rows:
            props = row.get("props")
            if not isinstance(props, Mapping):
                raise GraphStoreError(f"in-memory write failed: row.props must be a map, got {props!r}")
            prepared.append((_merge_value("Item", "item_id", row.get("item_id")), _storable_map(props)))
        for item_id, props in prepared:
            node = self._merge_node("Item", item_id)
            for key, value in props.items():
                self._set_node_prop(node, key, value)
            self._add_label(node, label)
        return len(rows)

    def write_users(self, user_ids: Iterable[str]) -> int:
        """``write/merge_users``: one User per distinct id."""
        rows = sorted(set(user_ids))
        prepared = [_merge_value("User", "user_id", u) for u in rows]
        for user_id in prepared:
            self._merge_node("User", user_id)
        return len(rows)

    def write_interactions(self, rows: Sequence[dict[str, Any]]) -> int:
        """``write/merge_interactions``: one INTERACTED edge per (user, item); rating and ts are overwritten.

        Rows whose user or item is missing are skipped (the ``MATCH`` finds nothing) but
        counted, as ``Neo4jStore`` counts the rows it sent.
        """
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
            for edge in self._merge_edge(user, "INTERACTED", item, {}):
                _assign(edge.props, "rating", rating)
                _assign(edge.props, "ts", ts)
        return len(rows)

    def seed_vocabulary(self, ontology: Ontology, *, run_id: str) -> int:
        """``write/seed_vocabulary``: vocabulary entities; existing ones only gain the label and the flag."""
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
                self._add_label(node, label)
                node.props["vocabulary"] = True
                written += 1
        return written

    def write_facts(
        self,
        facts: Sequence[Fact],
        ontology: Ontology,
        *,
        job: str,
        run_id: str,
        resolutions: Mapping[tuple[str, str], Resolution] | None = None,
    ) -> int:
        """Entities (``write/merge_entities``), then fact edges (``write/merge_item_facts`` / ``merge_user_facts``).

        The rows are prepared exactly as ``Neo4jStore.write_facts`` prepares them (keep the
        two in step): the first name a key is seen with names a new entity, an edge is
        one per (head, relation, entity, source) and its properties are replaced.
        """
        groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
        entities: dict[str, dict[str, str]] = {}
        for f in facts:
            if f.head_kind not in ("Item", "User"):
                raise GraphStoreError(
                    f"fact about {f.head_id!r} has head kind {f.head_kind!r}; only Item and User heads are stored"
                )
            res = resolutions.get((f.object_type, f.object)) if resolutions else None
            key = res.canonical_key if res else entity_key(f.object_type, f.object)
            entities.setdefault(
                key, {"key": key, "name": res.canonical_name if res else f.object, "type": f.object_type}
            )
            provenance = {
                "source": f.source,
                "source_field": f.source_field,
                "model": f.model,
                "prompt_hash": f.prompt_hash,
                "object_name": f.object,
                "evidence": f.evidence,
                "confidence": f.confidence,
            }
            groups[(f.head_kind, f.relation, f.object_type)].append(
                {
                    "head_id": f.head_id,
                    "key": key,
                    "source": f.source,
                    "props": {k: v for k, v in provenance.items() if v is not None},
                }
            )
        by_type: dict[str, list[dict[str, str]]] = defaultdict(list)
        for row in entities.values():
            by_type[row["type"]].append(row)
        for type_name, rows in sorted(by_type.items()):
            self._merge_entities(rows, _identifier(ontology.check_label(type_name)), run_id=run_id)
        written = 0
        for (head_kind, relation, _), rows in sorted(groups.items()):
            rel_type = _identifier(ontology.check_relation(relation))
            written += self._merge_facts(rows, head_kind, rel_type, job=job, run_id=run_id)
        return written

    def _merge_entities(self, rows: Sequence[dict[str, str]], label: str, *, run_id: str) -> None:
        """``write/merge_entities``: everything is ``ON CREATE``, so an existing entity keeps name and labels."""
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
                self._add_label(node, label)

    def _merge_facts(
        self, rows: Sequence[dict[str, Any]], head_kind: str, rel_type: str, *, job: str, run_id: str
    ) -> int:
        """``write/merge_item_facts`` (the item must exist) or ``merge_user_facts`` (the user is MERGEd)."""
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
            for edge in self._merge_edge(head, rel_type, entity, {"source": row["source"]}):
                edge.props = _storable_map(row["props"])  # SET r = row.props: replaced, not patched
                _assign(edge.props, "job", job)
                _assign(edge.props, "run_id", run_id)
        return len(rows)

    def delete_stale_facts(self, *, job: str, run_id: str, sources: Sequence[str]) -> int:
        """``write/delete_stale_facts``: ``job``'s Item/User -> Entity edges from ``sources`` of another run.

        Edges without a ``job``, ``source`` or ``run_id`` are kept (a null comparison is not true).
        """
        stale = [
            edge
            for edge in self._edges.values()
            if self._is(edge.head, "Item", "User")
            and self._is(edge.tail, "Entity")
            and _eq(edge.props.get("job"), job)
            and _in(edge.props.get("source"), sources)
            and _ne(edge.props.get("run_id"), run_id)
        ]
        for edge in stale:
            self._delete_edge(edge)
        return len(stale)

    def write_aliases(self, rows: Sequence[dict[str, Any]], *, run_id: str) -> int:
        """``resolve/write_aliases``: an Alias per merged key with an ALIAS_OF edge to its canonical entity.

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
            for edge in self._merge_edge(alias, "ALIAS_OF", entity, {}):
                for name, value in edge_props.items():
                    _assign(edge.props, name, value)
        return len(rows)

    def mark_quarantined(self, records: Sequence[QuarantineRecord], *, run_id: str) -> int:
        """``write/clear_quarantine_flags`` then ``write/mark_quarantined`` (at most 5 errors per item)."""
        for node in self._nodes_with("Item"):
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
        """``write/set_item_embeddings`` / ``set_entity_embeddings``: vector, model and run on existing nodes."""
        label = {"item": "Item", "entity": "Entity"}[kind]  # KeyError for another kind, like Neo4jStore
        prepared = [(row.get("id"), _storable("embedding", row.get("vector"))) for row in rows]
        for anchor, vector in prepared:
            node = self._find(label, anchor)
            if node is not None:
                _assign(node.props, "embedding", vector)
                _assign(node.props, "embedding_model", model)
                _assign(node.props, "embedding_run", run_id)
        return len(rows)

    def finish_embeddings(self, *, dimensions: int, run_id: str) -> None:
        """``write/clear_stale_embeddings``, then record the two vector indexes' dimensions."""
        for node in self._nodes.values():
            if not node.labels & {"Item", "Entity"}:
                continue
            if _ne(node.props.get("embedding_run"), run_id):
                for name in ("embedding", "embedding_model", "embedding_run"):
                    node.props.pop(name, None)
        if not 1 <= dimensions <= 4096:  # Neo4j 5 refuses such a vector index
            raise GraphStoreError(f"in-memory vector index: dimensions must be 1..4096, got {dimensions}")
        for name in _VECTOR_INDEXES:
            self._vector_dimensions[name] = dimensions

    def write_recommendations(self, rows: Sequence[dict[str, Any]], *, job: str, run_id: str) -> int:
        """``write/merge_recommendations`` (one edge per user, item and job), then drop the job's older runs."""
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
            for edge in self._merge_edge(user, "RECOMMENDED", item, {"job": job}):
                _assign(edge.props, "rank", props.get("rank"))
                _assign(edge.props, "score", props.get("score"))
                _assign(edge.props, "run", run_id)
                for name in ("model", "via_items", "via_entities"):
                    _assign(edge.props, name, props.get(name))
        stale = [
            edge
            for edge in self._edges.values()
            if edge.type == "RECOMMENDED"
            and _eq(edge.props.get("job"), job)
            and _ne(edge.props.get("run"), run_id)
            and self._is(edge.head, "User")
            and self._is(edge.tail, "Item")
        ]
        for edge in stale:
            self._delete_edge(edge)
        return len(rows)

    # -- resolution (kg_enhance.graph.resolve.ResolutionBackend) --------------------------------
    def existing_entities(self, keys: Sequence[str]) -> dict[str, str]:
        """``resolve/existing_entities``: ``{key: name}`` of the keys that are entities."""
        out: dict[str, Any] = {}  # a name Neo4j lacks comes back as None, here too
        for key in keys:
            node = self._find("Entity", key)
            if node is not None:
                out[node.props["key"]] = node.props.get("name")
        return out

    def alias_targets(self, keys: Sequence[str]) -> dict[str, tuple[str, str]]:
        """``resolve/alias_targets``: ``{alias key: (canonical key, canonical name)}``."""
        out: dict[str, tuple[Any, Any]] = {}
        for key in keys:
            alias = self._find("Alias", key)
            if alias is None:
                continue
            for edge in self._out_edges(alias):
                target = self._nodes[edge.tail]
                if edge.type == "ALIAS_OF" and "Entity" in target.labels:
                    out[alias.props["key"]] = (target.props.get("key"), target.props.get("name"))
        return out

    def fulltext_candidates(
        self, rows: Sequence[dict[str, str]], *, limit: int
    ) -> dict[str, list[tuple[str, str]]]:
        """``resolve/fulltext_candidates``: the top ``limit`` names for ``row.query``, then same type only.

        As in the Cypher, the limit applies before the type filter. The query is the
        Lucene syntax :func:`kg_enhance.graph.resolve.fulltext_query` builds (``term``,
        ``term~1``, ``term~2``), scored with :class:`_NameIndex`.
        """
        if _FULLTEXT_INDEX not in self.schema:
            raise GraphStoreError(
                f"in-memory read failed: there is no such fulltext schema index: {_FULLTEXT_INDEX} "
                "(call ensure_schema first)"
            )
        index = _NameIndex([n for n in self._nodes_with("Entity") if isinstance(n.props.get("name"), str)])
        out: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for row in rows:
            for node in index.search(row["query"], limit=limit):
                if _eq(node.props.get("type"), row["type"]) and _ne(node.props.get("key"), row["key"]):
                    out[row["key"]].append((node.props["key"], node.props["name"]))
        return dict(out)

    def explain_key(self, key: str) -> dict[str, Any]:
        """``resolve/explain_name``: one row, with nulls where the key is neither an entity nor an alias."""
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
        for edge in self._out_edges(alias) if alias else ():
            target = self._nodes[edge.tail]
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
        """``read/count_totals``."""
        items = list(self._nodes_with("Item"))
        return {
            "nodes": len(self._nodes),
            "edges": len(self._edges),
            "items": len(items),
            "items_with_facts": sum(1 for i in items if any(self._entity_edges(i))),
        }

    def counts_by_label(self) -> dict[str, int]:
        """``read/count_nodes_by_label``, ordered by label."""
        counts: dict[str, int] = defaultdict(int)
        for node in self._nodes.values():
            for label in node.labels:
                counts[label] += 1
        return {label: counts[label] for label in sorted(counts, key=_order_key)}

    def counts_by_type(self) -> dict[str, int]:
        """``read/count_edges_by_type``, ordered by type."""
        counts: dict[str, int] = defaultdict(int)
        for edge in self._edges.values():
            counts[edge.type] += 1
        return {type_: counts[type_] for type_ in sorted(counts, key=_order_key)}

    def item_fact_triples(self, sources: list[str] | None = None) -> list[Triple]:
        """``read/item_fact_triples``: distinct, ordered; ``sources=None`` means every source."""
        return self._fact_triples("Item", sources)

    def user_fact_triples(self, sources: list[str] | None = None) -> list[Triple]:
        """``read/user_fact_triples``: as :meth:`item_fact_triples` for User heads."""
        return self._fact_triples("User", sources)

    def _fact_triples(self, head_label: str, sources: list[str] | None) -> list[Triple]:
        found: dict[Triple, None] = {}
        for head in self._nodes_with(head_label):
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
        """``read/entity_degrees``: per entity, how many distinct items and users point at it."""
        rows = []
        for entity in self._nodes_with("Entity"):
            heads = [self._nodes[e.head] for e in self._in_edges(entity)]
            rows.append(
                {
                    "key": entity.props.get("key"),
                    "type": entity.props.get("type"),
                    "items": len({h.id for h in heads if "Item" in h.labels}),
                    "users": len({h.id for h in heads if "User" in h.labels}),
                }
            )
        return rows

    def item_fact_counts(self) -> list[dict[str, Any]]:
        """``read/item_fact_counts``: per item, how many distinct entities its facts point at."""
        return [
            {
                "item_id": item.props.get("item_id"),
                "entities": len({e.id for _, e in self._entity_edges(item)}),
            }
            for item in self._nodes_with("Item")
        ]

    def entity_keys(self) -> list[dict[str, Any]]:
        """``read/entity_keys``: key, type and name of every entity, ordered by key."""
        rows = [
            {"key": e.props.get("key"), "type": e.props.get("type"), "name": e.props.get("name")}
            for e in self._nodes_with("Entity")
        ]
        return sorted(rows, key=lambda r: _order_key(r["key"]))

    def rdf_facts(self, sources: list[str] | None = None) -> list[dict[str, Any]]:
        """``read/rdf_facts``: distinct Item/User -> Entity facts with names, ordered for a stable export."""
        found: dict[tuple[Any, ...], None] = {}
        for head in self._nodes.values():
            if not head.labels & {"Item", "User"}:
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
        """``read/fingerprint_nodes``: anchor id, labels (in token order) and a copy of the properties."""
        return [
            {"id": self._fingerprint_id(n), "labels": self._labels(n), "props": _copy(n.props)}
            for n in self._nodes.values()
        ]

    def fingerprint_edges(self, exclude_types: Sequence[str]) -> list[dict[str, Any]]:
        """``read/fingerprint_edges``: every relationship not of ``exclude_types``, by its ends' anchors."""
        excluded = set(exclude_types)
        return [
            {
                "head": self._fingerprint_id(self._nodes[e.head]),
                "type": e.type,
                "tail": self._fingerprint_id(self._nodes[e.tail]),
                "props": _copy(e.props),
            }
            for e in self._edges.values()
            if e.type not in excluded
        ]

    # -- the graph underneath ------------------------------------------------------------------
    def _token(self, label: str) -> int:
        return self._label_tokens.setdefault(label, len(self._label_tokens))

    def _labels(self, node: _Node) -> list[str]:
        return sorted(node.labels, key=self._token)

    def _add_label(self, node: _Node, label: str) -> None:
        self._token(label)
        node.labels.add(label)

    def _find(self, label: str, value: Any) -> _Node | None:
        """``MATCH (n:label {anchor: value})``; a null value matches nothing."""
        if value is None:
            return None
        node_id = self._anchor.get((label, _anchor_value(value)))
        return None if node_id is None else self._nodes[node_id]

    def _merge_node(self, label: str, value: Any) -> _Node:
        return self._merge_node_created(label, value)[0]

    def _merge_node_created(self, label: str, value: Any) -> tuple[_Node, bool]:
        """``MERGE (n:label {anchor: value})``, and whether it created the node (``ON CREATE``)."""
        node = self._find(label, value)
        if node is not None:
            return node, False
        self._token(label)
        node = _Node(self._new_id(), {label}, {_ANCHORS[label]: value})
        self._nodes[node.id] = node
        self._anchor[(label, _anchor_value(value))] = node.id
        return node, True

    def _set_node_prop(self, node: _Node, key: str, value: Any) -> None:
        """``SET n.key = value`` that keeps the anchor index right when an anchor property changes."""
        for label in node.labels & _ANCHORS.keys():
            if _ANCHORS[label] != key:
                continue
            if value is None:
                raise GraphStoreError(
                    f"in-memory write failed: {label}.{key} cannot be removed (it is the node's anchor)"
                )
            holder = self._anchor.get((label, _anchor_value(value)))
            if holder is not None and holder != node.id:
                raise GraphStoreError(
                    f"in-memory write failed: a {label} with {key} {value!r} already exists (uniqueness constraint)"
                )
            self._anchor.pop((label, _anchor_value(node.props[key])), None)
            self._anchor[(label, _anchor_value(value))] = node.id
        _assign(node.props, key, value)

    def _merge_edge(self, head: _Node, type_: str, tail: _Node, match: dict[str, Any]) -> list[_Edge]:
        """``MERGE (head)-[r:type {match}]->(tail)``: every matching edge, or one new edge."""
        between = self._between[(head.id, type_, tail.id)]
        found = [
            self._edges[i]
            for i in between
            if all(_eq(self._edges[i].props.get(k), v) for k, v in match.items())
        ]
        if found:
            return found
        edge = _Edge(self._new_id(), head.id, type_, tail.id, dict(match))
        self._edges[edge.id] = edge
        between[edge.id] = None
        self._out[head.id][edge.id] = None
        self._in[tail.id][edge.id] = None
        return [edge]

    def _delete_edge(self, edge: _Edge) -> None:
        del self._edges[edge.id]
        self._between[(edge.head, edge.type, edge.tail)].pop(edge.id, None)
        self._out[edge.head].pop(edge.id, None)
        self._in[edge.tail].pop(edge.id, None)

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _nodes_with(self, label: str) -> Iterator[_Node]:
        return (n for n in self._nodes.values() if label in n.labels)

    def _is(self, node_id: int, *labels: str) -> bool:
        return bool(self._nodes[node_id].labels & set(labels))

    def _out_edges(self, node: _Node) -> Iterator[_Edge]:
        return (self._edges[i] for i in self._out.get(node.id, {}))

    def _in_edges(self, node: _Node) -> Iterator[_Edge]:
        return (self._edges[i] for i in self._in.get(node.id, {}))

    def _entity_edges(self, head: _Node) -> Iterator[tuple[_Edge, _Node]]:
        """``(head)-[r]->(e:Entity)``: every outgoing edge to an entity, whatever its type."""
        for edge in self._out_edges(head):
            tail = self._nodes[edge.tail]
            if "Entity" in tail.labels:
                yield edge, tail

    def _interacted(self) -> Iterator[tuple[_Node, _Edge, _Node]]:
        """``(u:User)-[r:INTERACTED]->(i:Item)``."""
        for edge in self._edges.values():
            user, item = self._nodes[edge.head], self._nodes[edge.tail]
            if edge.type == "INTERACTED" and "User" in user.labels and "Item" in item.labels:
                yield user, edge, item

    def _fingerprint_id(self, node: _Node) -> str:
        for label, _ in _ANCHOR_PREFIXES:
            if label in node.labels:
                return _anchor_text(node, label)
        return f"node:memory:{node.id}"  # elementId() in Neo4j: never stable, so never in a fingerprint that matters


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
