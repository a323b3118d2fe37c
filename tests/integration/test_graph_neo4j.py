"""Writes to the real Neo4j: anchoring, provenance, idempotence, hostile names."""

from __future__ import annotations

from pathlib import Path

import pytest

from kg_enhance.graph.fingerprint import graph_fingerprint
from kg_enhance.graph.store import Neo4jStore
from kg_enhance.ontology import load_ontology
from kg_enhance.types import Fact, QuarantineRecord

REPO = Path(__file__).resolve().parents[2]
ONTOLOGY = load_ontology(REPO / "schemas" / "movies.yaml")

HOSTILE = [
    'Robert "Bob" O\'Neil',
    "`Person`) DETACH DELETE n //",
    "x'}) MATCH (n) DETACH DELETE n //",
    "Ｐｅｒｓｏｎ Ａ",  # full-width confusables
    "Zoë Saldaña",
]


def _load(store: Neo4jStore) -> None:
    store.ensure_schema(ONTOLOGY)
    store.write_items(
        [
            {"item_id": "1", "props": {"title": "Toy Story (1995)"}},
            {"item_id": "2", "props": {"title": "Jumanji (1995)"}},
        ],
        item_label="Movie",
    )
    store.write_users(["u1", "u2"])
    store.write_interactions(
        [
            {"user_id": "u1", "item_id": "1", "rating": 5.0, "ts": 1},
            {"user_id": "u2", "item_id": "2", "rating": 3.5, "ts": 2},
        ]
    )
    facts = [
        Fact(
            head_id="1",
            relation="STARRING",
            object=name,
            object_type="Person",
            source="llm",
            model="m",
            prompt_hash="p",
        )
        for name in HOSTILE
    ]
    facts += [
        Fact(
            head_id="1", relation="DIRECTED_BY", object="John Lasseter", object_type="Person", source="hetrec"
        ),
        Fact(
            head_id="1",
            relation="DIRECTED_BY",
            object="john lasseter",
            object_type="Person",
            source="llm",
            confidence=0.8,
        ),
        Fact(
            head_id="2",
            relation="HAS_GENRE",
            object="Fantasy",
            object_type="Genre",
            source="catalog",
            source_field="genres",
        ),
    ]
    store.write_facts(facts, ONTOLOGY, job="test", run_id="r1")
    store.mark_quarantined(
        [QuarantineRecord(item_id="2", attempts=3, errors=["bad json"], raw_output="{")], run_id="r1"
    )


@pytest.mark.neo4j
def test_load_is_anchored_idempotent_and_keeps_hostile_names_as_data(neo4j_store: Neo4jStore) -> None:
    _load(neo4j_store)
    first = (neo4j_store.totals(), neo4j_store.counts_by_label(), neo4j_store.counts_by_type())
    fp1 = graph_fingerprint(neo4j_store)
    _load(neo4j_store)
    second = (neo4j_store.totals(), neo4j_store.counts_by_label(), neo4j_store.counts_by_type())
    assert first == second
    assert graph_fingerprint(neo4j_store) == fp1  # same input, same graph, run ids aside
    totals, labels, types = first
    assert labels["Item"] == 2 and labels["Movie"] == 2 and labels["User"] == 2
    # 5 hostile people + one Lasseter (two spellings resolve to one key) + Fantasy
    assert labels["Entity"] == 7 and labels["Person"] == 6 and labels["Genre"] == 1
    assert types["STARRING"] == 5 and types["DIRECTED_BY"] == 2 and types["INTERACTED"] == 2
    assert totals["items_with_facts"] == 2
    names = {r["entity"] for r in neo4j_store.run_statement("browser/item_facts", item_id="1")}
    assert set(HOSTILE) <= names


@pytest.mark.neo4j
def test_provenance_and_sources_side_by_side(neo4j_store: Neo4jStore) -> None:
    _load(neo4j_store)
    rows = [
        r
        for r in neo4j_store.run_statement("browser/item_facts", item_id="1")
        if r["relation"] == "DIRECTED_BY"
    ]
    assert sorted(r["source"] for r in rows) == ["hetrec", "llm"]
    assert {r["entity"] for r in rows} == {"John Lasseter"}  # first spelling seen names the entity
    triples = neo4j_store.item_fact_triples(["hetrec"])
    assert triples == [("item:1", "DIRECTED_BY", "entity:Person:john lasseter")]
    assert len(neo4j_store.item_fact_triples(None)) == 7
    assert neo4j_store.interaction_triples(4.0) == [("user:u1", "INTERACTED", "item:1")]


@pytest.mark.neo4j
def test_browser_queries_run(neo4j_store: Neo4jStore) -> None:
    _load(neo4j_store)
    assert neo4j_store.run_statement("browser/hub_entities")
    assert neo4j_store.run_statement("browser/item_neighbourhood", item_id="1")
    neo4j_store.write_facts(
        [
            Fact(
                head_id="2",
                relation="DIRECTED_BY",
                object="John Lasseter",
                object_type="Person",
                source="hetrec",
            )
        ],
        ONTOLOGY,
        job="test",
        run_id="r2",
    )
    shared = neo4j_store.run_statement("browser/items_sharing_entities", item_id="1")
    assert shared and shared[0]["item_id"] == "2"


@pytest.mark.neo4j
def test_wrong_password_is_a_one_line_error(neo4j_config, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from kg_enhance.errors import ServiceUnavailableError

    monkeypatch.setenv("NEO4J_PASSWORD", "definitely-wrong-password")
    with pytest.raises(ServiceUnavailableError, match="authentication failed") as info:
        Neo4jStore(neo4j_config)
    assert "\n" not in str(info.value)


def test_unreachable_neo4j_is_a_one_line_error() -> None:
    from kg_enhance.config.models import Neo4jConfig
    from kg_enhance.errors import ServiceUnavailableError

    with pytest.raises(ServiceUnavailableError, match="unreachable.*kg-enhance neo4j start"):
        Neo4jStore(Neo4jConfig(uri="bolt://127.0.0.1:1"))


@pytest.mark.neo4j
def test_facts_a_later_run_no_longer_states_are_removed(neo4j_store: Neo4jStore) -> None:
    _load(neo4j_store)
    before = neo4j_store.item_fact_triples(["llm"])
    assert before
    kept = Fact(head_id="2", relation="HAS_GENRE", object="Comedy", object_type="Genre", source="llm")
    neo4j_store.write_facts([kept], ONTOLOGY, job="test", run_id="r9")
    assert neo4j_store.delete_stale_facts(job="test", run_id="r9", sources=["llm"]) == len(before)
    assert neo4j_store.item_fact_triples(["llm"]) == [("item:2", "HAS_GENRE", "entity:Genre:comedy")]
    assert neo4j_store.item_fact_triples(["catalog"])  # other sources untouched
    assert neo4j_store.delete_stale_facts(job="other-job", run_id="r9", sources=["catalog"]) == 0


def _operators(plan: dict) -> list[str]:  # type: ignore[type-arg]
    out = [plan["operatorType"].split("@")[0]]
    for child in plan.get("children", []):
        out += _operators(child)
    return out


@pytest.mark.neo4j
def test_stale_fact_deletion_seeks_the_run_index(neo4j_store: Neo4jStore) -> None:
    """ensure_schema makes a (job, run_id) index per fact relation and the delete seeks it (issue 15)."""
    _load(neo4j_store)
    indexed = {r["type"] for r in neo4j_store.run_statement("schema/fact_run_indexes_online")}
    assert set(ONTOLOGY.relations) <= indexed
    query = neo4j_store.cypher.get("write/delete_stale_facts_indexed", rel_type="STARRING")
    params = {"ns": neo4j_store.namespace, "job": "test", "run_id": "r1", "sources": ["llm"]}
    summary = neo4j_store.driver.execute_query("PROFILE " + query, parameters_=params).summary
    operators = _operators(summary.profile)
    # two seeks: run_id < $run_id and run_id > $run_id
    assert operators.count("DirectedRelationshipIndexSeek") == 2, " ".join(operators)
    assert not {"AllNodesScan", "NodeByLabelScan", "UnionNodeByLabelsScan"} & set(operators), operators
    # the load's own edges are not stale, edges of any other run are, whichever way their run ids sort
    assert neo4j_store.delete_stale_facts(job="test", run_id="r1", sources=["llm", "hetrec", "catalog"]) == 0
    assert neo4j_store.delete_stale_facts(job="test", run_id="r0", sources=["llm"]) == 6
    assert neo4j_store.delete_stale_facts(job="test", run_id="r9", sources=["hetrec"]) == 1


@pytest.mark.neo4j
def test_fingerprint_streams_the_rows_without_vectors(neo4j_store: Neo4jStore) -> None:
    _load(neo4j_store)
    before = graph_fingerprint(neo4j_store)
    neo4j_store.write_embeddings("item", [{"id": "1", "vector": [0.5] * 8}], model="m", run_id="e")
    rows = list(neo4j_store.stream_fingerprint_nodes({"embedding", "embedding_model", "embedding_run"}))
    assert len(rows) == before.nodes and not any("embedding" in r["props"] for r in rows)
    assert graph_fingerprint(neo4j_store) == before


def _hub(store: Neo4jStore, items: int) -> None:
    """``items`` movies watched by one user and sharing one genre: two nodes with ``items`` edges each."""
    store.ensure_schema(ONTOLOGY)
    store.write_items([{"item_id": str(i), "props": {}} for i in range(items)], item_label="Movie")
    store.write_users(["u1"])
    store.write_interactions(
        [{"user_id": "u1", "item_id": str(i), "rating": 5.0, "ts": i} for i in range(items)]
    )
    facts = [
        Fact(head_id=str(i), relation="HAS_GENRE", object="Drama", object_type="Genre", source="catalog")
        for i in range(items)
    ]
    store.write_facts(facts, ONTOLOGY, job="test", run_id="r1")


@pytest.mark.parametrize("scope", ["namespace", "database"])
def test_clearing_deletes_a_hubs_relationships_in_bounded_batches(
    neo4j_store: Neo4jStore, scope: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # relationships go first, `batch` per transaction, so a hub (a genre of 100,000 items) never puts
    # all its relationships in one transaction; a 45 MiB DETACH DELETE once failed on Neo4j's 1.4 GiB
    # transaction memory limit this way (benchmarks/scale.py, k = 8)
    _hub(neo4j_store, 120)
    other = Neo4jStore(neo4j_store.config, namespace="other")
    try:
        _hub(other, 5)
        before, others_before = neo4j_store.totals(), other.totals()
        sizes: list[int] = []  # relationships deleted per transaction
        run = neo4j_store.driver.execute_query

        def counted(query: str, *args: object, **kwargs: object) -> object:
            got = run(query, *args, **kwargs)  # type: ignore[call-overload]
            if "DELETE r" in query:
                sizes.append(int(got[0][0]["deleted"]))
            return got

        monkeypatch.setattr(neo4j_store.driver, "execute_query", counted)
        deleted = neo4j_store.clear_namespace(batch=7) if scope == "namespace" else neo4j_store.clear(batch=7)
        monkeypatch.undo()
        after, others_after = neo4j_store.totals(), other.totals()
    finally:
        other.close()
    assert before["nodes"] >= 122 and before["edges"] >= 240 and deleted >= 122
    assert max(sizes) == 7 and sum(sizes) >= 240 and sizes[-1] == 0  # bounded batches, until none is left
    assert after["nodes"] == 0 and after["edges"] == 0
    if scope == "namespace":  # the other job's graph is intact
        assert others_after == others_before and others_before["edges"] >= 10
    else:
        assert others_after["nodes"] == 0 and others_after["edges"] == 0


def test_clearing_a_namespace_also_deletes_its_nodes_without_an_anchor(neo4j_store: Neo4jStore) -> None:
    # the deletes find a namespace's nodes by index seeks on (ns, anchor); a node written by hand
    # without its anchor property (e.g. in Neo4j Browser) is not in those indexes, and the sweep takes it
    _hub(neo4j_store, 3)
    other = Neo4jStore(neo4j_store.config, namespace="other")
    try:
        _hub(other, 3)
        neo4j_store.driver.execute_query(
            "MATCH (u:User {ns: 't', user_id: 'u1'}) "
            "CREATE (:Item {ns: 't', title: 'no id'})<-[:INTERACTED]-(u), (:Entity {ns: 't', name: 'no key'}), "
            "(:Item {ns: 'other', title: 'not ours'})"
        )
        before = other.totals()
        deleted = neo4j_store.clear_namespace(batch=2)
        assert deleted == 3 + 1 + 1 + 2  # items, user, genre, the two without an anchor
        assert neo4j_store.query("MATCH (n {ns: 't'}) RETURN count(n) AS n")[0]["n"] == 0
        assert other.totals() == before
        assert (
            neo4j_store.query("MATCH (n:Item {ns: 'other', title: 'not ours'}) RETURN count(n) AS n")[0]["n"]
            == 1
        )
    finally:
        other.close()
