"""The GraphStore contract: every case runs against InMemoryGraphStore and the real Neo4j.

``InMemoryGraphStore`` lets stages be unit-tested without a server, which is only
safe while it answers exactly like ``Neo4jStore``. Each test below is parametrised
over both stores (the ``neo4j`` half needs the server: ``-m "not neo4j"`` runs the
memory half alone), and the last test loads the same data into both (two namespaces
in one database each) and compares their graph fingerprints and every node and edge.

Namespaces are part of the contract: several stores share one database (in memory
through a :class:`MemoryDatabase`, in Neo4j as several ``Neo4jStore`` on one server),
each sees and changes only its own namespace, and jobs that declare one entity
namespace share its entities. The run lock of ``kg_enhance.graph.lock`` is checked
against both stores too.

The data are a few rows of the bundled MovieLens demo (movies 1, 2 and 6; users 1,
5, 6 and 18; their gold facts) plus hand-written LLM facts; every expected value was
counted by hand from those rows.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kg_enhance.config.models import ResolutionConfig
from kg_enhance.errors import GraphStoreError, LockHeldError
from kg_enhance.graph.fingerprint import Fingerprint, graph_fingerprint
from kg_enhance.graph.lock import LockOwner, acquire
from kg_enhance.graph.memory import InMemoryGraphStore, MemoryDatabase
from kg_enhance.graph.resolve import EntityResolver, alias_rows, fulltext_query
from kg_enhance.graph.store import DEFAULT_NAMESPACE, GraphStore
from kg_enhance.ontology.models import load_ontology
from kg_enhance.types import Fact, QuarantineRecord

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "kg_enhance" / "datasets" / "movielens_demo"
ONTOLOGY = load_ontology(REPO / "schemas" / "movies.yaml")
MOVIES = ("1", "2", "6")
USERS = ("1", "5", "6", "18")
JOB = "test"
#: the namespace of the ``store`` fixture
NS = "contract"

#: strings that would break a query built by string formatting; they must be stored as data
HOSTILE = [
    'Robert "Bob" O\'Neil',
    "`Person`) DETACH DELETE n //",
    "x'}) MATCH (n) DETACH DELETE n //",
    "}) DETACH DELETE n //",
    "Zoë Saldaña",
]


# -- data ------------------------------------------------------------------------------------------
def movie_rows(title_suffix: str = "") -> list[dict[str, Any]]:
    with (DEMO / "movies.csv").open(encoding="utf-8") as f:
        return [
            {"item_id": r["movieId"], "props": {"title": r["title"] + title_suffix, "year": int(r["year"])}}
            for r in csv.DictReader(f)
            if r["movieId"] in MOVIES
        ]


def rating_rows() -> list[dict[str, Any]]:
    with (DEMO / "ratings.csv").open(encoding="utf-8") as f:
        return [
            {
                "user_id": r["userId"],
                "item_id": r["movieId"],
                "rating": float(r["rating"]),
                "ts": int(r["timestamp"]),
            }
            for r in csv.DictReader(f)
            if r["userId"] in USERS and r["movieId"] in MOVIES
        ]


def gold_facts() -> list[Fact]:
    with (DEMO / "gold_facts.tsv").open(encoding="utf-8") as f:
        return [
            Fact(
                head_id=r["item_id"],
                relation=r["relation"],
                object=r["object"],
                object_type=r["object_type"],
                source="hetrec",
                source_field="gold_facts.tsv",
            )
            for r in csv.DictReader(f, delimiter="\t")
            if r["item_id"] in MOVIES
        ]


LLM_FACTS = [
    # another spelling of a gold entity: same key, a second edge (other source), the gold name stays
    Fact(
        head_id="1",
        relation="DIRECTED_BY",
        object="john lasseter",
        object_type="Person",
        source="llm",
        model="m",
        prompt_hash="p",
        confidence=0.8,
    ),
    Fact(
        head_id="1",
        relation="HAS_THEME",
        object="Toys come to life",
        object_type="Theme",
        source="llm",
        source_field="title",
        evidence="Woody and Buzz are toys",
        model="m",
        prompt_hash="p",
        confidence=0.9,
    ),
    Fact(head_id="6", relation="HAS_THEME", object="heist", object_type="Theme", source="llm", model="m"),
    Fact(
        head_id="1", relation="PREFERS", object="Comedy", object_type="Genre", head_kind="User", source="llm"
    ),
    Fact(
        head_id="1", relation="PREFERS", object="Heist", object_type="Theme", head_kind="User", source="llm"
    ),
    # user 42 has no interactions: the user fact creates the user
    Fact(
        head_id="42", relation="PREFERS", object="heist", object_type="Theme", head_kind="User", source="llm"
    ),
]

#: 8 demo ratings, one unrated interaction, and one with an unknown item (skipped but counted)
EXTRA_INTERACTIONS: list[dict[str, Any]] = [
    {"user_id": "5", "item_id": "6", "rating": None, "ts": None},
    {"user_id": "1", "item_id": "999", "rating": 5.0, "ts": 1},
]


def load(store: GraphStore, run_id: str = "r1", *, title_suffix: str = "") -> dict[str, int]:
    """The standard load; returns what each write reported."""
    store.ensure_schema(ONTOLOGY)
    return {
        "vocabulary": store.seed_vocabulary(ONTOLOGY, run_id=run_id),
        "items": store.write_items(movie_rows(title_suffix), item_label=ONTOLOGY.item.label),
        "users": store.write_users([*USERS, "1", "18"]),
        "interactions": store.write_interactions(rating_rows() + EXTRA_INTERACTIONS),
        "gold": store.write_facts(gold_facts(), ONTOLOGY, job=JOB, run_id=run_id),
        "llm": store.write_facts(LLM_FACTS, ONTOLOGY, job=JOB, run_id=run_id),
    }


def node(store: GraphStore, anchor: str) -> dict[str, Any] | None:
    """One node's fingerprint row (id, labels sorted, props but ``ns``), or None.

    Its ``ns`` is checked: the store's namespace on items and users, its entity
    namespace on entities and aliases.
    """
    for row in store.fingerprint_nodes():
        if row["id"] == anchor:
            props = dict(row["props"])
            expected = store.namespace if anchor.startswith(("item:", "user:")) else store.entity_namespace
            assert props.pop("ns", None) == expected, (anchor, row["props"])
            return {"labels": sorted(row["labels"]), "props": props}
    return None


def edges(store: GraphStore, type_: str) -> list[tuple[str, str, dict[str, Any]]]:
    rows = [r for r in store.fingerprint_edges([]) if r["type"] == type_]
    return sorted(
        ((r["head"], r["tail"], r["props"]) for r in rows), key=lambda t: json.dumps(t, sort_keys=True)
    )


def vector_dimensions(store: GraphStore) -> dict[str, int]:
    if isinstance(store, InMemoryGraphStore):
        return store.vector_index_dimensions()
    rows = store.run_statement("schema/vector_index_names")  # type: ignore[attr-defined]
    return {r["name"]: int(r["dimensions"]) for r in rows}


def neo4j_store_for(config: Any, namespace: str, entity_namespace: str | None = None) -> GraphStore:
    from kg_enhance.graph.store import Neo4jStore  # the driver only where a test needs it

    return Neo4jStore(config, namespace=namespace, entity_namespace=entity_namespace)


@pytest.fixture(params=["memory", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def store(request: pytest.FixtureRequest) -> Iterator[GraphStore]:
    """A store of namespace ``NS`` on an empty database."""
    if request.param == "memory":
        with InMemoryGraphStore(namespace=NS) as memory:
            yield memory
    else:
        request.getfixturevalue("neo4j_store")  # empties the whole test database
        neo4j = neo4j_store_for(request.getfixturevalue("neo4j_config"), NS)
        yield neo4j
        neo4j.close()


#: ``(namespace, entity_namespace=None) -> store`` on the database of the ``store`` fixture
OpenStore = Callable[..., GraphStore]


@pytest.fixture
def open_store(store: GraphStore, request: pytest.FixtureRequest) -> Iterator[OpenStore]:
    """More stores on the ``store`` fixture's database, each bound to its own namespaces."""
    opened: list[GraphStore] = []

    def make(namespace: str, entity_namespace: str | None = None) -> GraphStore:
        if isinstance(store, InMemoryGraphStore):
            other: GraphStore = store.view(namespace, entity_namespace=entity_namespace)
        else:
            other = neo4j_store_for(request.getfixturevalue("neo4j_config"), namespace, entity_namespace)
        opened.append(other)
        return other

    yield make
    for other in opened:
        other.close()


# -- cases -----------------------------------------------------------------------------------------
def test_demo_rows_are_the_ones_counted_by_hand() -> None:
    assert [r["item_id"] for r in movie_rows()] == ["1", "2", "6"]
    assert len(rating_rows()) == 8
    assert len(gold_facts()) == 17


def test_load_counts(store: GraphStore) -> None:
    written = load(store)
    assert written == {"vocabulary": 19, "items": 3, "users": 4, "interactions": 10, "gold": 17, "llm": 6}
    # 3 items, 4 users + user 42, 19 genres + 3 directors + USA + 2 themes
    assert store.totals() == {"nodes": 33, "edges": 32, "items": 3, "items_with_facts": 3}
    assert store.counts_by_label() == {
        "Country": 1,
        "Entity": 25,
        "Genre": 19,
        "Item": 3,
        "Movie": 3,
        "Person": 3,
        "Theme": 2,
        "User": 5,
    }
    assert store.counts_by_type() == {
        "DIRECTED_BY": 4,
        "HAS_GENRE": 11,
        "HAS_THEME": 2,
        "INTERACTED": 9,
        "PREFERS": 3,
        "PRODUCED_IN": 3,
    }


def test_node_model(store: GraphStore) -> None:
    load(store)
    assert node(store, "item:1") == {
        "labels": ["Item", "Movie"],
        "props": {"item_id": "1", "title": "Toy Story (1995)", "year": 1995},
    }
    assert node(store, "user:42") == {"labels": ["User"], "props": {"user_id": "42"}}
    assert node(store, "entity:Person:john lasseter") == {
        "labels": ["Entity", "Person"],
        "props": {
            "key": "Person:john lasseter",
            "name": "John Lasseter",
            "type": "Person",
            "first_run": "r1",
        },
    }
    assert node(store, "entity:Genre:film noir") == {
        "labels": ["Entity", "Genre"],
        "props": {
            "key": "Genre:film noir",
            "name": "Film-Noir",
            "type": "Genre",
            "first_run": "r1",
            "vocabulary": True,
        },
    }
    directed = edges(store, "DIRECTED_BY")
    assert [(h, t, p) for h, t, p in directed if p["source"] == "llm"] == [
        (
            "item:1",
            "entity:Person:john lasseter",
            {
                "source": "llm",
                "model": "m",
                "prompt_hash": "p",
                "object_name": "john lasseter",
                "confidence": 0.8,
                "job": JOB,
                "run_id": "r1",
            },
        )
    ]
    assert ("item:2", "entity:Person:joe johnston") in {(h, t) for h, t, _ in directed}
    interacted = {(h, t): p for h, t, p in edges(store, "INTERACTED")}
    assert interacted[("user:18", "item:2")] == {"rating": 3.0, "ts": 1455617462}
    assert interacted[("user:5", "item:6")] == {}  # null rating and ts are not stored


def test_fact_triples(store: GraphStore) -> None:
    load(store)
    gold = [
        ("item:1", "DIRECTED_BY", "entity:Person:john lasseter"),
        ("item:1", "HAS_GENRE", "entity:Genre:adventure"),
        ("item:1", "HAS_GENRE", "entity:Genre:animation"),
        ("item:1", "HAS_GENRE", "entity:Genre:children"),
        ("item:1", "HAS_GENRE", "entity:Genre:comedy"),
        ("item:1", "HAS_GENRE", "entity:Genre:fantasy"),
        ("item:1", "PRODUCED_IN", "entity:Country:usa"),
        ("item:2", "DIRECTED_BY", "entity:Person:joe johnston"),
        ("item:2", "HAS_GENRE", "entity:Genre:adventure"),
        ("item:2", "HAS_GENRE", "entity:Genre:children"),
        ("item:2", "HAS_GENRE", "entity:Genre:fantasy"),
        ("item:2", "PRODUCED_IN", "entity:Country:usa"),
        ("item:6", "DIRECTED_BY", "entity:Person:michael mann"),
        ("item:6", "HAS_GENRE", "entity:Genre:action"),
        ("item:6", "HAS_GENRE", "entity:Genre:crime"),
        ("item:6", "HAS_GENRE", "entity:Genre:thriller"),
        ("item:6", "PRODUCED_IN", "entity:Country:usa"),
    ]
    assert store.item_fact_triples(["hetrec"]) == gold
    llm = [
        ("item:1", "DIRECTED_BY", "entity:Person:john lasseter"),
        ("item:1", "HAS_THEME", "entity:Theme:toys come to life"),
        ("item:6", "HAS_THEME", "entity:Theme:heist"),
    ]
    assert store.item_fact_triples(["llm"]) == llm
    every = store.item_fact_triples()
    assert len(every) == 19  # Lasseter's two edges are one distinct triple
    assert every == sorted(set(gold) | set(llm))
    assert store.item_fact_triples(["catalog"]) == []
    assert store.user_fact_triples() == [
        ("user:1", "PREFERS", "entity:Genre:comedy"),
        ("user:1", "PREFERS", "entity:Theme:heist"),
        ("user:42", "PREFERS", "entity:Theme:heist"),
    ]
    assert store.user_fact_triples(["hetrec"]) == []


def test_interactions(store: GraphStore) -> None:
    load(store)
    assert store.interaction_triples() == [
        ("user:1", "INTERACTED", "item:1"),
        ("user:1", "INTERACTED", "item:6"),
        ("user:18", "INTERACTED", "item:1"),
        ("user:18", "INTERACTED", "item:2"),
        ("user:18", "INTERACTED", "item:6"),
        ("user:5", "INTERACTED", "item:1"),
        ("user:5", "INTERACTED", "item:6"),
        ("user:6", "INTERACTED", "item:2"),
        ("user:6", "INTERACTED", "item:6"),
    ]
    assert store.interaction_triples(4.0) == [
        ("user:1", "INTERACTED", "item:1"),
        ("user:1", "INTERACTED", "item:6"),
        ("user:18", "INTERACTED", "item:6"),
        ("user:5", "INTERACTED", "item:1"),
        ("user:6", "INTERACTED", "item:2"),
        ("user:6", "INTERACTED", "item:6"),
    ]
    assert sorted(store.interactions(), key=str) == [
        ("1", "1", 4.0, 964982703),
        ("1", "6", 4.0, 964982224),
        ("18", "1", 3.5, 1455209816),
        ("18", "2", 3.0, 1455617462),
        ("18", "6", 4.0, 1460138360),
        ("5", "1", 4.0, 847434962),
        ("5", "6", None, None),
        ("6", "2", 4.0, 845553522),
        ("6", "6", 4.0, 845553757),
    ]
    # a re-write overwrites rating and ts of the one edge per pair; a null removes them
    store.write_interactions(
        [
            {"user_id": "18", "item_id": "2", "rating": 4.5, "ts": 7},
            {"user_id": "18", "item_id": "6", "rating": None, "ts": None},
        ]
    )
    assert store.counts_by_type()["INTERACTED"] == 9
    by_pair = {(u, i): (r, t) for u, i, r, t in store.interactions()}
    assert by_pair[("18", "2")] == (4.5, 7) and by_pair[("18", "6")] == (None, None)
    assert ("user:18", "INTERACTED", "item:2") in store.interaction_triples(4.0)


def test_degrees_counts_and_keys(store: GraphStore) -> None:
    load(store)
    degrees = {r["key"]: (r["type"], r["items"], r["users"]) for r in store.entity_degrees()}
    unused_genres = ["documentary", "drama", "film noir", "horror", "imax", "musical"]
    unused_genres += ["mystery", "romance", "sci fi", "war", "western"]
    assert degrees == {
        "Country:usa": ("Country", 3, 0),
        "Genre:action": ("Genre", 1, 0),
        "Genre:adventure": ("Genre", 2, 0),
        "Genre:animation": ("Genre", 1, 0),
        "Genre:children": ("Genre", 2, 0),
        "Genre:comedy": ("Genre", 1, 1),
        "Genre:crime": ("Genre", 1, 0),
        "Genre:fantasy": ("Genre", 2, 0),
        "Genre:thriller": ("Genre", 1, 0),
        **{f"Genre:{g}": ("Genre", 0, 0) for g in unused_genres},
        "Person:joe johnston": ("Person", 1, 0),
        "Person:john lasseter": ("Person", 1, 0),  # two edges, one distinct item
        "Person:michael mann": ("Person", 1, 0),
        "Theme:heist": ("Theme", 1, 2),
        "Theme:toys come to life": ("Theme", 1, 0),
    }
    assert len(store.entity_degrees()) == 25
    assert {r["item_id"]: r["entities"] for r in store.item_fact_counts()} == {"1": 8, "2": 5, "6": 6}
    keys = store.entity_keys()
    assert [r["key"] for r in keys][:3] == ["Country:usa", "Genre:action", "Genre:adventure"]
    assert [r["key"] for r in keys][-5:] == [
        "Person:joe johnston",
        "Person:john lasseter",
        "Person:michael mann",
        "Theme:heist",
        "Theme:toys come to life",
    ]
    by_key = {r["key"]: (r["type"], r["name"]) for r in keys}
    assert by_key["Theme:heist"] == ("Theme", "heist")  # the first name seen names the entity
    assert by_key["Person:john lasseter"] == ("Person", "John Lasseter")
    assert by_key["Genre:sci fi"] == ("Genre", "Sci-Fi")


def test_histograms_and_streamed_reads(store: GraphStore) -> None:
    """The bounded reads of the load's statistics and fingerprint (issue 15) against the per-row ones."""
    load(store)
    histogram = sorted(
        (r["type"], r["items"], r["with_users"], r["entities"]) for r in store.entity_degree_histogram()
    )
    counted: dict[tuple[str, int, bool], int] = {}
    for r in store.entity_degrees():
        slot = (r["type"], r["items"], r["users"] > 0)
        counted[slot] = counted.get(slot, 0) + 1
    assert histogram == sorted((*k, n) for k, n in counted.items())
    assert ("Genre", 0, False, 11) in histogram and ("Theme", 1, True, 1) in histogram
    items = sorted((r["entities"], r["items"]) for r in store.item_fact_histogram())
    assert items == [(5, 1), (6, 1), (8, 1)]
    assert sorted(store.stream_entity_keys(), key=lambda r: str(r["key"])) == store.entity_keys()
    assert store.entity_types_present(["Person", "Language", "Genre", "Nope"]) == {"Person", "Genre"}
    store.write_embeddings("item", [{"id": "1", "vector": [0.5, 0.25]}], model="m", run_id="e1")
    excluded = {"embedding", "run_id", "ns"}
    streamed = sorted(
        json.dumps([r["id"], sorted(r["labels"]), r["props"]], sort_keys=True)
        for r in store.stream_fingerprint_nodes(excluded)
    )
    assert streamed == sorted(
        json.dumps(
            [r["id"], sorted(r["labels"]), {k: v for k, v in r["props"].items() if k not in excluded}],
            sort_keys=True,
        )
        for r in store.fingerprint_nodes()
    )
    assert "embedding" not in streamed[0] and any('"embedding_model"' in row for row in streamed)
    streamed_edges = sorted(
        json.dumps([r["head"], r["type"], r["tail"], r["props"]], sort_keys=True)
        for r in store.stream_fingerprint_edges(["INTERACTED"], excluded)
    )
    assert streamed_edges == sorted(
        json.dumps(
            [r["head"], r["type"], r["tail"], {k: v for k, v in r["props"].items() if k not in excluded}],
            sort_keys=True,
        )
        for r in store.fingerprint_edges(["INTERACTED"])
    )
    assert len(streamed_edges) == 23


def test_rdf_facts(store: GraphStore) -> None:
    load(store)
    rows = store.rdf_facts()
    assert len(rows) == 22  # 19 distinct item facts + 3 user facts
    assert rows[0] == {
        "head_kind": "item",
        "head_id": "1",
        "head_title": "Toy Story (1995)",
        "relation": "DIRECTED_BY",
        "key": "Person:john lasseter",
        "name": "John Lasseter",
        "type": "Person",
    }
    assert store.rdf_facts(["llm"]) == [
        {
            "head_kind": "item",
            "head_id": "1",
            "head_title": "Toy Story (1995)",
            "relation": "DIRECTED_BY",
            "key": "Person:john lasseter",
            "name": "John Lasseter",
            "type": "Person",
        },
        {
            "head_kind": "item",
            "head_id": "1",
            "head_title": "Toy Story (1995)",
            "relation": "HAS_THEME",
            "key": "Theme:toys come to life",
            "name": "Toys come to life",
            "type": "Theme",
        },
        {
            "head_kind": "item",
            "head_id": "6",
            "head_title": "Heat (1995)",
            "relation": "HAS_THEME",
            "key": "Theme:heist",
            "name": "heist",
            "type": "Theme",
        },
        {
            "head_kind": "user",
            "head_id": "1",
            "head_title": None,
            "relation": "PREFERS",
            "key": "Genre:comedy",
            "name": "Comedy",
            "type": "Genre",
        },
        {
            "head_kind": "user",
            "head_id": "1",
            "head_title": None,
            "relation": "PREFERS",
            "key": "Theme:heist",
            "name": "heist",
            "type": "Theme",
        },
        {
            "head_kind": "user",
            "head_id": "42",
            "head_title": None,
            "relation": "PREFERS",
            "key": "Theme:heist",
            "name": "heist",
            "type": "Theme",
        },
    ]


def test_rewrite_is_idempotent(store: GraphStore) -> None:
    first_written = load(store, run_id="r1")
    first = (store.totals(), store.counts_by_label(), store.counts_by_type())
    fingerprint = graph_fingerprint(store)
    assert load(store, run_id="r2") == first_written
    assert (store.totals(), store.counts_by_label(), store.counts_by_type()) == first
    assert graph_fingerprint(store) == fingerprint  # run ids aside, the same graph
    lasseter = node(store, "entity:Person:john lasseter")
    assert lasseter is not None and lasseter["props"]["first_run"] == "r1"  # ON CREATE only
    theme = [p for h, _, p in edges(store, "HAS_THEME") if h == "item:6"]
    assert theme == [{"source": "llm", "model": "m", "object_name": "heist", "job": JOB, "run_id": "r2"}]


def test_delete_stale_facts(store: GraphStore) -> None:
    load(store, run_id="r1")
    kept = Fact(head_id="2", relation="HAS_GENRE", object="Comedy", object_type="Genre", source="llm")
    assert store.write_facts([kept], ONTOLOGY, job=JOB, run_id="r2") == 1
    # the same (item, relation, entity, source) edge, now written by another job: it moves to that job
    moved = Fact(head_id="6", relation="HAS_THEME", object="heist", object_type="Theme", source="llm")
    assert store.write_facts([moved], ONTOLOGY, job="other", run_id="r0") == 1
    # r1's llm edges of this job: Lasseter, toys (items) and the three PREFERS
    assert store.delete_stale_facts(job=JOB, run_id="r2", sources=["llm"]) == 5
    assert store.item_fact_triples(["llm"]) == [
        ("item:2", "HAS_GENRE", "entity:Genre:comedy"),
        ("item:6", "HAS_THEME", "entity:Theme:heist"),
    ]
    assert store.user_fact_triples() == []
    assert len(store.item_fact_triples(["hetrec"])) == 17  # other sources untouched
    assert store.delete_stale_facts(job=JOB, run_id="r2", sources=["catalog"]) == 0
    assert store.delete_stale_facts(job="other", run_id="r0", sources=["llm"]) == 0
    assert store.delete_stale_facts(job=JOB, run_id="r2", sources=["hetrec", "llm"]) == 17
    assert store.counts_by_type() == {"HAS_GENRE": 1, "HAS_THEME": 1, "INTERACTED": 9}
    assert store.totals() == {"nodes": 33, "edges": 11, "items": 3, "items_with_facts": 2}
    # run ids that sort after the current one are stale too (the index seeks both ranges)
    assert store.delete_stale_facts(job=JOB, run_id="r1", sources=["llm"]) == 1
    assert store.counts_by_type() == {"HAS_THEME": 1, "INTERACTED": 9}


def test_seed_vocabulary(store: GraphStore) -> None:
    store.ensure_schema(ONTOLOGY)
    store.write_items([{"item_id": "1", "props": {"title": "Toy Story (1995)"}}], item_label="Movie")
    comedy = Fact(
        head_id="1",
        relation="HAS_GENRE",
        object="comedy",
        object_type="Genre",
        source="catalog",
        source_field="genres",
    )
    store.write_facts([comedy], ONTOLOGY, job=JOB, run_id="r0")
    assert store.seed_vocabulary(ONTOLOGY, run_id="r1") == 19
    assert store.counts_by_label() == {"Entity": 19, "Genre": 19, "Item": 1, "Movie": 1}
    # an entity that existed keeps its name and first run and gains the vocabulary flag
    assert node(store, "entity:Genre:comedy") == {
        "labels": ["Entity", "Genre"],
        "props": {
            "key": "Genre:comedy",
            "name": "comedy",
            "type": "Genre",
            "first_run": "r0",
            "vocabulary": True,
        },
    }
    sci_fi = {
        "labels": ["Entity", "Genre"],
        "props": {
            "key": "Genre:sci fi",
            "name": "Sci-Fi",
            "type": "Genre",
            "first_run": "r1",
            "vocabulary": True,
        },
    }
    assert node(store, "entity:Genre:sci fi") == sci_fi
    assert store.seed_vocabulary(ONTOLOGY, run_id="r2") == 19
    assert store.totals() == {"nodes": 20, "edges": 1, "items": 1, "items_with_facts": 1}
    assert node(store, "entity:Genre:sci fi") == sci_fi


def test_aliases(store: GraphStore) -> None:
    store.ensure_schema(ONTOLOGY)
    store.write_items([{"item_id": "1", "props": {"title": "Jaws"}}], item_label="Movie")
    facts = [
        Fact(
            head_id="1",
            relation="DIRECTED_BY",
            object="Steven Spielberg",
            object_type="Person",
            source="hetrec",
        ),
        Fact(head_id="1", relation="HAS_GENRE", object="Comedy", object_type="Genre", source="hetrec"),
    ]
    store.write_facts(facts, ONTOLOGY, job=JOB, run_id="r0")
    assert store.existing_entities(["Person:steven spielberg", "Person:nobody", "Genre:comedy"]) == {
        "Person:steven spielberg": "Steven Spielberg",
        "Genre:comedy": "Comedy",
    }
    speilberg = {
        "key": "Person:steven speilberg",
        "name": "Steven Speilberg",
        "type": "Person",
        "canonical_key": "Person:steven spielberg",
        "reason": "fuzzy",
        "score": 0.9375,
        "matched_name": "Steven Spielberg",
    }
    orphan = {
        **speilberg,
        "key": "Person:ghost writer",
        "name": "Ghost Writer",
        "canonical_key": "Person:not there",
    }
    assert (
        store.write_aliases([speilberg, orphan], run_id="r1") == 2
    )  # counted, but the orphan writes nothing
    assert store.alias_targets(
        ["Person:steven speilberg", "Person:ghost writer", "Person:steven spielberg"]
    ) == {"Person:steven speilberg": ("Person:steven spielberg", "Steven Spielberg")}
    assert store.existing_entities(["Person:steven speilberg"]) == {}  # an alias is not an entity
    assert store.counts_by_label() == {
        "Alias": 1,
        "Entity": 2,
        "Genre": 1,
        "Item": 1,
        "Movie": 1,
        "Person": 1,
    }
    assert store.counts_by_type() == {"ALIAS_OF": 1, "DIRECTED_BY": 1, "HAS_GENRE": 1}
    empty = {
        "entity_key": None,
        "entity_name": None,
        "alias_target_key": None,
        "alias_target_name": None,
        "alias_name": None,
        "reason": None,
        "score": None,
        "matched_name": None,
        "run_id": None,
    }
    assert store.explain_key("Person:steven speilberg") == {
        **empty,
        "alias_target_key": "Person:steven spielberg",
        "alias_target_name": "Steven Spielberg",
        "alias_name": "Steven Speilberg",
        "reason": "fuzzy",
        "score": 0.9375,
        "matched_name": "Steven Spielberg",
        "run_id": "r1",
    }
    assert store.explain_key("Person:steven spielberg") == {
        **empty,
        "entity_key": "Person:steven spielberg",
        "entity_name": "Steven Spielberg",
    }
    assert store.explain_key("Person:nobody") == empty
    # a later run re-records the merge: one alias, one edge, the first run kept on the alias
    assert store.write_aliases([{**speilberg, "score": 0.94}], run_id="r2") == 1
    assert node(store, "alias:Person:steven speilberg") == {
        "labels": ["Alias"],
        "props": {
            "key": "Person:steven speilberg",
            "name": "Steven Speilberg",
            "type": "Person",
            "first_run": "r1",
        },
    }
    assert edges(store, "ALIAS_OF") == [
        (
            "alias:Person:steven speilberg",
            "entity:Person:steven spielberg",
            {"reason": "fuzzy", "score": 0.94, "matched_name": "Steven Spielberg", "run_id": "r2"},
        )
    ]


def test_fulltext_candidates_and_resolution(store: GraphStore) -> None:
    store.ensure_schema(ONTOLOGY)
    store.write_items([{"item_id": "1", "props": {"title": "A"}}], item_label="Movie")
    known = [
        ("DIRECTED_BY", "Person", "Steven Spielberg"),
        ("DIRECTED_BY", "Person", "Robert Zemeckis"),
        ("DIRECTED_BY", "Person", "Andy Wachowski"),
        ("HAS_THEME", "Theme", "Steven Spielberg films"),  # same words, another type
        ("PRODUCED_IN", "Country", "USA"),
    ]
    facts = [Fact(head_id="1", relation=r, object=n, object_type=t, source="gold") for r, t, n in known]
    store.write_facts(facts, ONTOLOGY, job=JOB, run_id="r0")
    rows = [
        {"key": "Person:steven speilberg", "type": "Person", "query": fulltext_query("steven speilberg")},
        {"key": "Person:robert zemeckis", "type": "Person", "query": fulltext_query("robert zemeckis")},
        {"key": "Person:larry wachowsky", "type": "Person", "query": fulltext_query("larry wachowsky")},
        {"key": "Person:quentin tarantino", "type": "Person", "query": fulltext_query("quentin tarantino")},
    ]
    got = store.fulltext_candidates(rows, limit=10)
    assert got == {
        "Person:steven speilberg": [("Person:steven spielberg", "Steven Spielberg")],
        "Person:larry wachowsky": [("Person:andy wachowski", "Andy Wachowski")],
    }  # never the row's own key, never another type, no entry without a candidate
    resolved = EntityResolver(store, ResolutionConfig()).resolve(
        [
            ("Person", "Steven Speilberg"),
            ("Person", "ROBERT ZEMECKIS"),
            ("Person", "John Woo"),
            ("Genre", "Steven Spielberg"),
        ]
    )
    assert {pair: (r.reason, r.canonical_key) for pair, r in resolved.items()} == {
        ("Person", "Steven Speilberg"): ("fuzzy", "Person:steven spielberg"),
        ("Person", "ROBERT ZEMECKIS"): ("entity", "Person:robert zemeckis"),
        ("Person", "John Woo"): ("new", "Person:john woo"),
        ("Genre", "Steven Spielberg"): ("new", "Genre:steven spielberg"),
    }


def test_mark_quarantined(store: GraphStore) -> None:
    store.ensure_schema(ONTOLOGY)
    store.write_items(movie_rows(), item_label="Movie")
    records = [
        QuarantineRecord(item_id="2", attempts=3, errors=[f"error {i}" for i in range(7)], raw_output="{"),
        QuarantineRecord(item_id="999", attempts=1, errors=["unknown"], raw_output=None),
    ]
    assert store.mark_quarantined(records, run_id="r1") == 2
    assert node(store, "item:2") == {
        "labels": ["Item", "Movie"],
        "props": {
            "item_id": "2",
            "title": "Jumanji (1995)",
            "year": 1995,
            "quarantined_run": "r1",
            "quarantine_errors": ["error 0", "error 1", "error 2", "error 3", "error 4"],
        },
    }
    assert store.totals()["nodes"] == 3  # an unknown item is not created
    again = [QuarantineRecord(item_id="6", attempts=3, errors=["bad json"], raw_output="")]
    assert store.mark_quarantined(again, run_id="r2") == 1
    item_2, item_6 = node(store, "item:2"), node(store, "item:6")
    assert item_2 is not None and item_2["props"] == {"item_id": "2", "title": "Jumanji (1995)", "year": 1995}
    assert item_6 is not None and item_6["props"]["quarantine_errors"] == ["bad json"]
    assert item_6["props"]["quarantined_run"] == "r2"
    assert store.mark_quarantined([], run_id="r3") == 0
    flagged = [r["id"] for r in store.fingerprint_nodes() if "quarantined_run" in r["props"]]
    assert flagged == []


def test_embeddings(store: GraphStore) -> None:
    store.ensure_schema(ONTOLOGY)
    store.write_items(movie_rows(), item_label="Movie")
    comedy = Fact(head_id="1", relation="HAS_GENRE", object="Comedy", object_type="Genre", source="catalog")
    store.write_facts([comedy], ONTOLOGY, job=JOB, run_id="r0")
    before = graph_fingerprint(store)
    items = [{"id": "1", "vector": [0.5, -0.25, 1.0]}, {"id": "999", "vector": [0.0, 0.0, 0.0]}]
    assert store.write_embeddings("item", items, model="TransE", run_id="e1") == 2
    entities = [{"id": "Genre:comedy", "vector": [1, 0.5, 0.25]}]  # ints and floats: stored as floats
    assert store.write_embeddings("entity", entities, model="TransE", run_id="e1") == 1
    assert store.finish_embeddings(dimensions=3, run_id="e1") == ["item_embedding", "entity_embedding"]
    assert vector_dimensions(store) == {"item_embedding": 3, "entity_embedding": 3}
    item_1, comedy_node = node(store, "item:1"), node(store, "entity:Genre:comedy")
    assert item_1 is not None and comedy_node is not None
    assert item_1["props"] == {
        "item_id": "1",
        "title": "Toy Story (1995)",
        "year": 1995,
        "embedding": [0.5, -0.25, 1.0],
        "embedding_model": "TransE",
        "embedding_run": "e1",
    }
    assert comedy_node["props"]["embedding"] == [1.0, 0.5, 0.25]
    assert all(isinstance(v, float) for v in comedy_node["props"]["embedding"])
    assert graph_fingerprint(store) == before  # vectors are volatile
    # the next run writes item 2 only: older vectors are dropped, the index follows the new dimension
    store.write_embeddings("item", [{"id": "2", "vector": [0.1, 0.2]}], model="DistMult", run_id="e2")
    assert store.finish_embeddings(dimensions=2, run_id="e2") == ["item_embedding", "entity_embedding"]
    assert vector_dimensions(store) == {"item_embedding": 2, "entity_embedding": 2}
    with_vectors = {
        r["id"]: r["props"]["embedding"] for r in store.fingerprint_nodes() if "embedding" in r["props"]
    }
    assert with_vectors == {"item:2": [0.1, 0.2]}
    with pytest.raises(KeyError):
        store.write_embeddings("user", [], model="TransE", run_id="e3")


def test_stamp_embeddings_marks_carried_vectors_as_this_runs(store: GraphStore) -> None:
    store.ensure_schema(ONTOLOGY)
    store.write_items(movie_rows(), item_label="Movie")
    comedy = Fact(head_id="1", relation="HAS_GENRE", object="Comedy", object_type="Genre", source="catalog")
    store.write_facts([comedy], ONTOLOGY, job=JOB, run_id="r0")
    items = [{"id": "1", "vector": [0.5, 0.25]}, {"id": "2", "vector": [0.1, 0.2]}]
    store.write_embeddings("item", items, model="TransE", run_id="e1")
    store.write_embeddings(
        "entity", [{"id": "Genre:comedy", "vector": [1, 0.5]}], model="TransE", run_id="e1"
    )
    store.finish_embeddings(dimensions=2, run_id="e1")
    # run e2 carried item 1 and comedy unchanged (item 999 does not exist), and gives item 2 a new vector
    assert store.stamp_embeddings("item", ["1", "999"], previous_run="e1", run_id="e2") == 1
    assert store.stamp_embeddings("entity", ["Genre:comedy"], previous_run="e1", run_id="e2") == 1
    # a node that no longer holds e1's vector is not stamped (the caller then writes the vector)
    assert store.stamp_embeddings("item", ["1"], previous_run="e1", run_id="e3") == 0
    store.write_embeddings("item", [{"id": "2", "vector": [0.3, 0.4]}], model="TransE", run_id="e2")
    store.finish_embeddings(dimensions=2, run_id="e2")
    held = {
        r["id"]: (r["props"]["embedding"], r["props"]["embedding_run"])
        for r in store.fingerprint_nodes()
        if "embedding" in r["props"]
    }
    assert held == {
        "item:1": ([0.5, 0.25], "e2"),
        "item:2": ([0.3, 0.4], "e2"),
        "entity:Genre:comedy": ([1.0, 0.5], "e2"),
    }


def test_recommendations(store: GraphStore) -> None:
    store.ensure_schema(ONTOLOGY)
    store.write_items(movie_rows(), item_label="Movie")
    store.write_users(USERS)
    before = graph_fingerprint(store)

    def rec(user: str, item: str, score: float, model: str, via: list[str], why: list[str]) -> dict[str, Any]:
        return {
            "user_id": user,
            "item_id": item,
            "rank": 1,
            "score": score,
            "model": model,
            "via_items": via,
            "via_entities": why,
        }

    first = [
        rec("1", "2", 0.9, "bpr_mf", ["1"], ["Genre:adventure"]),
        {**rec("1", "6", 0.5, "bpr_mf", [], []), "rank": 2},
        rec("5", "2", 0.7, "bpr_mf", ["1"], ["Genre:children"]),
        rec("nobody", "2", 0.1, "bpr_mf", [], []),  # unknown user: counted, not written
    ]
    assert store.write_recommendations(first, job=JOB, run_id="k1") == 4
    assert store.counts_by_type() == {"RECOMMENDED": 3}
    other = [rec("6", "1", 0.3, "lightgcn", [], [])]
    assert store.write_recommendations(other, job="other", run_id="k0") == 1
    second = [rec("1", "2", 0.8, "kg_bpr", ["6"], ["Country:usa"]), rec("18", "1", 0.6, "kg_bpr", [], [])]
    assert store.write_recommendations(second, job=JOB, run_id="k2") == 2
    assert edges(store, "RECOMMENDED") == sorted(
        [
            (
                "user:1",
                "item:2",
                {
                    "job": JOB,
                    "rank": 1,
                    "score": 0.8,
                    "run": "k2",
                    "model": "kg_bpr",
                    "via_items": ["6"],
                    "via_entities": ["Country:usa"],
                },
            ),
            (
                "user:18",
                "item:1",
                {
                    "job": JOB,
                    "rank": 1,
                    "score": 0.6,
                    "run": "k2",
                    "model": "kg_bpr",
                    "via_items": [],
                    "via_entities": [],
                },
            ),
            (
                "user:6",
                "item:1",
                {
                    "job": "other",
                    "rank": 1,
                    "score": 0.3,
                    "run": "k0",
                    "model": "lightgcn",
                    "via_items": [],
                    "via_entities": [],
                },
            ),
        ],
        key=lambda t: json.dumps(t, sort_keys=True),
    )
    assert graph_fingerprint(store) == before  # recommendations are derived, not knowledge


def test_injection_like_strings_are_data(store: GraphStore) -> None:
    store.ensure_schema(ONTOLOGY)
    item_id, user_id, title = "it`em'1\"", "u'); MATCH (n) DETACH DELETE n //", 'x"}) DETACH DELETE n //'
    store.write_items([{"item_id": item_id, "props": {"title": title}}], item_label="Movie")
    store.write_users([user_id])
    store.write_interactions([{"user_id": user_id, "item_id": item_id, "rating": 5.0, "ts": 1}])
    facts = [
        Fact(head_id=item_id, relation="STARRING", object=n, object_type="Person", source="llm")
        for n in HOSTILE
    ]
    facts.append(
        Fact(
            head_id=user_id,
            relation="PREFERS",
            object=HOSTILE[1],
            object_type="Person",
            head_kind="User",
            source="llm",
        )
    )
    assert store.write_facts(facts, ONTOLOGY, job=JOB, run_id="r1") == 6
    assert store.totals() == {"nodes": 7, "edges": 7, "items": 1, "items_with_facts": 1}
    assert sorted(r["name"] for r in store.entity_keys()) == sorted(HOSTILE)
    assert (
        "item:" + item_id,
        "STARRING",
        "entity:Person:person detach delete n",
    ) in store.item_fact_triples()
    assert store.user_fact_triples() == [
        ("user:" + user_id, "PREFERS", "entity:Person:person detach delete n")
    ]
    assert store.interaction_triples() == [("user:" + user_id, "INTERACTED", "item:" + item_id)]
    stored = node(store, "item:" + item_id)
    assert stored is not None and stored["props"] == {"item_id": item_id, "title": title}
    assert {r["head_title"] for r in store.rdf_facts()} == {title, None}
    with pytest.raises(ValueError, match="refusing identifier"):
        store.write_items([{"item_id": "2", "props": {}}], item_label="Movie`) DETACH DELETE n //")
    assert store.totals()["nodes"] == 7


def test_refused_writes_write_nothing(store: GraphStore) -> None:
    store.ensure_schema(ONTOLOGY)
    bad_rows: list[list[dict[str, Any]]] = [
        [{"item_id": "1", "props": {}}, {"item_id": None, "props": {}}],  # MERGE on null
        [{"item_id": "1"}],  # no props map
        [{"item_id": "1", "props": {"nested": {"a": 1}}}],  # maps are not property values
        [{"item_id": "1", "props": {"list": ["a", None]}}],  # nor lists with nulls
        [{"item_id": "1", "props": {"list": ["a", 1]}}],  # nor mixed lists
    ]
    for rows in bad_rows:
        with pytest.raises(GraphStoreError):
            store.write_items(rows, item_label="Movie")
    genre_head = Fact(
        head_id="1", relation="HAS_GENRE", object="Comedy", object_type="Genre", head_kind="Genre", source="x"
    )
    with pytest.raises(GraphStoreError, match="head kind"):
        store.write_facts([genre_head], ONTOLOGY, job=JOB, run_id="r1")
    assert store.totals() == {"nodes": 0, "edges": 0, "items": 0, "items_with_facts": 0}
    unknown = Fact(head_id="1", relation="NOT_A_RELATION", object="Comedy", object_type="Genre", source="x")
    with pytest.raises(KeyError):
        store.write_facts([unknown], ONTOLOGY, job=JOB, run_id="r1")


# -- both stores at once ---------------------------------------------------------------------------
def full_history(store: GraphStore, *, title_suffix: str = "") -> None:
    """Every kind of write, in the order a few pipeline runs would make them."""
    load(store, run_id="r1", title_suffix=title_suffix)
    names = [
        ("Person", "John Lasseter"),
        ("Person", "Jon Lasseter"),
        ("Person", "Joe Johnston"),
        ("Theme", "Heists"),
    ]
    resolutions = EntityResolver(store, ResolutionConfig()).resolve(names)
    more = [
        Fact(head_id="2", relation="STARRING", object="Jon Lasseter", object_type="Person", source="llm"),
        Fact(
            head_id="2",
            relation="HAS_THEME",
            object="Heists",
            object_type="Theme",
            source="llm",
            confidence=0.5,
        ),
        *[
            Fact(head_id="6", relation="STARRING", object=n, object_type="Person", source="llm")
            for n in HOSTILE
        ],
    ]
    store.write_facts(more, ONTOLOGY, job=JOB, run_id="r2", resolutions=resolutions)
    store.write_aliases(alias_rows(resolutions.values()), run_id="r2")
    store.delete_stale_facts(job=JOB, run_id="r2", sources=["llm"])
    store.mark_quarantined(
        [QuarantineRecord(item_id="1", attempts=3, errors=["bad"], raw_output=None)], run_id="r2"
    )
    store.write_embeddings("item", [{"id": "1", "vector": [0.25, 0.5]}], model="TransE", run_id="e1")
    store.write_embeddings(
        "entity", [{"id": "Country:usa", "vector": [1.0, 2.0]}], model="TransE", run_id="e1"
    )
    store.finish_embeddings(dimensions=2, run_id="e1")
    rec = {
        "user_id": "1",
        "item_id": "2",
        "rank": 1,
        "score": 0.5,
        "model": "m",
        "via_items": [],
        "via_entities": [],
    }
    store.write_recommendations([rec], job=JOB, run_id="k1")


def snapshot(store: GraphStore) -> tuple[list[str], list[str]]:
    """Every node and edge, with all properties, in a comparable form."""
    nodes = [
        json.dumps([r["id"], sorted(r["labels"]), r["props"]], sort_keys=True)
        for r in store.fingerprint_nodes()
    ]
    rels = [
        json.dumps([r["head"], r["type"], r["tail"], r["props"]], sort_keys=True)
        for r in store.fingerprint_edges([])
    ]
    return sorted(nodes), sorted(rels)


def reads(store: GraphStore) -> dict[str, Any]:
    """Everything a namespace's store reads back, in a comparable form."""
    return {
        "totals": store.totals(),
        "labels": store.counts_by_label(),
        "types": store.counts_by_type(),
        "item_facts": store.item_fact_triples(),
        "user_facts": store.user_fact_triples(),
        "interaction_triples": store.interaction_triples(),
        "interactions": sorted(store.interactions(), key=str),
        "degrees": sorted(store.entity_degrees(), key=lambda r: str(r["key"])),
        "fact_counts": sorted(store.item_fact_counts(), key=lambda r: str(r["item_id"])),
        "keys": store.entity_keys(),
        "rdf": store.rdf_facts(),
        "aliases": store.alias_targets(["Person:jon lasseter"]),
        "snapshot": snapshot(store),
        "fingerprint": graph_fingerprint(store),
    }


def with_vectors(store: GraphStore) -> dict[str, list[float]]:
    return {r["id"]: r["props"]["embedding"] for r in store.fingerprint_nodes() if "embedding" in r["props"]}


EMPTY_TOTALS = {"nodes": 0, "edges": 0, "items": 0, "items_with_facts": 0}


# -- namespaces ------------------------------------------------------------------------------------
def test_memory_store_namespaces() -> None:
    alone = InMemoryGraphStore()
    assert (alone.namespace, alone.entity_namespace, alone.owns_entities) == (
        DEFAULT_NAMESPACE,
        DEFAULT_NAMESPACE,
        True,
    )
    shared = alone.view("a", entity_namespace="e")
    assert shared.database is alone.database and not shared.owns_entities
    db = MemoryDatabase()
    assert InMemoryGraphStore(db, namespace="b").database is db


def test_namespaces_are_isolated(store: GraphStore, open_store: OpenStore) -> None:
    full_history(store)
    before = reads(store)
    other = open_store("other")
    assert other.owns_entities and (other.namespace, other.entity_namespace) == ("other", "other")
    other.ensure_schema(ONTOLOGY)
    # the same item ids with other titles; a props "ns" cannot move an item into another namespace
    rows = [
        {"item_id": "1", "props": {"title": "Other One", "ns": NS}},
        {"item_id": "2", "props": {"title": "Other Two"}},
        {"item_id": "7", "props": {"title": "Other Seven"}},
    ]
    assert other.write_items(rows, item_label="Movie") == 3
    assert other.write_users(["1", "5", "99"]) == 3
    interactions = [
        {"user_id": "1", "item_id": "1", "rating": 2.0, "ts": 5},
        {"user_id": "1", "item_id": "7", "rating": 1.0, "ts": 6},
        {"user_id": "99", "item_id": "2", "rating": None, "ts": None},
        {"user_id": "5", "item_id": "6", "rating": 5.0, "ts": 7},  # item 6 is the other namespace's
    ]
    assert other.write_interactions(interactions) == 4
    facts = [
        Fact(head_id="1", relation="HAS_GENRE", object="Drama", object_type="Genre", source="hetrec"),
        Fact(head_id="1", relation="DIRECTED_BY", object="John Lasseter", object_type="Person", source="llm"),
        Fact(
            head_id="7", relation="HAS_THEME", object="Toys come to life", object_type="Theme", source="llm"
        ),
        Fact(
            head_id="1",
            relation="PREFERS",
            object="Drama",
            object_type="Genre",
            head_kind="User",
            source="llm",
        ),
        Fact(
            head_id="99",
            relation="PREFERS",
            object="Heist",
            object_type="Theme",
            head_kind="User",
            source="llm",
        ),
    ]
    assert other.write_facts(facts, ONTOLOGY, job=JOB, run_id="s1") == 5  # the same job name
    assert reads(store) == before
    # items 1, 2, 7; users 1, 5, 99; Drama, John Lasseter, toys, Heist: its own entity nodes
    assert other.totals() == {"nodes": 10, "edges": 8, "items": 3, "items_with_facts": 2}
    assert other.counts_by_label() == {
        "Entity": 4,
        "Genre": 1,
        "Item": 3,
        "Movie": 3,
        "Person": 1,
        "Theme": 2,
        "User": 3,
    }
    assert node(other, "item:1") == {
        "labels": ["Item", "Movie"],
        "props": {"item_id": "1", "title": "Other One"},
    }
    assert node(other, "entity:Person:john lasseter") == {
        "labels": ["Entity", "Person"],
        "props": {
            "key": "Person:john lasseter",
            "name": "John Lasseter",
            "type": "Person",
            "first_run": "s1",
        },
    }
    assert other.item_fact_triples() == [
        ("item:1", "DIRECTED_BY", "entity:Person:john lasseter"),
        ("item:1", "HAS_GENRE", "entity:Genre:drama"),
        ("item:7", "HAS_THEME", "entity:Theme:toys come to life"),
    ]
    assert other.interaction_triples() == [
        ("user:1", "INTERACTED", "item:1"),
        ("user:1", "INTERACTED", "item:7"),
        ("user:99", "INTERACTED", "item:2"),
    ]
    assert [r["key"] for r in other.entity_keys()] == [
        "Genre:drama",
        "Person:john lasseter",
        "Theme:heist",
        "Theme:toys come to life",
    ]
    # resolution sees the entity namespace only: its entities, aliases and full-text candidates
    assert other.existing_entities(["Genre:comedy", "Genre:drama"]) == {"Genre:drama": "Drama"}
    assert other.alias_targets(["Person:jon lasseter"]) == {}
    assert other.explain_key("Person:jon lasseter")["alias_target_key"] is None
    queries = [
        {"key": "Person:jon lasseter", "type": "Person", "query": fulltext_query("jon lasseter")},
        {"key": "Person:micheal mann", "type": "Person", "query": fulltext_query("micheal mann")},
    ]
    assert other.fulltext_candidates(queries, limit=10) == {
        "Person:jon lasseter": [("Person:john lasseter", "John Lasseter")]
    }
    assert store.fulltext_candidates(queries, limit=10) == {
        "Person:jon lasseter": [("Person:john lasseter", "John Lasseter")],
        "Person:micheal mann": [("Person:michael mann", "Michael Mann")],
    }
    # the other namespace's stale facts, recommendations, quarantine flags and vectors are its own
    assert other.delete_stale_facts(job=JOB, run_id="s2", sources=["hetrec", "llm"]) == 5
    rec = {
        "user_id": "1",
        "item_id": "2",
        "rank": 1,
        "score": 0.1,
        "model": "m",
        "via_items": [],
        "via_entities": [],
    }
    assert other.write_recommendations([rec], job=JOB, run_id="k9") == 1
    assert (
        other.mark_quarantined(
            [QuarantineRecord(item_id="2", attempts=1, errors=["x"], raw_output=None)], run_id="q9"
        )
        == 1
    )
    assert (
        other.write_embeddings("item", [{"id": "1", "vector": [1.0, 0.0, 0.0]}], model="TransE", run_id="e9")
        == 1
    )
    # both vector indexes hold this namespace's 2-dimensional vectors: they stay as they are
    assert other.finish_embeddings(dimensions=3, run_id="e9") == []
    assert vector_dimensions(store) == {"item_embedding": 2, "entity_embedding": 2}
    assert with_vectors(other) == {"item:1": [1.0, 0.0, 0.0]}
    assert reads(store) == before
    assert edges(other, "RECOMMENDED") == [
        (
            "user:1",
            "item:2",
            {
                "job": JOB,
                "rank": 1,
                "score": 0.1,
                "run": "k9",
                "model": "m",
                "via_items": [],
                "via_entities": [],
            },
        )
    ]
    # clearing a namespace deletes its nodes only
    assert other.clear_namespace() == 10
    assert other.totals() == EMPTY_TOTALS
    assert other.counts_by_label() == {} and other.fingerprint_nodes() == []
    assert reads(store) == before
    assert store.clear_namespace() == 40
    assert store.totals() == EMPTY_TOTALS


def test_jobs_share_a_declared_entity_namespace(store: GraphStore, open_store: OpenStore) -> None:
    first, second = open_store("job-a", "shared"), open_store("job-b", "shared")
    entities = open_store("shared")  # a job named like the entity namespace owns it
    assert not first.owns_entities and not second.owns_entities and entities.owns_entities
    assert (first.namespace, first.entity_namespace) == ("job-a", "shared")
    for each in (first, second):
        each.ensure_schema(ONTOLOGY)
    assert first.seed_vocabulary(ONTOLOGY, run_id="r1") == 19
    first.write_items(
        [{"item_id": "1", "props": {"title": "A One"}}, {"item_id": "2", "props": {"title": "A Two"}}],
        item_label="Movie",
    )
    second.write_items([{"item_id": "1", "props": {"title": "B One"}}], item_label="Movie")
    first_facts = [
        Fact(
            head_id="1", relation="DIRECTED_BY", object="John Lasseter", object_type="Person", source="hetrec"
        ),
        Fact(head_id="2", relation="HAS_GENRE", object="Comedy", object_type="Genre", source="hetrec"),
        Fact(
            head_id="1",
            relation="PREFERS",
            object="comedy",
            object_type="Genre",
            head_kind="User",
            source="llm",
        ),
    ]
    second_facts = [
        Fact(head_id="1", relation="DIRECTED_BY", object="john lasseter", object_type="Person", source="llm"),
        Fact(head_id="1", relation="HAS_GENRE", object="Comedy", object_type="Genre", source="llm"),
    ]
    assert first.write_facts(first_facts, ONTOLOGY, job=JOB, run_id="r1") == 3
    assert second.write_facts(second_facts, ONTOLOGY, job=JOB, run_id="r2") == 2
    # one entity node per key, whoever wrote it first named it
    assert entities.counts_by_label() == {"Entity": 20, "Genre": 19, "Person": 1}
    assert entities.totals() == {"nodes": 20, "edges": 0, "items": 0, "items_with_facts": 0}
    lasseter = {
        "labels": ["Entity", "Person"],
        "props": {
            "key": "Person:john lasseter",
            "name": "John Lasseter",
            "type": "Person",
            "first_run": "r1",
        },
    }
    assert (
        node(first, "entity:Person:john lasseter") == lasseter == node(second, "entity:Person:john lasseter")
    )
    assert first.entity_keys() == second.entity_keys() == entities.entity_keys()
    # edges from both namespaces point at it; each namespace sees its own
    assert edges(first, "DIRECTED_BY") == [
        (
            "item:1",
            "entity:Person:john lasseter",
            {"source": "hetrec", "object_name": "John Lasseter", "job": JOB, "run_id": "r1"},
        )
    ]
    assert edges(second, "DIRECTED_BY") == [
        (
            "item:1",
            "entity:Person:john lasseter",
            {"source": "llm", "object_name": "john lasseter", "job": JOB, "run_id": "r2"},
        )
    ]
    assert first.item_fact_triples() == [
        ("item:1", "DIRECTED_BY", "entity:Person:john lasseter"),
        ("item:2", "HAS_GENRE", "entity:Genre:comedy"),
    ]
    second_triples = [
        ("item:1", "DIRECTED_BY", "entity:Person:john lasseter"),
        ("item:1", "HAS_GENRE", "entity:Genre:comedy"),
    ]
    assert second.item_fact_triples() == second_triples
    degrees = {r["key"]: (r["items"], r["users"]) for r in first.entity_degrees()}
    assert len(degrees) == 20
    assert (degrees["Person:john lasseter"], degrees["Genre:comedy"]) == ((1, 0), (1, 1))
    degrees = {r["key"]: (r["items"], r["users"]) for r in second.entity_degrees()}
    assert (degrees["Person:john lasseter"], degrees["Genre:comedy"]) == ((1, 0), (1, 0))
    # items stay apart
    assert node(first, "item:1") == {"labels": ["Item", "Movie"], "props": {"item_id": "1", "title": "A One"}}
    assert node(second, "item:1") == {
        "labels": ["Item", "Movie"],
        "props": {"item_id": "1", "title": "B One"},
    }
    # counts take every entity of the entity namespace; the fingerprint only those the namespace uses
    assert first.totals() == {"nodes": 23, "edges": 3, "items": 2, "items_with_facts": 2}
    assert second.totals() == {"nodes": 21, "edges": 2, "items": 1, "items_with_facts": 1}
    assert sorted(r["id"] for r in first.fingerprint_nodes()) == [
        "entity:Genre:comedy",
        "entity:Person:john lasseter",
        "item:1",
        "item:2",
        "user:1",
    ]
    assert sorted(r["id"] for r in second.fingerprint_nodes()) == [
        "entity:Genre:comedy",
        "entity:Person:john lasseter",
        "item:1",
    ]
    # aliases live in the entity namespace: one job's merge is every sharer's
    alias = {
        "key": "Person:jon lasseter",
        "name": "Jon Lasseter",
        "type": "Person",
        "canonical_key": "Person:john lasseter",
        "reason": "fuzzy",
        "score": 0.9,
        "matched_name": "John Lasseter",
    }
    assert first.write_aliases([alias], run_id="r3") == 1
    assert second.alias_targets(["Person:jon lasseter"]) == {
        "Person:jon lasseter": ("Person:john lasseter", "John Lasseter")
    }
    assert first.counts_by_label()["Alias"] == 1 and "alias:Person:jon lasseter" not in {
        r["id"] for r in first.fingerprint_nodes()
    }
    assert first.counts_by_type() == {"DIRECTED_BY": 1, "HAS_GENRE": 1, "PREFERS": 1}
    assert entities.counts_by_type() == {"ALIAS_OF": 1}
    # one job's stale facts and its clear leave the other's edges and the shared entities alone
    assert first.delete_stale_facts(job=JOB, run_id="r9", sources=["hetrec", "llm"]) == 3
    assert second.item_fact_triples() == second_triples
    assert first.clear_namespace() == 3  # items 1 and 2, user 1
    assert first.totals() == {"nodes": 21, "edges": 0, "items": 0, "items_with_facts": 0}
    assert second.item_fact_triples() == second_triples
    assert second.existing_entities(["Person:john lasseter"]) == {"Person:john lasseter": "John Lasseter"}
    assert second.totals() == {"nodes": 22, "edges": 2, "items": 1, "items_with_facts": 1}


# -- the run lock ----------------------------------------------------------------------------------
def test_lock(store: GraphStore, open_store: OpenStore) -> None:
    first = {
        "run_id": "run-1",
        "job": JOB,
        "host": "host-1",
        "pid": 11,
        "started": "2024-01-01T00:00:00+0000",
    }
    second = {
        "run_id": "run-2",
        "job": JOB,
        "host": "host-2",
        "pid": 22,
        "started": "2024-01-02T00:00:00+0000",
    }
    started = time.time_ns() // 1_000_000 - 60_000  # a minute of slack for the server's clock
    mine, holder = store.try_lock(first)
    assert mine
    assert {k: v for k, v in holder.items() if k != "heartbeat"} == {**first, "namespace": NS}
    assert isinstance(holder["heartbeat"], int) and holder["heartbeat"] >= started
    assert store.try_lock(second) == (False, holder)  # the holder, untouched
    assert store.try_lock(first) == (True, holder)  # the same run asks again
    # one lock per namespace
    elsewhere = open_store("other")
    assert elsewhere.try_lock(second)[0]
    elsewhere.release_lock("run-2")
    # a take-over is a compare-and-set on the holder's run id
    assert not store.take_over_lock(second, stale_run_id="run-0")
    assert store.try_lock(second)[1] == holder
    assert store.take_over_lock(second, stale_run_id="run-1")
    mine, taken = store.try_lock(first)
    assert not mine
    assert {k: v for k, v in taken.items() if k != "heartbeat"} == {
        **second,
        "namespace": NS,
        "took_over_from": "run-1",
    }
    assert taken["heartbeat"] >= holder["heartbeat"]
    assert not store.take_over_lock(first, stale_run_id="run-1")  # someone was first
    # heartbeats and release: only by the holder
    assert not store.refresh_lock("run-1")
    time.sleep(0.02)
    assert store.refresh_lock("run-2")
    assert store.try_lock(first)[1]["heartbeat"] > taken["heartbeat"]
    store.release_lock("run-1")
    assert store.try_lock(first)[1]["run_id"] == "run-2"
    store.release_lock("run-2")
    assert not store.refresh_lock("run-2")
    assert not store.take_over_lock(first, stale_run_id="run-2")  # nothing to take over
    third = {**first, "run_id": "run-3"}
    mine, holder = store.try_lock(third)
    assert mine and {k: v for k, v in holder.items() if k != "heartbeat"} == {**third, "namespace": NS}
    # the lock is nobody's data: not counted, not fingerprinted, not cleared with the namespace
    assert store.totals() == EMPTY_TOTALS and store.counts_by_label() == {}
    fingerprint = graph_fingerprint(store)
    assert (fingerprint.nodes, fingerprint.edges) == (0, 0)
    assert store.clear_namespace() == 0
    assert store.try_lock(first) == (False, holder)


def test_acquire(store: GraphStore) -> None:
    held = acquire(store, LockOwner.here(run_id="run-1", job=JOB), stale_after_s=300, heartbeat_s=3600)
    with pytest.raises(LockHeldError, match="run run-1"):  # its process on this host is alive
        acquire(store, LockOwner.here(run_id="run-2", job=JOB), stale_after_s=300, heartbeat_s=3600)
    held.release()
    acquire(store, LockOwner.here(run_id="run-3", job=JOB), stale_after_s=300, heartbeat_s=3600).release()
    # a holder on another host whose heartbeat stopped is taken over
    gone = LockOwner(run_id="run-4", job=JOB, host="gone.invalid", pid=1, started="2024-01-01T00:00:00+0000")
    assert store.try_lock(gone.as_dict())[0]
    with pytest.raises(LockHeldError, match="run run-4"):
        acquire(store, LockOwner.here(run_id="run-5", job=JOB), stale_after_s=300, heartbeat_s=3600)
    time.sleep(0.05)
    taker = acquire(store, LockOwner.here(run_id="run-6", job=JOB), stale_after_s=0.01, heartbeat_s=3600)
    holder = store.try_lock(gone.as_dict())[1]
    assert (holder["run_id"], holder["took_over_from"]) == ("run-6", "run-4")
    taker.release()
    assert store.try_lock(gone.as_dict())[0]


def test_vector_indexes_across_namespaces(store: GraphStore, open_store: OpenStore) -> None:
    other = open_store("other")
    comedy = Fact(head_id="1", relation="HAS_GENRE", object="Comedy", object_type="Genre", source="catalog")
    for each in (store, other):
        each.ensure_schema(ONTOLOGY)
        each.write_items(movie_rows(), item_label="Movie")
        each.write_facts([comedy], ONTOLOGY, job=JOB, run_id="r0")
    store.write_embeddings("item", [{"id": "1", "vector": [0.5, 0.5]}], model="TransE", run_id="e1")
    assert store.finish_embeddings(dimensions=2, run_id="e1") == ["item_embedding", "entity_embedding"]
    # another namespace's 3 dimensions: the item index holds our vectors and stays,
    # the entity index holds none and follows
    other.write_embeddings("item", [{"id": "1", "vector": [1.0, 0.0, 0.0]}], model="TransE", run_id="f1")
    other.write_embeddings(
        "entity", [{"id": "Genre:comedy", "vector": [0.0, 1.0, 0.0]}], model="TransE", run_id="f1"
    )
    assert other.finish_embeddings(dimensions=3, run_id="f1") == ["entity_embedding"]
    assert vector_dimensions(store) == {"item_embedding": 2, "entity_embedding": 3}
    assert with_vectors(other) == {"item:1": [1.0, 0.0, 0.0], "entity:Genre:comedy": [0.0, 1.0, 0.0]}
    # a later run drops only its own namespace's older vectors
    assert other.finish_embeddings(dimensions=3, run_id="f2") == ["entity_embedding"]
    assert with_vectors(other) == {}
    assert with_vectors(store) == {"item:1": [0.5, 0.5]}
    # with no other namespace's vectors left, both indexes follow the dimension
    assert store.finish_embeddings(dimensions=4, run_id="e2") == ["item_embedding", "entity_embedding"]
    assert vector_dimensions(store) == {"item_embedding": 4, "entity_embedding": 4}


# -- both stores at once ---------------------------------------------------------------------------
@pytest.mark.neo4j
def test_both_stores_hold_the_same_graph(neo4j_store: GraphStore, neo4j_config: Any) -> None:
    """Two namespaces in one database, in memory and in Neo4j: the same graph, namespace by namespace."""
    database = MemoryDatabase()  # neo4j_store has emptied the Neo4j test database
    memory = {ns: InMemoryGraphStore(database, namespace=ns) for ns in ("a", "b")}
    neo4j = {ns: neo4j_store_for(neo4j_config, ns) for ns in ("a", "b")}
    try:
        for stores in (memory, neo4j):
            full_history(stores["a"])
            full_history(stores["b"], title_suffix=" (b)")
        fingerprints: dict[str, Fingerprint] = {}
        for ns in ("a", "b"):
            fingerprints[ns] = graph_fingerprint(memory[ns])
            assert graph_fingerprint(neo4j[ns]) == fingerprints[ns]
            assert snapshot(memory[ns]) == snapshot(neo4j[ns])
            for each in (memory[ns], neo4j[ns]):
                assert each.explain_key("Person:jon lasseter")["alias_target_key"] == "Person:john lasseter"
    finally:
        for each in neo4j.values():
            each.close()
    # nodes: the load's 33 + Theme:heists ("heist" is too short to merge with) + 5 hostile people
    # + the Jon Lasseter alias; edges: the load's 32 + 7 new facts - 6 stale llm facts + ALIAS_OF
    # (the RECOMMENDED edge is derived, so not fingerprinted)
    assert (fingerprints["a"].nodes, fingerprints["a"].edges) == (40, 34)
    assert (fingerprints["b"].nodes, fingerprints["b"].edges) == (40, 34)
    assert fingerprints["a"].hash != fingerprints["b"].hash  # the titles differ
    # the namespace is not knowledge: `a` alone in a database has the same fingerprint
    alone = InMemoryGraphStore(namespace="elsewhere")
    full_history(alone)
    assert graph_fingerprint(alone) == fingerprints["a"]
