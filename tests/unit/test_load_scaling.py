"""The bounded paths of the load against their unbounded results, on small data (no services).

Issue 15: the load built everything in memory, asked the full-text index once per name
with unbatched key look-ups, scanned every entity for duplicates and pulled every node
and edge (vectors included) into Python for the fingerprint. Each bounded replacement is
checked here to give the same answer as the unbounded computation where the data fit
under the bounds: capped duplicate scan with a cap above the size, histogram statistics,
batched and budgeted resolution, streamed rows and the order-free fingerprint.
"""

from __future__ import annotations

import csv
import itertools
import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from enum import IntEnum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from kg_enhance.config.models import ResolutionConfig
from kg_enhance.errors import GraphStoreError
from kg_enhance.graph import bulk
from kg_enhance.graph.fingerprint import graph_fingerprint
from kg_enhance.graph.memory import InMemoryGraphStore
from kg_enhance.graph.quality import (
    degree_stats,
    distribution,
    distribution_from_counts,
    duplicate_candidates,
)
from kg_enhance.graph.resolve import (
    EntityResolver,
    Resolution,
    _LoadIndex,
    alias_rows,
    compatible,
    similarity,
)
from kg_enhance.graph.store import _batches
from kg_enhance.names import entity_key
from kg_enhance.ontology.models import load_ontology
from kg_enhance.stages.load import interaction_rows, item_rows
from kg_enhance.types import Fact, Item, QuarantineRecord
from tests.unit.test_store_contract import LLM_FACTS, gold_facts, load

REPO = Path(__file__).resolve().parents[2]
ONTOLOGY = load_ontology(REPO / "schemas" / "movies.yaml")

PEOPLE = [
    "Steven Spielberg",
    "Steven Speilberg",
    "Robert Zemeckis",
    "Robert Zemekis",
    "Andy Wachowski",
    "Larry Wachowski",
    "Lana Wachowski",
    "John Lasseter",
    "Jon Lasseter",
    "John Lasseter Jr",
    "Rocky Balboa II",
    "Rocky Balboa III",
    "Quentin Tarantino",
    "Quentin Tarrantino",
    "Christopher Nolan",
    "Christophe Nolan",
]


# -- statistics ------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(40))
def test_distribution_from_counts_equals_distribution_of_the_list(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.choice([1, 2, 3, 7, 50, 333])
    values = [int(v) for v in np.random.default_rng(seed).zipf(1.7, size=n) % 500]
    values += [0] * rng.randint(0, 5)
    assert distribution_from_counts(Counter(values)) == distribution(values)


def test_distribution_from_counts_of_nothing() -> None:
    assert distribution_from_counts({}) == distribution([]) == {"count": 0}
    assert distribution_from_counts({3: 0}) == {"count": 0}


def _degree_stats_from_rows(store: InMemoryGraphStore) -> dict[str, Any]:
    """The unbounded computation the load used before: one row per entity and per item, in Python."""
    entities = store.entity_degrees()
    items = store.item_fact_counts()
    by_type: dict[str, list[int]] = defaultdict(list)
    for row in entities:
        by_type[row["type"] or "?"].append(int(row["items"]))
    return {
        "items_per_entity": distribution([int(r["items"]) for r in entities]),
        "items_per_entity_by_type": {t: distribution(v) for t, v in sorted(by_type.items())},
        "entities_per_item": distribution([int(r["entities"]) for r in items]),
        "orphan_entities": sum(1 for r in entities if int(r["items"]) == 0 and int(r["users"]) == 0),
    }


def test_degree_stats_from_histograms_equal_the_per_row_ones() -> None:
    store = InMemoryGraphStore(namespace="s")
    load(store)
    assert degree_stats(store) == _degree_stats_from_rows(store)
    assert degree_stats(store)["items_per_entity"]["count"] == 25


def _people_store() -> InMemoryGraphStore:
    store = InMemoryGraphStore(namespace="d")
    store.ensure_schema(ONTOLOGY)
    store.write_items([{"item_id": "1", "props": {}}], item_label="Movie")
    facts = [
        Fact(head_id="1", relation="DIRECTED_BY", object=n, object_type="Person", source="x") for n in PEOPLE
    ]
    store.write_facts(facts, ONTOLOGY, job="j", run_id="r")
    return store


def test_capped_duplicate_scan_above_the_size_equals_the_uncapped_one() -> None:
    store = _people_store()
    uncapped = duplicate_candidates(store, threshold=0.8, min_chars=6)
    capped = duplicate_candidates(store, threshold=0.8, min_chars=6, max_entities=len(PEOPLE))
    assert uncapped.pairs and capped.pairs == uncapped.pairs
    assert (capped.status, capped.entities, capped.scanned) == ("full", len(PEOPLE), len(PEOPLE))
    pairs = {(p["a"], p["b"]) for p in uncapped.pairs}
    assert ("Steven Speilberg", "Steven Spielberg") in pairs and (
        "Christophe Nolan",
        "Christopher Nolan",
    ) in pairs


def test_capped_duplicate_scan_below_the_size_is_a_deterministic_sample() -> None:
    store = _people_store()
    first = duplicate_candidates(store, threshold=0.8, min_chars=6, max_entities=5)
    again = duplicate_candidates(store, threshold=0.8, min_chars=6, max_entities=5)
    assert (first.status, first.entities, first.scanned) == ("sampled", len(PEOPLE), 5)
    assert first == again
    full = {(p["key_a"], p["key_b"]) for p in duplicate_candidates(store, threshold=0.8, min_chars=6).pairs}
    assert {(p["key_a"], p["key_b"]) for p in first.pairs} <= full
    assert duplicate_candidates(store, threshold=0.8, min_chars=6, max_entities=0).scanned == 0


def test_duplicate_scan_of_new_entities_finds_their_pairs_against_every_entity() -> None:
    store = _people_store()
    full = duplicate_candidates(store, threshold=0.8, min_chars=6)
    new_key = full.pairs[0]["key_a"]
    only = duplicate_candidates(store, threshold=0.8, min_chars=6, only={new_key})
    assert (only.status, only.entities, only.scanned) == ("new", len(PEOPLE), 1)
    # exactly the pairs of the full scan that involve the new entity
    expected = [p for p in full.pairs if new_key in (p["key_a"], p["key_b"])]
    assert expected and only.pairs == expected
    assert duplicate_candidates(store, threshold=0.8, min_chars=6, only=set()).pairs == []


# -- resolution ------------------------------------------------------------------------------------
class CountingBackend:
    """A resolution backend that counts the calls (and the names in them) made to the store under it."""

    def __init__(self, store: InMemoryGraphStore) -> None:
        self.store = store
        self.calls: Counter[str] = Counter()
        self.names: Counter[str] = Counter()

    def existing_entities(self, keys: Sequence[str]) -> dict[str, str]:
        self.calls["existing_entities"] += 1
        self.names["existing_entities"] += len(keys)
        return self.store.existing_entities(keys)

    def entity_types_present(self, types: Sequence[str]) -> set[str]:
        self.calls["entity_types_present"] += 1
        return self.store.entity_types_present(types)

    def alias_targets(self, keys: Sequence[str]) -> dict[str, tuple[str, str]]:
        self.calls["alias_targets"] += 1
        return self.store.alias_targets(keys)

    def fulltext_candidates(
        self, rows: Sequence[dict[str, str]], *, limit: int
    ) -> dict[str, list[tuple[str, str]]]:
        self.calls["fulltext_candidates"] += 1
        self.names["fulltext_candidates"] += len(rows)
        return self.store.fulltext_candidates(rows, limit=limit)


def _graph_with_known_people() -> InMemoryGraphStore:
    store = InMemoryGraphStore(namespace="r")
    store.ensure_schema(ONTOLOGY)
    store.write_items([{"item_id": "1", "props": {}}], item_label="Movie")
    known = ["Steven Spielberg", "Robert Zemeckis", "Andy Wachowski"]
    facts = [
        Fact(head_id="1", relation="DIRECTED_BY", object=n, object_type="Person", source="x") for n in known
    ]
    store.write_facts(facts, ONTOLOGY, job="j", run_id="r0")
    return store


NAMES = [("Person", n) for n in PEOPLE] + [
    ("Theme", "Toys come to life"),
    ("Theme", "toys come to lifee"),
    ("Genre", "Comedy"),
    ("Person", "STEVEN SPIELBERG"),
]


def _brute_force(
    store: InMemoryGraphStore, names: list[tuple[str, str]], cfg: ResolutionConfig
) -> dict[str, Resolution]:
    """Per-name resolution with no blocking and no budget: every earlier new name is a candidate."""
    out: dict[str, Resolution] = {}
    new: list[str] = []
    for type_, name in names:
        key = entity_key(type_, name)
        if key in out:
            continue
        norm = key.split(":", 1)[1]
        existing = store.existing_entities([key])
        if key in existing:
            out[key] = Resolution(type_, name, key, key, existing[key], "entity")
            continue
        pool = []
        if len(norm) >= cfg.min_chars and type_ in store.entity_types_present([type_]):
            from kg_enhance.graph.resolve import fulltext_query

            pool += store.fulltext_candidates(
                [{"key": key, "type": type_, "query": fulltext_query(norm)}], limit=10
            ).get(key, [])
        pool += [(k, out[k].name) for k in new if k.split(":", 1)[0] == type_]
        best = None
        if len(norm) >= cfg.min_chars:
            for cand_key, cand_name in pool:
                cand_norm = cand_key.split(":", 1)[1]
                if compatible(norm, cand_norm, min_chars=cfg.min_chars):
                    score = similarity(norm, cand_norm)
                    if score >= cfg.threshold and (best is None or score > best[0]):
                        best = (score, cand_key, cand_name)
        if best is not None:
            score, cand_key, cand_name = best
            target = out[cand_key] if cand_key in out else None
            out[key] = Resolution(
                type_,
                name,
                key,
                target.canonical_key if target else cand_key,
                target.canonical_name if target else cand_name,
                "fuzzy",
                round(score, 4),
                cand_name,
            )
            continue
        out[key] = Resolution(type_, name, key, key, name, "new")
        new.append(key)
    return out


def test_batched_resolution_equals_per_name_resolution() -> None:
    cfg = ResolutionConfig(threshold=0.85)
    results = []
    for batch_size in (1, 3, 1000):
        store = _graph_with_known_people()
        results.append(EntityResolver(store, cfg, batch_size=batch_size).resolve(NAMES))
    assert results[0] == results[1] == results[2]
    reference = _brute_force(_graph_with_known_people(), NAMES, cfg)
    assert {pair: r for pair, r in results[0].items()} == {
        pair: _with(reference[entity_key(*pair)], pair[1]) for pair in NAMES
    }
    reasons = {pair[1]: r.reason for pair, r in results[0].items()}
    assert reasons["Steven Speilberg"] == "fuzzy" and reasons["Robert Zemekis"] == "fuzzy"
    assert reasons["Rocky Balboa III"] == "new"  # numbers disagree
    assert reasons["toys come to lifee"] == "fuzzy"  # matched within the load


def _with(res: Resolution, name: str) -> Resolution:
    return Resolution(
        res.type,
        name,
        res.key,
        res.canonical_key,
        res.canonical_name,
        res.reason,
        res.score,
        res.matched_name,
    )


def test_resolution_asks_the_store_once_per_batch() -> None:
    backend = CountingBackend(_graph_with_known_people())
    EntityResolver(backend, ResolutionConfig(), batch_size=5).resolve(NAMES)
    distinct = len({entity_key(*p) for p in NAMES})
    batches = math.ceil(distinct / 5)
    assert backend.calls["existing_entities"] == batches
    assert backend.calls["alias_targets"] == batches
    assert backend.calls["entity_types_present"] == 1
    assert backend.calls["fulltext_candidates"] <= batches
    # only names of a type the graph has entities of are looked up (Person, not Theme or Genre), and only new ones
    person_keys = {entity_key(t, n) for t, n in NAMES if t == "Person"}
    known = backend.store.existing_entities(sorted(person_keys))
    assert backend.names["fulltext_candidates"] == len(person_keys - set(known)) == 13


def test_in_load_candidates_are_bounded_and_find_one_edit_typos() -> None:
    index = _LoadIndex(budget=50)
    for n in range(3000):
        index.add("Person", f"Person:john doe{n}", f"john doe{n}", f"John Doe{n}")
    index.add("Person", "Person:john lasseter", "john lasseter", "John Lasseter")
    found = index.candidates("Person", "john lassetr")  # a common first name, then a typo
    assert len(found) <= 50
    assert ("Person:john lasseter", "John Lasseter") in found  # its rare blocks come first
    assert ("Person:john lasseter", "John Lasseter") in index.candidates("Person", "jonh lasseter")  # swap
    assert index.candidates("Theme", "john lasseter") == []


def test_a_large_load_makes_linearly_many_comparisons() -> None:
    """2,000 distinct names sharing common tokens: candidates per name stay under the budget."""
    rng = random.Random(3)
    first = ["john", "mary", "mark", "maria", "martin", "marco", "james", "jane"]
    names = [
        ("Person", f"{rng.choice(first)} {''.join(rng.choices('abcdefghij', k=7))}") for _ in range(2000)
    ]
    backend = CountingBackend(InMemoryGraphStore(namespace="x"))
    backend.store.ensure_schema(ONTOLOGY)
    sizes: list[int] = []
    original = _LoadIndex.candidates

    def spy(self: _LoadIndex, type_: str, norm: str) -> list[tuple[str, str]]:
        got = original(self, type_, norm)
        sizes.append(len(got))
        return got

    _LoadIndex.candidates = spy  # type: ignore[method-assign]
    try:
        EntityResolver(backend, ResolutionConfig(), max_load_candidates=40).resolve(names)
    finally:
        _LoadIndex.candidates = original  # type: ignore[method-assign]
    assert len(sizes) == len(dict.fromkeys(names)) and max(sizes) <= 40
    assert backend.calls["fulltext_candidates"] == 0  # nothing of the type in the graph yet: no look-ups


# -- streamed rows ---------------------------------------------------------------------------------
def test_interaction_rows_equal_the_per_row_dicts() -> None:
    df = pd.DataFrame(
        {
            "user_id": ["1", "1", "2", "3", "4"],
            "item_id": ["10", "11", "10", "12", "10"],
            "rating": [4.0, float("nan"), 3.5, 5.0, 1.0],
            "ts": [100.0, 200.0, float("nan"), 2.0**40, 7.0],
        }
    )
    expected = [
        {"user_id": "1", "item_id": "10", "rating": 4.0, "ts": 100},
        {"user_id": "1", "item_id": "11", "rating": None, "ts": 200},
        {"user_id": "2", "item_id": "10", "rating": 3.5, "ts": None},
        {"user_id": "3", "item_id": "12", "rating": 5.0, "ts": 2**40},
        {"user_id": "4", "item_id": "10", "rating": 1.0, "ts": 7},
    ]
    for chunk in (1, 2, 10):
        got = list(interaction_rows(df, chunk=chunk))
        assert got == expected
        assert all(type(r["ts"]) is int for r in got if r["ts"] is not None)
    big = pd.DataFrame({"user_id": ["u"], "item_id": ["i"], "rating": [1.0], "ts": [2**62 + 1]})
    assert next(interaction_rows(big))["ts"] == 2**62 + 1  # an int64 column stays exact


def test_store_batches_take_a_generator_one_batch_at_a_time() -> None:
    taken = 0

    def rows() -> Iterator[int]:
        nonlocal taken
        for n in range(10):
            taken += 1
            yield n

    batches = _batches(rows(), 4)
    assert next(batches) == [0, 1, 2, 3] and taken == 4
    assert list(batches) == [[4, 5, 6, 7], [8, 9]]


def test_item_rows_are_a_generator() -> None:
    items = [Item(item_id="1", title="A", text={}, properties={"year": "1995", "x": [1]})]
    rows = item_rows(items)
    assert not isinstance(rows, list)
    assert list(rows) == [{"item_id": "1", "props": {"year": "1995", "title": "A"}}]


# -- fingerprint -----------------------------------------------------------------------------------
class ShuffledStore:
    """The fingerprint's reads of a store, with the rows in another order."""

    def __init__(self, store: InMemoryGraphStore, seed: int) -> None:
        self.store, self.seed = store, seed

    def stream_fingerprint_nodes(self, exclude: Any) -> Iterator[dict[str, Any]]:
        rows = list(self.store.stream_fingerprint_nodes(exclude))
        random.Random(self.seed).shuffle(rows)
        return iter(rows)

    def stream_fingerprint_edges(self, types: Any, exclude: Any) -> Iterator[dict[str, Any]]:
        rows = list(self.store.stream_fingerprint_edges(types, exclude))
        random.Random(self.seed).shuffle(rows)
        return iter(rows)


def test_fingerprint_does_not_depend_on_row_order_and_counts_repeats() -> None:
    store = InMemoryGraphStore(namespace="f")
    load(store)
    expected = graph_fingerprint(store)
    for seed in range(3):
        assert graph_fingerprint(ShuffledStore(store, seed)) == expected  # type: ignore[arg-type]

    class Twice(ShuffledStore):
        def stream_fingerprint_edges(self, types: Any, exclude: Any) -> Iterator[dict[str, Any]]:
            rows = list(self.store.stream_fingerprint_edges(types, exclude))
            return iter(rows + rows[:1])

    doubled = graph_fingerprint(Twice(store, 0))  # type: ignore[arg-type]
    assert doubled.hash != expected.hash and doubled.edges == expected.edges + 1


class Level(IntEnum):
    HIGH = 3


class Text(str):
    pass


def test_fingerprint_lines_are_the_sorted_json_of_their_stable_values() -> None:
    """The lines hash the text ``json.dumps(..., sort_keys=True)`` gives (fingerprints stay comparable
    with those of earlier runs): floats by repr, lists element-wise, other values as text."""
    import json

    from kg_enhance.graph.fingerprint import IGNORED_PROPERTIES, edge_line, node_line

    def canonical(v: Any) -> Any:
        if isinstance(v, float):
            return repr(v)
        if isinstance(v, list):
            return [canonical(x) for x in v]
        return v if isinstance(v, (str, int, bool)) or v is None else str(v)

    def stable(props: dict[str, Any]) -> dict[str, Any]:
        return {k: canonical(v) for k, v in sorted(props.items()) if k not in IGNORED_PROPERTIES}

    store = InMemoryGraphStore(namespace="j")
    load(store)
    odd = {
        "z": 1.5,
        "a": [1, 2.0, "x", None, True],
        "ü": 'Amélie \u2028 "quoted" <script>',
        "flag": False,
        "none": None,
        "count": np.int64(3),
        "score": np.float32(0.25),
        "run_id": "volatile",
        "ns": "whose",
        "enum": Level.HIGH,
        "text": Text("a str subclass"),
        "f64": np.float64(2.5),
        "nan": float("nan"),
        "inf": float("-inf"),
        "nested": [[1.0, "a"], [True, None]],
        "mapping": {"b": 1, "a": 2.0},
    }
    nodes = [
        *store.stream_fingerprint_nodes(IGNORED_PROPERTIES),
        {"id": "item:x", "labels": ["Item", "A"], "props": odd},
    ]
    edges = [
        *store.stream_fingerprint_edges(("RECOMMENDED",), IGNORED_PROPERTIES),
        {"head": "item:x", "type": "T", "tail": "entity:y", "props": odd},
    ]
    assert len(nodes) > 5 and len(edges) > 5
    for row in nodes:
        assert node_line(row) == json.dumps(
            ["N", row["id"], sorted(row["labels"]), stable(row["props"])], sort_keys=True
        )
    for row in edges:
        assert edge_line(row) == json.dumps(
            ["E", row["head"], row["type"], row["tail"], stable(row["props"])], sort_keys=True
        )


def test_fingerprint_rows_leave_vectors_in_the_store() -> None:
    store = InMemoryGraphStore(namespace="v")
    load(store)
    before = graph_fingerprint(store)
    store.write_embeddings("item", [{"id": "1", "vector": [0.5, 0.25]}], model="m", run_id="e")
    assert graph_fingerprint(store) == before
    rows = list(store.stream_fingerprint_nodes({"embedding", "embedding_model", "embedding_run"}))
    assert rows and not any("embedding" in r["props"] for r in rows)


# -- bulk import files -----------------------------------------------------------------------------
def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_bulk_files_hold_what_the_transactional_writes_hold(tmp_path: Path) -> None:
    facts = gold_facts() + LLM_FACTS
    hostile = Fact(
        head_id="1",
        relation="HAS_THEME",
        object='toys "alive"\nagain',
        object_type="Theme",
        source="llm",
        evidence="",
    )
    facts = [*facts, hostile, hostile.model_copy(update={"confidence": 0.5})]  # the last write wins
    resolutions = EntityResolver(InMemoryGraphStore(), ResolutionConfig()).resolve(
        (f.object_type, f.object) for f in facts
    )
    interactions = pd.DataFrame(
        {
            "user_id": ["1", "1", "5"],
            "item_id": ["1", "1", "2"],
            "rating": [3.0, 4.5, float("nan")],
            "ts": [10.0, 11.0, float("nan")],
        }
    )
    graph = bulk.BulkGraph(
        namespace="ns",
        entity_namespace="ns",
        job="j",
        run_id="r1",
        ontology=ONTOLOGY,
        items=[{"item_id": i, "props": {"title": f"T{i}", "year": "1995"}} for i in ("1", "2", "6")],
        interactions=interactions,
        facts=facts,
        resolutions=resolutions,
        aliases=alias_rows(resolutions.values()),
        quarantine=[QuarantineRecord(item_id="2", attempts=3, errors=["bad; json", "x"], raw_output=None)],
    )
    files = bulk.write_import_files(graph, tmp_path / "import")
    assert files.multiline  # the newline in a name
    items = {r["item_id:ID(Item)"]: r for r in _read(tmp_path / "import" / "items.csv")}
    assert items["2"]["quarantine_errors:string[]"] == "bad; json\x1fx"
    assert items["1"]["quarantine_errors:string[]"] == "" and items["1"][":LABEL"] == "Item\x1fMovie"
    inter = _read(tmp_path / "import" / "interactions.csv")
    assert [(r["rating:double"], r["ts:long"]) for r in inter] == [("4.5", "11"), ("", "")]
    entities = {r["key:ID(Entity)"]: r for r in _read(tmp_path / "import" / "entities.csv")}
    assert entities["Person:john lasseter"]["name:string"] == "John Lasseter"  # the first name wins
    assert entities["Genre:comedy"]["vocabulary:boolean"] == "true"
    assert entities["Genre:comedy"][":LABEL"] == "Entity\x1fGenre"
    edges = [
        r for r in _read(tmp_path / "import" / "facts_item.csv") if r["object_name:string"] == hostile.object
    ]
    assert len(edges) == 1 and edges[0]["confidence:double"] == "0.5" and edges[0]["evidence:string"] == ""
    raw = (tmp_path / "import" / "facts_item.csv").read_text(encoding="utf-8")
    assert '"toys ""alive""\nagain"' in raw and ',"",' in raw  # quoted, quotes doubled; "" is an empty string
    # the same MERGE identity written transactionally: one edge, the last row's properties
    memory = InMemoryGraphStore(namespace="ns")
    memory.ensure_schema(ONTOLOGY)
    memory.seed_vocabulary(ONTOLOGY, run_id="r1")
    memory.write_items(graph.items, item_label="Movie")
    memory.write_users(interactions["user_id"])
    assert memory.write_facts(facts, ONTOLOGY, job="j", run_id="r1", resolutions=resolutions) == len(facts)
    edge_rows = [r for r in memory.fingerprint_edges([]) if r["props"].get("object_name") == hostile.object]
    assert len(edge_rows) == 1 and edge_rows[0]["props"]["confidence"] == 0.5
    fact_edges = sum(1 for r in memory.fingerprint_edges([]) if r["type"] not in ("INTERACTED", "ALIAS_OF"))
    assert fact_edges == files.counts["item_facts"] + files.counts["user_facts"]
    assert files.counts["entities"] == memory.counts_by_label()["Entity"]
    assert files.counts["users"] == memory.counts_by_label()["User"]


def test_bulk_refuses_catalog_columns_it_cannot_type(tmp_path: Path) -> None:
    base: dict[str, Any] = dict(
        namespace="n",
        entity_namespace="n",
        job="j",
        run_id="r",
        ontology=ONTOLOGY,
        interactions=None,
        facts=[],
        resolutions={},
        aliases=[],
    )
    mixed = [{"item_id": "1", "props": {"year": "1995"}}, {"item_id": "2", "props": {"year": 1995}}]
    with pytest.raises(GraphStoreError, match="several types"):
        bulk.write_import_files(bulk.BulkGraph(items=mixed, **base), tmp_path / "a")
    odd = [{"item_id": "1", "props": {"odd:name": "x"}}]
    with pytest.raises(GraphStoreError, match="cannot be a property column"):
        bulk.write_import_files(bulk.BulkGraph(items=odd, **base), tmp_path / "b")


def test_bulk_load_refuses_a_server_that_is_not_the_local_one(tmp_path: Path) -> None:
    from kg_enhance import api
    from tests.support.helpers import write_job

    job = write_job(tmp_path, llm_enabled=False)
    with pytest.raises(GraphStoreError, match="not the running project-managed local Neo4j") as info:
        api.bulk_load(job, overrides=["neo4j.uri=bolt://db.example.org:7687"])
    assert "\n" not in str(info.value)


def test_chunked_helpers_cover_every_row() -> None:
    assert [len(b) for b in _batches(itertools.repeat({}, 4001), 2000)] == [2000, 2000, 1]
