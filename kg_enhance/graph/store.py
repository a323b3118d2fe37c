"""The graph store: a small Protocol and its Neo4j implementation.

Writes are batched ``UNWIND $rows`` statements from ``cypher/``, run in managed
transactions (``execute_write``), which the driver retries on transient errors.
Constraints are created before any write.

Rows are taken from iterables one batch (``neo4j.batch_size``) at a time, so a caller
that streams them (the load stage builds interaction rows from the frame's columns as
it goes) never holds more than a batch of row dicts. Reads that can be as large as
the graph (the fingerprint's rows, the entity keys of the duplicate scan) are streamed
from the server with ``session.run`` and consumed record by record.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import neo4j
from neo4j.exceptions import AuthError, Neo4jError, ServiceUnavailable, SessionExpired

from kg_enhance.config import defaults as D
from kg_enhance.config.models import JobSpec, Neo4jConfig
from kg_enhance.errors import GraphStoreError, ServiceUnavailableError
from kg_enhance.graph.cypher import CypherLibrary
from kg_enhance.graph.resolve import Resolution
from kg_enhance.names import entity_key
from kg_enhance.ontology.models import Ontology
from kg_enhance.types import Fact, QuarantineRecord

logger = logging.getLogger(__name__)

#: the namespace of a store made without one (admin tools, tests)
DEFAULT_NAMESPACE = "default"
#: a ``(head, relation, tail)`` triple of node labels (:func:`kg_enhance.names.node_label`)
Triple = tuple[str, str, str]
#: ``(user_id, item_id, rating, ts)`` of one INTERACTED edge
InteractionRow = tuple[str, str, float | None, int | None]
#: relationship types that are never facts (``write/delete_stale_facts`` skips them)
NON_FACT_TYPES = frozenset({"INTERACTED", "ALIAS_OF", "RECOMMENDED"})


class GraphStore(Protocol):
    """What the pipeline needs from a graph database: one namespace's view of it.

    :class:`Neo4jStore` is the real one; :class:`kg_enhance.graph.memory.InMemoryGraphStore`
    implements the same contract in memory (the test suite runs the same cases against both).
    """

    namespace: str
    entity_namespace: str

    @property
    def owns_entities(self) -> bool: ...

    # -- schema and writes
    def ensure_schema(self, ontology: Ontology) -> None: ...
    def write_items(self, rows: Iterable[dict[str, Any]], *, item_label: str) -> int: ...
    def write_users(self, user_ids: Iterable[str]) -> int: ...
    def write_interactions(self, rows: Iterable[dict[str, Any]]) -> int: ...
    def write_facts(
        self,
        facts: Iterable[Fact],
        ontology: Ontology,
        *,
        job: str,
        run_id: str,
        resolutions: Mapping[tuple[str, str], Resolution] | None = None,
    ) -> int: ...
    def seed_vocabulary(self, ontology: Ontology, *, run_id: str) -> int: ...
    def write_aliases(self, rows: Sequence[dict[str, Any]], *, run_id: str) -> int: ...
    def delete_stale_facts(self, *, job: str, run_id: str, sources: Sequence[str]) -> int: ...
    def mark_quarantined(self, records: Sequence[QuarantineRecord], *, run_id: str) -> int: ...
    # -- incremental refresh (kg_enhance.extract.delta)
    def delete_subject_facts(
        self, head_kind: str, ids: Sequence[str], *, job: str, run_id: str, sources: Sequence[str]
    ) -> tuple[int, set[str]]: ...
    def retire_items(self, ids: Sequence[str]) -> tuple[int, set[str], set[str]]: ...
    def delete_interactions(self, rows: Iterable[dict[str, Any]]) -> int: ...
    def delete_orphans(self, entity_keys: Collection[str], user_ids: Collection[str]) -> tuple[int, int]: ...
    def write_embeddings(
        self, kind: str, rows: Sequence[dict[str, Any]], *, model: str, run_id: str
    ) -> int: ...
    def stamp_embeddings(self, kind: str, ids: Sequence[str], *, previous_run: str, run_id: str) -> int: ...
    def finish_embeddings(self, *, dimensions: int, run_id: str) -> list[str]: ...
    def write_text_embeddings(
        self, kind: str, rows: Iterable[dict[str, Any]], *, model: str, run_id: str
    ) -> int: ...
    def finish_text_embeddings(self, *, dimensions: dict[str, int], run_id: str) -> list[str]: ...
    def text_neighbours(self, item_id: str, *, k: int = 10) -> list[dict[str, Any]]: ...
    def write_recommendations(self, rows: Sequence[dict[str, Any]], *, job: str, run_id: str) -> int: ...
    # -- entity resolution (kg_enhance.graph.resolve.ResolutionBackend)
    def existing_entities(self, keys: Sequence[str]) -> dict[str, str]: ...
    def entity_types_present(self, types: Sequence[str]) -> set[str]: ...
    def alias_targets(self, keys: Sequence[str]) -> dict[str, tuple[str, str]]: ...
    def fulltext_candidates(
        self, rows: Sequence[dict[str, str]], *, limit: int
    ) -> dict[str, list[tuple[str, str]]]: ...
    def explain_key(self, key: str) -> dict[str, Any]: ...
    # -- reads
    def totals(self) -> dict[str, int]: ...
    def counts_by_label(self) -> dict[str, int]: ...
    def counts_by_type(self) -> dict[str, int]: ...
    def item_fact_triples(self, sources: list[str] | None = None) -> list[Triple]: ...
    def interaction_triples(self, min_rating: float | None = None) -> list[Triple]: ...
    def user_fact_triples(self, sources: list[str] | None = None) -> list[Triple]: ...
    def interactions(self) -> list[InteractionRow]: ...
    def entity_degrees(self) -> list[dict[str, Any]]: ...
    def item_fact_counts(self) -> list[dict[str, Any]]: ...
    def entity_keys(self) -> list[dict[str, Any]]: ...
    def stream_entity_keys(self) -> Iterator[dict[str, Any]]: ...
    def entity_degree_histogram(self) -> list[dict[str, Any]]: ...
    def item_fact_histogram(self) -> list[dict[str, Any]]: ...
    def rdf_facts(self, sources: list[str] | None = None) -> list[dict[str, Any]]: ...
    def fingerprint_nodes(self) -> list[dict[str, Any]]: ...
    def fingerprint_edges(self, exclude_types: Sequence[str]) -> list[dict[str, Any]]: ...
    def stream_fingerprint_nodes(self, exclude_properties: Collection[str]) -> Iterator[dict[str, Any]]: ...
    def stream_fingerprint_edges(
        self, exclude_types: Sequence[str], exclude_properties: Collection[str]
    ) -> Iterator[dict[str, Any]]: ...
    # -- one run at a time per namespace (kg_enhance.graph.lock)
    def try_lock(self, owner: dict[str, Any]) -> tuple[bool, dict[str, Any]]: ...
    def take_over_lock(self, owner: dict[str, Any], *, stale_run_id: str) -> bool: ...
    def refresh_lock(self, run_id: str) -> bool: ...
    def release_lock(self, run_id: str) -> None: ...
    def clear_namespace(self) -> int: ...
    def close(self) -> None: ...


def _batches(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Lists of at most ``size`` items, taken from ``rows`` as they come (a generator is not materialised)."""
    it = iter(rows)
    while batch := list(itertools.islice(it, size)):
        yield batch


def fact_edge_row(fact: Fact, key: str) -> dict[str, Any]:
    """The row ``write/merge_item_facts`` / ``merge_user_facts`` take for one fact (both stores use it).

    ``props`` holds the provenance that is known; an absent key is unknown, never null.
    """
    provenance = {
        "source": fact.source,
        "source_field": fact.source_field,
        "model": fact.model,
        "prompt_hash": fact.prompt_hash,
        "object_name": fact.object,
        "evidence": fact.evidence,
        "confidence": fact.confidence,
    }
    return {
        "head_id": fact.head_id,
        "key": key,
        "source": fact.source,
        "props": {k: v for k, v in provenance.items() if v is not None},
    }


def fact_target(
    fact: Fact, ontology: Ontology, resolutions: Mapping[tuple[str, str], Resolution] | None
) -> tuple[str, str, str]:
    """``(entity key, entity name if new, relationship type)`` of a fact, after the checks both stores make.

    Raises :class:`GraphStoreError` for a head that is neither an Item nor a User and
    ``KeyError`` for a relation or type the ontology lacks, before anything is written.
    """
    if fact.head_kind not in ("Item", "User"):
        raise GraphStoreError(
            f"fact about {fact.head_id!r} has head kind {fact.head_kind!r}; only Item and User heads are stored"
        )
    rel_type = ontology.check_relation(fact.relation)
    ontology.check_label(fact.object_type)
    res = resolutions.get((fact.object_type, fact.object)) if resolutions else None
    if res is not None:
        return res.canonical_key, res.canonical_name, rel_type
    return entity_key(fact.object_type, fact.object), fact.object, rel_type


def neo4j_password(config: Neo4jConfig) -> str:
    """The password from the environment; the documented local default only for the local server."""
    value = os.environ.get(config.password_env)
    if value:
        return value
    return D.NEO4J_LOCAL_PASSWORD


class Neo4jStore:
    """:class:`GraphStore` over the official ``neo4j`` driver, bound to one namespace.

    Every statement gets ``$ns`` (the job's namespace: its items, users, interactions,
    facts, recommendations, vectors) and ``$ens`` (the namespace of the entities its
    facts point to; the same unless the job declares shared entities), so jobs sharing
    one database never read or change each other's data.
    """

    def __init__(
        self,
        config: Neo4jConfig,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        entity_namespace: str | None = None,
        cypher: CypherLibrary | None = None,
    ) -> None:
        self.config = config
        self.namespace = namespace
        self.entity_namespace = entity_namespace or namespace
        self.cypher = cypher or CypherLibrary()
        self.batch_size = config.batch_size
        try:
            self.driver = neo4j.GraphDatabase.driver(
                config.uri,
                auth=(config.user, neo4j_password(config)),
                connection_timeout=10.0,
                max_transaction_retry_time=config.retry_s,
                notifications_min_severity="OFF",  # queries are reviewed files; no per-query chatter
            )
            self.driver.verify_connectivity()
        except AuthError as e:
            raise ServiceUnavailableError(
                f"neo4j at {config.uri}: authentication failed for user {config.user!r}; "
                f"set {config.password_env} to the right password"
            ) from e
        except (ServiceUnavailable, OSError, ValueError) as e:
            raise ServiceUnavailableError(
                f"neo4j at {config.uri}: unreachable ({type(e).__name__}); "
                "start the local server with `kg-enhance neo4j start` or fix neo4j.uri"
            ) from e
        try:
            self.driver.execute_query(self.cypher.get("admin/ping"), database_=config.database)
        except Neo4jError as e:
            self.driver.close()
            if "DatabaseNotFound" in (e.code or ""):
                raise GraphStoreError(
                    f"neo4j at {config.uri}: database {config.database!r} does not exist; Neo4j Community has one "
                    "user database ('neo4j'): leave neo4j.database unset and keep jobs apart with graph.namespace"
                ) from e
            raise GraphStoreError(f"neo4j at {config.uri}: {e.code}: {e.message}") from e

    @classmethod
    def for_job(cls, job: JobSpec) -> Neo4jStore:
        """The store of a job: its Neo4j settings and namespaces."""
        return cls(job.neo4j, namespace=job.namespace, entity_namespace=job.entity_namespace)

    @property
    def owns_entities(self) -> bool:
        """Whether the entity namespace is the job's own (then entity vectors are written back)."""
        return self.entity_namespace == self.namespace

    def _scope(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ns": self.namespace, "ens": self.entity_namespace, **params}

    # -- plumbing ------------------------------------------------------------------------------
    def close(self) -> None:
        self.driver.close()

    def __enter__(self) -> Neo4jStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(
        self, query: str, rows: Iterable[dict[str, Any]], *, counter: str | None = None, **params: Any
    ) -> int:
        """Run ``query`` over ``rows`` in batches of ``batch_size``, one managed transaction each.

        ``rows`` is consumed a batch at a time, so a generator is never held whole. Returns the rows
        sent, or with ``counter`` the sum of that update counter (e.g. ``properties_set``).
        """
        scoped = self._scope(params)

        def work(tx: Any, batch: list[dict[str, Any]]) -> int:
            counters = tx.run(query, rows=batch, **scoped).consume().counters
            return int(getattr(counters, counter)) if counter is not None else len(batch)

        written = 0
        try:
            with self.driver.session(database=self.config.database) as session:
                for batch in _batches(rows, self.batch_size):
                    written += session.execute_write(work, batch)
        except (ServiceUnavailable, SessionExpired) as e:
            raise ServiceUnavailableError(
                f"neo4j at {self.config.uri}: connection lost after {written} rows of this write; "
                "rows written so far are kept (MERGE makes a re-run safe): restart Neo4j and run again"
            ) from e
        except Neo4jError as e:
            raise GraphStoreError(f"neo4j write failed ({e.code}): {e.message}; see the Neo4j log") from e
        return written

    def _loop_until_zero(self, query: str, **params: Any) -> int:
        """Run a ``... LIMIT n DELETE ... RETURN count(*) AS deleted`` statement until it deletes nothing."""
        return self._delete_loop(query, self._scope(params))

    def _delete_loop(self, query: str, parameters: dict[str, Any]) -> int:
        """:meth:`_loop_until_zero` with the parameters as given; one transaction per round, so what
        earlier rounds deleted stays deleted when a later one fails (the caller's re-run finishes it)."""
        total = 0
        try:
            while True:
                records, _, _ = self.driver.execute_query(
                    query, parameters_=parameters, database_=self.config.database
                )
                deleted = int(records[0]["deleted"])
                total += deleted
                if deleted == 0:
                    return total
        except (ServiceUnavailable, SessionExpired) as e:
            raise ServiceUnavailableError(
                f"neo4j at {self.config.uri}: connection lost after deleting {total} in batches; "
                "restart Neo4j and run the same command again to finish"
            ) from e
        except Neo4jError as e:
            raise GraphStoreError(f"neo4j delete failed ({e.code}): {e.message}; see the Neo4j log") from e

    def _read(self, query: str, **params: Any) -> list[dict[str, Any]]:
        return [r.data() for r in self._records(query, **params)]

    def _records(self, query: str, **params: Any) -> list[neo4j.Record]:
        """The records of a read as the driver decoded them (no ``Record.data()`` conversion)."""
        try:
            records, _, _ = self.driver.execute_query(
                query, parameters_=self._scope(params), database_=self.config.database, routing_="r"
            )
        except (ServiceUnavailable, SessionExpired) as e:
            raise ServiceUnavailableError(
                f"neo4j at {self.config.uri}: connection lost during a read; restart Neo4j and run again"
            ) from e
        except Neo4jError as e:
            raise GraphStoreError(f"neo4j read failed ({e.code}): {e.message}") from e
        return list(records)

    def _stream(self, query: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Rows of a read, record by record as the server sends them (``fetch_size`` at a time).

        For reads as large as the graph: ``execute_query`` would hold every record at once.
        Not retried: a lost connection is a one-line error, and the caller re-runs. Rows are the
        records' values as decoded (strings, numbers, lists, maps): the streamed queries return no
        nodes or relationships, so the driver's recursive ``Record.data()`` conversion (40% of a
        fingerprint's time, measured) is skipped.
        """
        try:
            with self.driver.session(
                database=self.config.database, default_access_mode=neo4j.READ_ACCESS, fetch_size=2000
            ) as session:
                result = session.run(query, self._scope(params))
                keys = result.keys()
                for record in result:
                    yield dict(zip(keys, record, strict=True))
        except (ServiceUnavailable, SessionExpired) as e:
            raise ServiceUnavailableError(
                f"neo4j at {self.config.uri}: connection lost during a read; restart Neo4j and run again"
            ) from e
        except Neo4jError as e:
            raise GraphStoreError(f"neo4j read failed ({e.code}): {e.message}") from e

    def run_statement(self, name: str, **params: Any) -> list[dict[str, Any]]:
        """Run a saved statement (e.g. one of ``cypher/browser/``) and return its rows."""
        return self._read(self.cypher.get(name), **params)

    def query(self, text: str, **params: Any) -> list[dict[str, Any]]:
        """An ad-hoc read-only query (tests, notebooks); the pipeline itself only runs ``cypher/`` files."""
        return self._read(text, **params)

    # -- schema --------------------------------------------------------------------------------
    def ensure_schema(self, ontology: Ontology) -> None:
        statements = [
            *(
                self.cypher.get(f"schema/legacy/drop_{n}_unique")
                for n in ("item_id", "user_id", "entity_key", "alias_key")
            ),
            self.cypher.get("schema/lock_unique"),
            self.cypher.get("schema/item_id_unique"),
            self.cypher.get("schema/user_id_unique"),
            self.cypher.get("schema/entity_key_unique"),
            self.cypher.get("schema/alias_key_unique"),
            self.cypher.get("schema/entity_name_fulltext"),
        ]
        for label in ontology.entity_types:
            statements.append(
                self.cypher.get("schema/entity_type_name_index", label=ontology.check_label(label))
            )
        for relation in ontology.relations:
            statements.append(
                self.cypher.get("schema/fact_run_index", rel_type=ontology.check_relation(relation))
            )
        for statement in statements:
            self.driver.execute_query(statement, database_=self.config.database)

    def node_count(self, limit: int = 1) -> int:
        """How many nodes the whole database holds (every namespace, locks included), counted up to ``limit``."""
        rows = self._read(self.cypher.get("admin/any_nodes"), limit=limit)
        return int(rows[0]["nodes"])

    def await_indexes(self) -> None:
        """Wait (up to 60 s) until every index is online, e.g. after a bulk import."""
        self._await_indexes()

    # -- writes --------------------------------------------------------------------------------
    def write_items(self, rows: Iterable[dict[str, Any]], *, item_label: str) -> int:
        return self._write(self.cypher.get("write/merge_items", item_label=item_label), rows)

    def write_users(self, user_ids: Iterable[str]) -> int:
        rows = ({"user_id": u} for u in sorted(set(user_ids)))
        return self._write(self.cypher.get("write/merge_users"), rows)

    def write_interactions(self, rows: Iterable[dict[str, Any]]) -> int:
        return self._write(self.cypher.get("write/merge_interactions"), rows)

    def seed_vocabulary(self, ontology: Ontology, *, run_id: str) -> int:
        """Closed vocabularies of the ontology (e.g. the genre list) as entities."""
        written = 0
        for type_name, ent in sorted(ontology.entity_types.items()):
            if not ent.vocabulary:
                continue
            rows = [{"key": entity_key(type_name, v), "name": v, "type": type_name} for v in ent.vocabulary]
            query = self.cypher.get("write/seed_vocabulary", entity_label=ontology.check_label(type_name))
            written += self._write(query, rows, run_id=run_id)
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
        """Write fact edges (MERGE); with ``resolutions`` each object goes to its resolved canonical entity.

        Streams: facts are taken in order and written in batches per relationship type;
        an entity row is queued when its key is first seen (so the first name wins) and
        the queued entities are always written before any edge batch that may point at
        them. Only the keys seen so far and one batch per type are held.
        """
        entity_query: dict[str, str] = {}
        edge_query: dict[tuple[str, str], str] = {}
        entities: dict[str, list[dict[str, str]]] = defaultdict(list)
        edges: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        seen: set[str] = set()
        pending = 0
        written = 0

        def flush_entities() -> None:
            nonlocal pending
            for type_name, rows in sorted(entities.items()):
                if rows:
                    self._write(entity_query[type_name], rows, run_id=run_id)
            entities.clear()
            pending = 0

        def flush_edges(group: tuple[str, str]) -> None:
            nonlocal written
            written += self._write(edge_query[group], edges.pop(group), job=job, run_id=run_id)

        for f in facts:
            key, name, rel_type = fact_target(f, ontology, resolutions)
            if key not in seen:
                seen.add(key)
                if f.object_type not in entity_query:
                    entity_query[f.object_type] = self.cypher.get(
                        "write/merge_entities", entity_label=f.object_type
                    )
                entities[f.object_type].append({"key": key, "name": name, "type": f.object_type})
                pending += 1
            group = (f.head_kind, rel_type)
            if group not in edge_query:
                edge_query[group] = self.cypher.get(
                    "write/merge_item_facts" if f.head_kind == "Item" else "write/merge_user_facts",
                    rel_type=rel_type,
                )
            edges[group].append(fact_edge_row(f, key))
            if len(edges[group]) >= self.batch_size:
                flush_entities()
                flush_edges(group)
            elif pending >= self.batch_size:
                flush_entities()
        flush_entities()
        for group in sorted(edges):
            flush_edges(group)
        return written

    def delete_stale_facts(self, *, job: str, run_id: str, sources: Sequence[str]) -> int:
        """Drop ``job``'s fact edges from ``sources`` that run ``run_id`` did not (re)write.

        One statement per relationship type in use (``read/relationship_types``; never
        ``INTERACTED``, ``ALIAS_OF`` or ``RECOMMENDED``): through the type's online
        ``(job, run_id)`` index (``write/delete_stale_facts_indexed``, see there for the
        plan) where ``ensure_schema`` made one, by a scan of the type's edges otherwise
        (a relation the ontology no longer has).
        """
        indexed = {r["type"] for r in self._read(self.cypher.get("schema/fact_run_indexes_online"))}
        types = sorted(r["type"] for r in self._read(self.cypher.get("read/relationship_types")))
        total = 0
        for rel_type in types:
            if rel_type in NON_FACT_TYPES:
                continue
            name = "write/delete_stale_facts_indexed" if rel_type in indexed else "write/delete_stale_facts"
            try:
                query = self.cypher.get(name, rel_type=rel_type)
            except ValueError:  # a type no ontology could declare (not a plain name): never a fact of ours
                continue
            total += self._loop_until_zero(query, job=job, run_id=run_id, sources=list(sources))
        return total

    def write_aliases(self, rows: Sequence[dict[str, Any]], *, run_id: str) -> int:
        return self._write(self.cypher.get("resolve/write_aliases"), rows, run_id=run_id)

    # -- incremental refresh ---------------------------------------------------------------------
    def _write_each(
        self, query: str, values: Iterable[Any], *, name: str, **params: Any
    ) -> list[dict[str, Any]]:
        """Run ``query`` once per batch of ``values`` (bound to ``$name``) in a managed write
        transaction each; the rows it returns, over all batches."""
        scoped = self._scope(params)
        out: list[dict[str, Any]] = []

        def work(tx: Any, batch: list[Any]) -> list[dict[str, Any]]:
            return [r.data() for r in tx.run(query, {**scoped, name: batch})]

        try:
            with self.driver.session(database=self.config.database) as session:
                for batch in _batches(values, self.batch_size):
                    out.extend(session.execute_write(work, batch))
        except (ServiceUnavailable, SessionExpired) as e:
            raise ServiceUnavailableError(
                f"neo4j at {self.config.uri}: connection lost during an incremental refresh; batches done so far "
                "are kept: restart Neo4j and run again (the refresh state is committed only after the load)"
            ) from e
        except Neo4jError as e:
            raise GraphStoreError(f"neo4j write failed ({e.code}): {e.message}; see the Neo4j log") from e
        return out

    def delete_subject_facts(
        self, head_kind: str, ids: Sequence[str], *, job: str, run_id: str, sources: Sequence[str]
    ) -> tuple[int, set[str]]:
        """Drop ``job``'s fact edges from ``sources`` of these items (``head_kind="Item"``) or users that
        run ``run_id`` did not write (``write/delete_item_facts``); the count and the entity keys they
        pointed at."""
        name = {"Item": "write/delete_item_facts", "User": "write/delete_user_facts"}[head_kind]
        rows = self._write_each(
            self.cypher.get(name),
            ids,
            name="ids",
            job=job,
            run_id=run_id,
            sources=list(sources),
            non_fact=sorted(NON_FACT_TYPES),
        )
        return sum(int(r["deleted"]) for r in rows), {k for r in rows for k in r["keys"]}

    def retire_items(self, ids: Sequence[str]) -> tuple[int, set[str], set[str]]:
        """Delete these items with their edges (``write/retire_items``): how many, the entity keys their
        facts pointed at, the users who had interacted with them."""
        rows = self._write_each(self.cypher.get("write/retire_items"), ids, name="ids")
        return (
            sum(int(r["deleted"]) for r in rows),
            {k for r in rows for k in r["keys"]},
            {u for r in rows for u in r["users"]},
        )

    def delete_interactions(self, rows: Iterable[dict[str, Any]]) -> int:
        """Delete the INTERACTED edges of these ``user_id, item_id`` pairs (``write/delete_interactions``)."""
        return self._write(self.cypher.get("write/delete_interactions"), rows)

    def delete_orphans(self, entity_keys: Collection[str], user_ids: Collection[str]) -> tuple[int, int]:
        """Of these entities and users, delete those nothing points at any more
        (``write/delete_orphan_entities``, ``write/delete_orphan_users``)."""
        entities = self._write_each(
            self.cypher.get("write/delete_orphan_entities"),
            sorted(entity_keys),
            name="keys",
            own_entities=self.owns_entities,
        )
        users = self._write_each(self.cypher.get("write/delete_orphan_users"), sorted(user_ids), name="ids")
        return sum(int(r["deleted"]) for r in entities), sum(int(r["deleted"]) for r in users)

    # -- resolution (kg_enhance.graph.resolve.ResolutionBackend) --------------------------------
    def existing_entities(self, keys: Sequence[str]) -> dict[str, str]:
        query = self.cypher.get("resolve/existing_entities")
        out: dict[str, str] = {}
        for batch in _batches(keys, self.batch_size):
            out.update((r["key"], r["name"]) for r in self._read(query, keys=batch))
        return out

    def entity_types_present(self, types: Sequence[str]) -> set[str]:
        rows = self._read(self.cypher.get("resolve/entity_types_present"), types=list(types))
        return {r["type"] for r in rows if r["present"]}

    def alias_targets(self, keys: Sequence[str]) -> dict[str, tuple[str, str]]:
        query = self.cypher.get("resolve/alias_targets")
        out: dict[str, tuple[str, str]] = {}
        for batch in _batches(keys, self.batch_size):
            out.update(
                (r["key"], (r["canonical_key"], r["canonical_name"])) for r in self._read(query, keys=batch)
            )
        return out

    def fulltext_candidates(
        self, rows: Sequence[dict[str, str]], *, limit: int
    ) -> dict[str, list[tuple[str, str]]]:
        self._await_indexes()
        out: dict[str, list[tuple[str, str]]] = defaultdict(list)
        query = self.cypher.get("resolve/fulltext_candidates")
        for batch in _batches(rows, self.batch_size):  # one statement per batch; one index lookup per row
            for r in self._read(query, rows=batch, limit=limit):
                out[r["key"]].append((r["candidate_key"], r["candidate_name"]))
        return dict(out)

    def explain_key(self, key: str) -> dict[str, Any]:
        rows = self._read(self.cypher.get("resolve/explain_name"), key=key)
        return rows[0] if rows else {}

    def _await_indexes(self) -> None:
        self.driver.execute_query(self.cypher.get("admin/await_indexes"), database_=self.config.database)

    def write_embeddings(self, kind: str, rows: Sequence[dict[str, Any]], *, model: str, run_id: str) -> int:
        """Set ``embedding`` on Item (``kind="item"``) or Entity (``kind="entity"``) nodes, in batches."""
        name = {"item": "write/set_item_embeddings", "entity": "write/set_entity_embeddings"}[kind]
        return self._write(self.cypher.get(name), rows, model=model, run_id=run_id)

    def stamp_embeddings(self, kind: str, ids: Sequence[str], *, previous_run: str, run_id: str) -> int:
        """Mark the vectors of ``ids`` (Item or Entity nodes) as this run's without sending them again: a
        fold-in carried them unchanged. Only nodes that still hold ``previous_run``'s vector are stamped;
        returns how many were (fewer than ``ids``: write the rest with :meth:`write_embeddings`)."""
        name = {"item": "write/stamp_item_embeddings", "entity": "write/stamp_entity_embeddings"}[kind]
        rows = ({"id": i} for i in ids)
        return self._write(
            self.cypher.get(name), rows, counter="properties_set", previous_run=previous_run, run_id=run_id
        )

    def finish_embeddings(self, *, dimensions: int, run_id: str) -> list[str]:
        """Drop this namespace's vectors of older runs and make sure the vector indexes exist.

        The indexes span every namespace. One whose dimension differs is recreated only
        when no other namespace has vectors in it; otherwise it is left alone and this
        namespace's vectors stay on the nodes unindexed. Returns the indexes that cover
        this namespace's vectors.
        """
        self._write(self.cypher.get("write/clear_stale_embeddings"), [{}], run_id=run_id)
        existing = {
            r["name"]: r["dimensions"] for r in self._read(self.cypher.get("schema/vector_index_names"))
        }
        indexed = [
            f"{kind}_embedding"
            for kind in ("item", "entity")
            if self._claim_vector_index(
                f"{kind}_embedding",
                dimensions,
                existing,
                other=("read/other_namespace_vectors", kind),
                drop=f"schema/drop_{kind}_vector_index",
                create=f"schema/{kind}_vector_index",
                what="vectors",
            )
        ]
        self._await_indexes()
        return indexed

    def _claim_vector_index(
        self,
        name: str,
        dimensions: int,
        existing: dict[str, Any],
        *,
        other: tuple[str, str],
        drop: str,
        create: str,
        what: str,
    ) -> bool:
        """Create vector index ``name`` for ``dimensions`` (dropping one of another size first); False,
        with a warning, when another namespace's vectors (statement ``other``) still use that size."""
        size = existing.get(name)
        if size is not None and int(size) != dimensions:
            statement, kind = other
            if self._read(self.cypher.get(statement), kind=kind)[0]["used"]:
                logger.warning(
                    "vector index %s has %s dimensions and holds other namespaces' %s; "
                    "namespace %r's %d-dimensional %s are stored but not indexed",
                    name,
                    size,
                    what,
                    self.namespace,
                    dimensions,
                    what,
                )
                return False
            self.driver.execute_query(self.cypher.get(drop), database_=self.config.database)
        self.driver.execute_query(
            self.cypher.get(create), dimensions=dimensions, database_=self.config.database
        )
        return True

    def write_text_embeddings(
        self, kind: str, rows: Iterable[dict[str, Any]], *, model: str, run_id: str
    ) -> int:
        """Set ``text_embedding`` on Item (``kind="item"``) or User (``kind="user"``) nodes of the namespace."""
        name = {"item": "write/set_item_text_embeddings", "user": "write/set_user_text_embeddings"}[kind]
        return self._write(self.cypher.get(name), rows, model=model, run_id=run_id)

    def finish_text_embeddings(self, *, dimensions: dict[str, int], run_id: str) -> list[str]:
        """Drop this namespace's text vectors of older runs and make sure the text vector indexes
        (``item_text_embedding``, ``user_text_embedding``) exist for the kinds in ``dimensions``.

        As :meth:`finish_embeddings`: an index of another dimension is recreated only when no
        other namespace has text vectors in it. Returns the indexes covering this namespace's vectors.
        """
        self._write(self.cypher.get("write/clear_stale_text_embeddings"), [{}], run_id=run_id)
        existing = {
            r["name"]: r["dimensions"] for r in self._read(self.cypher.get("schema/text_vector_index_names"))
        }
        indexed = [
            f"{kind}_text_embedding"
            for kind, dim in dimensions.items()
            if self._claim_vector_index(
                f"{kind}_text_embedding",
                dim,
                existing,
                other=("read/other_namespace_text_vectors", kind),
                drop=f"schema/drop_{kind}_text_vector_index",
                create=f"schema/{kind}_text_vector_index",
                what="text vectors",
            )
        ]
        self._await_indexes()
        return indexed

    def text_neighbours(self, item_id: str, *, k: int = 10) -> list[dict[str, Any]]:
        """The namespace's items nearest to ``item_id`` by text embedding (``item_id``, cosine ``score``)."""
        return self._read(
            self.cypher.get("read/text_neighbours"), item_id=item_id, k=k, candidates=max(200, 20 * k)
        )

    def write_recommendations(self, rows: Sequence[dict[str, Any]], *, job: str, run_id: str) -> int:
        """Write ``RECOMMENDED`` edges of this run (MERGE), then drop the job's edges from older runs."""
        written = self._write(self.cypher.get("write/merge_recommendations"), rows, job=job, run_id=run_id)
        self._loop_until_zero(self.cypher.get("write/delete_stale_recommendations"), job=job, run_id=run_id)
        return written

    def mark_quarantined(self, records: Sequence[QuarantineRecord], *, run_id: str) -> int:
        self._write(self.cypher.get("write/clear_quarantine_flags"), [{}])
        rows = [{"item_id": r.item_id, "errors": r.errors[:5]} for r in records]
        return self._write(self.cypher.get("write/mark_quarantined"), rows, run_id=run_id)

    # -- locks (kg_enhance.graph.lock.LockBackend) ------------------------------------------
    def try_lock(self, owner: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        try:
            self.driver.execute_query(self.cypher.get("schema/lock_unique"), database_=self.config.database)
            records, _, _ = self.driver.execute_query(
                self.cypher.get("admin/acquire_lock"),
                parameters_=self._scope({"owner": owner}),
                database_=self.config.database,
            )
        except (ServiceUnavailable, SessionExpired) as e:
            raise ServiceUnavailableError(
                f"neo4j at {self.config.uri}: connection lost while taking the lock of namespace "
                f"{self.namespace!r}; restart Neo4j and run again"
            ) from e
        except Neo4jError as e:
            raise GraphStoreError(f"neo4j: taking the namespace lock failed ({e.code}): {e.message}") from e
        return bool(records[0]["mine"]), dict(records[0]["holder"])

    def take_over_lock(self, owner: dict[str, Any], *, stale_run_id: str) -> bool:
        records, _, _ = self.driver.execute_query(
            self.cypher.get("admin/take_over_lock"),
            parameters_=self._scope({"owner": owner, "stale_run_id": stale_run_id}),
            database_=self.config.database,
        )
        return bool(records and records[0]["mine"])

    def refresh_lock(self, run_id: str) -> bool:
        records, _, _ = self.driver.execute_query(
            self.cypher.get("admin/refresh_lock"),
            parameters_=self._scope({"run_id": run_id}),
            database_=self.config.database,
        )
        return int(records[0]["held"]) > 0

    def release_lock(self, run_id: str) -> None:
        self.driver.execute_query(
            self.cypher.get("admin/release_lock"),
            parameters_=self._scope({"run_id": run_id}),
            database_=self.config.database,
        )

    def namespaces(self) -> list[dict[str, Any]]:
        """Every namespace in the database: ``namespace``, node counts (``items``, ``users``,
        ``entities``, ``aliases``) and the run lock's ``holder`` (None when unlocked). Scans every
        job's nodes: for operators, not the pipeline."""
        locks = {str(r["namespace"]): dict(r["holder"]) for r in self._read(self.cypher.get("admin/locks"))}
        counts = {
            str(r["ns"]): {str(kind): int(n) for kind, n in r["counts"]}
            for r in self._read(self.cypher.get("admin/namespaces"))
        }
        # a lock on a namespace with no nodes (a first run in progress, or a drop) is listed too
        return [
            {
                "namespace": ns,
                **{k: counts.get(ns, {}).get(k, 0) for k in ("items", "users", "entities", "aliases")},
                "holder": locks.get(ns),
            }
            for ns in sorted(counts.keys() | locks.keys())
        ]

    def namespaces_using_entities(self) -> list[str]:
        """Other namespaces (at most 20) whose items or users point at this namespace's own entities,
        i.e. jobs whose ``graph.entity_namespace`` is this namespace."""
        return [str(r["ns"]) for r in self._read(self.cypher.get("admin/namespaces_using_entities"))]

    def clear_namespace(self, *, batch: int = 10_000) -> int:
        """Delete this namespace's nodes (items, users, its own entities and aliases) and their edges.

        Relationships go first, ``batch`` per transaction, then the nodes: every transaction stays
        bounded, however many relationships a node has. Both find the nodes by index seeks on the
        ``(ns, anchor)`` constraints, so the cost follows this namespace, not the database; a final
        sweep (one label scan) removes nodes of the namespace without their anchor property, which
        only a hand-written statement makes. Returns the nodes deleted.
        """
        scope = self._scope({"limit": batch})
        self._delete_in_batches("admin/delete_namespace_relationships_batch", scope)
        deleted = self._delete_in_batches("admin/delete_namespace_batch", scope)
        return deleted + self._delete_in_batches("admin/delete_namespace_sweep_batch", scope)

    def clear(self, *, batch: int = 10_000) -> int:
        """Delete every node and relationship in the database (every namespace), ``batch`` per
        transaction, relationships first (see :meth:`clear_namespace`). Returns the nodes deleted."""
        self._delete_in_batches("admin/delete_all_relationships_batch", {"limit": batch})
        return self._delete_in_batches("admin/delete_all_batch", {"limit": batch})

    def _delete_in_batches(self, name: str, parameters: dict[str, Any]) -> int:
        return self._delete_loop(self.cypher.get(name), parameters)

    # -- reads ---------------------------------------------------------------------------------
    def totals(self) -> dict[str, int]:
        rows = self._read(self.cypher.get("read/count_totals"))
        return {k: int(v) for k, v in rows[0].items()}

    def counts_by_label(self) -> dict[str, int]:
        return {r["label"]: int(r["count"]) for r in self._read(self.cypher.get("read/count_nodes_by_label"))}

    def counts_by_type(self) -> dict[str, int]:
        return {r["type"]: int(r["count"]) for r in self._read(self.cypher.get("read/count_edges_by_type"))}

    def _grouped_triples(self, name: str, **params: Any) -> list[Triple]:
        """Sorted ``(head, relation, tail)`` triples of a read that returns one row per head with its
        ``[relation, tail]`` pairs (grouped in Neo4j: a fifth of the per-record work of a row per triple)."""
        out: list[Triple] = []
        for row in self._stream(self.cypher.get(name), **params):
            head = row["head"]
            out.extend((head, relation, tail) for relation, tail in row["pairs"])
        out.sort()
        return out

    def item_fact_triples(self, sources: list[str] | None = None) -> list[Triple]:
        return self._grouped_triples("read/item_fact_triples", sources=sources)

    def user_fact_triples(self, sources: list[str] | None = None) -> list[Triple]:
        return self._grouped_triples("read/user_fact_triples", sources=sources)

    def interaction_triples(self, min_rating: float | None = None) -> list[Triple]:
        return self._grouped_triples("read/interaction_triples", min_rating=min_rating)

    def interactions(self) -> list[InteractionRow]:
        rows = self._read(self.cypher.get("read/interactions"))
        return [
            (
                str(r["user_id"]),
                str(r["item_id"]),
                None if r["rating"] is None else float(r["rating"]),
                None if r["ts"] is None else int(r["ts"]),
            )
            for r in rows
        ]

    def entity_degrees(self) -> list[dict[str, Any]]:
        return self._read(self.cypher.get("read/entity_degrees"))

    def item_fact_counts(self) -> list[dict[str, Any]]:
        return self._read(self.cypher.get("read/item_fact_counts"))

    def entity_keys(self) -> list[dict[str, Any]]:
        return self._read(self.cypher.get("read/entity_keys"))

    def stream_entity_keys(self) -> Iterator[dict[str, Any]]:
        """Key, type and name of every entity of the entity namespace, streamed, in no particular order."""
        return self._stream(self.cypher.get("read/entity_keys_unordered"))

    def entity_degree_histogram(self) -> list[dict[str, Any]]:
        """``{type, items, with_users, entities}``: how many entities of a type have ``items`` distinct items
        of the namespace pointing at them (and whether any of its users does); aggregated in Neo4j."""
        return self._read(self.cypher.get("read/entity_degree_histogram"))

    def item_fact_histogram(self) -> list[dict[str, Any]]:
        """``{entities, items}``: how many items of the namespace point at ``entities`` distinct entities."""
        return self._read(self.cypher.get("read/item_fact_histogram"))

    def rdf_facts(self, sources: list[str] | None = None) -> list[dict[str, Any]]:
        return self._read(self.cypher.get("read/rdf_facts"), sources=sources)

    def fingerprint_nodes(self) -> list[dict[str, Any]]:
        return self._read(self.cypher.get("read/fingerprint_nodes"), own_entities=self.owns_entities)

    def fingerprint_edges(self, exclude_types: Sequence[str]) -> list[dict[str, Any]]:
        return self._read(
            self.cypher.get("read/fingerprint_edges"),
            exclude_types=list(exclude_types),
            own_entities=self.owns_entities,
        )

    def stream_fingerprint_nodes(self, exclude_properties: Collection[str]) -> Iterator[dict[str, Any]]:
        """The rows of :meth:`fingerprint_nodes`, streamed, without ``exclude_properties`` (dropped in
        Neo4j: the vectors never travel)."""
        query = self.cypher.get("read/fingerprint_node_rows")
        for row in self._stream(query, own_entities=self.owns_entities, exclude=sorted(exclude_properties)):
            yield {"id": row["id"], "labels": row["labels"], "props": dict(row["props"])}

    def stream_fingerprint_edges(
        self, exclude_types: Sequence[str], exclude_properties: Collection[str]
    ) -> Iterator[dict[str, Any]]:
        """The rows of :meth:`fingerprint_edges`, streamed, without ``exclude_properties``."""
        query = self.cypher.get("read/fingerprint_edge_rows")
        for row in self._stream(
            query,
            own_entities=self.owns_entities,
            exclude_types=list(exclude_types),
            exclude=sorted(exclude_properties),
        ):
            head = row["head"]
            for edge_type, tail, props in row["edges"]:
                yield {"head": head, "type": edge_type, "tail": tail, "props": dict(props)}
