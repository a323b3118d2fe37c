"""Entity resolution on the real Neo4j: expected merges and non-merges, the alias table, explanations."""

from __future__ import annotations

from pathlib import Path

import pytest

from kg_enhance.config.models import ResolutionConfig
from kg_enhance.graph.fingerprint import graph_fingerprint
from kg_enhance.graph.resolve import EntityResolver, alias_rows, explain
from kg_enhance.graph.store import Neo4jStore
from kg_enhance.ontology import load_ontology
from kg_enhance.types import Fact

REPO = Path(__file__).resolve().parents[2]
ONTOLOGY = load_ontology(REPO / "schemas" / "movies.yaml")

# (type, name) already in the graph, from a trusted source
KNOWN = [
    ("Person", "Steven Spielberg"),
    ("Person", "Robert Zemeckis"),
    ("Person", "Andy Wachowski"),
    ("Person", "Ivan Reitman"),
    ("Person", "John Ford"),
    ("Theme", "Rocky II"),
    ("Country", "USA"),
]

MERGES = {
    ("Person", "Steven Speilberg"): "Steven Spielberg",  # typo, found through the full-text index
    ("Person", "Spielberg, Steven"): "Steven Spielberg",  # word order
    ("Person", "ROBERT ZEMECKIS"): "Robert Zemeckis",  # case only: same key
    ("Person", "Robert Zemekis"): "Robert Zemeckis",  # typo
    ("Person", "Christopher Nolen"): "Christopher Nolan",  # both new: merged through the in-batch index
}
NON_MERGES = [
    ("Person", "Larry Wachowski"),  # a different person with the same surname
    ("Person", "Jason Reitman"),
    ("Person", "John Woo"),  # short names never merge fuzzily
    ("Theme", "Rocky III"),  # numbers must agree
    ("Country", "UK"),
    ("Genre", "Steven Spielberg"),  # other type
]


def _seed(store: Neo4jStore) -> None:
    store.ensure_schema(ONTOLOGY)
    store.write_items([{"item_id": "1", "props": {"title": "A"}}], item_label="Movie")
    rel = {"Person": "DIRECTED_BY", "Theme": "HAS_THEME", "Country": "PRODUCED_IN"}
    facts = [Fact(head_id="1", relation=rel[t], object=n, object_type=t, source="gold") for t, n in KNOWN]
    store.write_facts(facts, ONTOLOGY, job="t", run_id="r0")


@pytest.mark.neo4j
def test_expected_merges_and_non_merges(neo4j_store: Neo4jStore) -> None:
    _seed(neo4j_store)
    resolver = EntityResolver(neo4j_store, ResolutionConfig())
    names = [("Person", "Christopher Nolan"), *MERGES, *NON_MERGES]
    got = resolver.resolve(names)
    for pair, expected in MERGES.items():
        assert got[pair].canonical_name == expected, (pair, got[pair])
    assert got[("Person", "Steven Speilberg")].reason == "fuzzy"
    assert got[("Person", "ROBERT ZEMECKIS")].reason == "entity"
    for pair in NON_MERGES:
        assert got[pair].canonical_name == pair[1] and got[pair].reason == "new", (pair, got[pair])


@pytest.mark.neo4j
def test_merges_persist_as_aliases_and_can_be_explained(neo4j_store: Neo4jStore) -> None:
    _seed(neo4j_store)
    got = EntityResolver(neo4j_store, ResolutionConfig()).resolve([("Person", "Steven Speilberg")])
    fact = Fact(
        head_id="1", relation="STARRING", object="Steven Speilberg", object_type="Person", source="llm"
    )
    neo4j_store.write_facts([fact], ONTOLOGY, job="t", run_id="r1", resolutions=got)
    neo4j_store.write_aliases(alias_rows(got.values()), run_id="r1")
    people = {r["entity"] for r in neo4j_store.run_statement("browser/item_facts", item_id="1")}
    assert "Steven Speilberg" not in people and "Steven Spielberg" in people
    # the next run finds the alias in the table, without fuzzy matching
    again = EntityResolver(neo4j_store, ResolutionConfig(fuzzy=False)).resolve(
        [("Person", "Steven Speilberg")]
    )
    assert again[("Person", "Steven Speilberg")].reason == "alias"
    lines = explain("Steven Speilberg", "Steven Spielberg", "Person", neo4j_store)
    assert "alias of 'Steven Spielberg': fuzzy match" in lines[2] and lines[-1].startswith("same entity")
    lines = explain("Larry Wachowski", "Andy Wachowski", "Person", neo4j_store)
    assert lines[-1] == "different entities"


@pytest.mark.neo4j
def test_threshold_is_configurable_and_resolution_is_deterministic(neo4j_store: Neo4jStore) -> None:
    _seed(neo4j_store)
    strict = EntityResolver(neo4j_store, ResolutionConfig(threshold=0.99)).resolve(list(MERGES))
    assert strict[("Person", "Steven Speilberg")].reason == "new"
    loose = EntityResolver(neo4j_store, ResolutionConfig(threshold=0.8)).resolve(
        [("Person", "Larry Wachowski")]
    )
    assert loose[("Person", "Larry Wachowski")].canonical_name == "Andy Wachowski"
    fp = graph_fingerprint(neo4j_store)
    assert EntityResolver(neo4j_store, ResolutionConfig()).resolve(list(MERGES)) == EntityResolver(
        neo4j_store, ResolutionConfig()
    ).resolve(list(MERGES))
    assert graph_fingerprint(neo4j_store) == fp  # resolving alone writes nothing
