"""Incremental refresh (:mod:`kg_enhance.extract.delta`): a changed catalog is refreshed by content.

The job reads a copy of the first movies of the bundled demo (so a test can edit it), asks
a scripted OpenAI-compatible server about the first three (its requests are counted), and
loads into the in-memory store or, marked ``neo4j``, the real Neo4j. The claims checked:

* changing one item's text re-extracts that item only, and the graph afterwards has the
  namespace fingerprint of a full run over the changed catalog into an empty namespace;
* an item removed from the catalog is retired (node, facts, interactions gone) while another
  namespace of the same database keeps its fingerprint;
* ``kg-enhance diff`` predicts what the run then does.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kg_enhance import api
from kg_enhance.config.models import Neo4jConfig
from kg_enhance.graph.fingerprint import graph_fingerprint
from kg_enhance.graph.memory import InMemoryGraphStore, MemoryDatabase
from kg_enhance.graph.store import GraphStore, Neo4jStore
from tests.support.helpers import REPO
from tests.support.scripted_server import ScriptedServer, Step

DEMO = REPO / "kg_enhance" / "datasets" / "movielens_demo"
#: the catalog copy: the first movies of the demo
N_MOVIES = 12


def _answer(*facts: tuple[str, str, str]) -> Step:
    rows = [{"relation": r, "object": o, "object_type": t, "confidence": 0.9} for r, o, t in facts]
    return Step(text=json.dumps({"facts": rows}))


#: answers of the first run, in request order: movies 1 (Toy Story), 2 (Jumanji), 6 (Heat)
FIRST = [
    _answer(("DIRECTED_BY", "John Lasseter", "Person"), ("PRODUCED_IN", "USA", "Country")),
    _answer(("DIRECTED_BY", "Joe Johnston", "Person")),
    _answer(("DIRECTED_BY", "Michael Mann", "Person"), ("STARRING", "Al Pacino", "Person")),
]
#: the answer about Toy Story once its text changed: one fact kept, one replaced
CHANGED = _answer(("DIRECTED_BY", "John Lasseter", "Person"), ("STARRING", "Tom Hanks", "Person"))


def _copy_inputs(folder: Path, *, n: int = N_MOVIES) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    with (DEMO / "movies.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[:n]
    movies = folder / "movies.csv"
    _write_csv(movies, rows)
    ids = {r["movieId"] for r in rows}
    with (DEMO / "ratings.csv").open(newline="", encoding="utf-8") as f:
        ratings = [r for r in csv.DictReader(f) if r["movieId"] in ids]
    _write_csv(folder / "ratings.csv", ratings)
    return movies, folder / "ratings.csv"


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _edit_movies(path: Path, change: Callable[[list[dict[str, str]]], list[dict[str, str]]]) -> None:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    _write_csv(path, change(rows))


def _job(folder: Path, inputs: Path, *, url: str, name: str = "t", extra: str = "") -> Path:
    text = f"""
version: 1
name: {name}
ontology: {REPO / "schemas" / "movies.yaml"}
source:
  items:
    path: {inputs / "movies.csv"}
    id_column: movieId
    title_column: title
    text_fields: [title, genres]
    fact_columns:
      - {{column: genres, relation: HAS_GENRE, object_type: Genre, separator: "|"}}
  interactions:
    path: {inputs / "ratings.csv"}
    user_column: userId
    item_column: movieId
    rating_column: rating
    timestamp_column: timestamp
    positive_threshold: 4.0
  facts:
    - name: hetrec
      path: "@bundled/movielens_demo/gold_facts.tsv"
llm:
  base_url: {url}
  structured_output: json_schema
  item_limit: 3
  max_concurrency: 1
kge: {{dim: 8, epochs: 4}}
recommender: {{epochs: 3, dim: 8, models: [{{type: bpr_mf}}]}}
outputs:
  dir: {folder / "run"}
{extra}
"""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "job.yaml"
    path.write_text(text)
    return path


StoreFor = Callable[[str], GraphStore]


@pytest.fixture(params=["memory", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def store_for(request: pytest.FixtureRequest) -> Iterator[StoreFor]:
    """``store_for(namespace)``: a store of that namespace; all of one test share one database."""
    if request.param == "memory":
        db = MemoryDatabase()
        yield lambda ns: InMemoryGraphStore(db, namespace=ns)
        return
    config: Neo4jConfig = request.getfixturevalue("neo4j_config")
    request.getfixturevalue("neo4j_store")  # empties the test database
    opened: list[Neo4jStore] = []

    def make(ns: str) -> GraphStore:
        store = Neo4jStore(config, namespace=ns)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def _run(job: Path, store_for: StoreFor, ns: str, **kwargs: Any) -> Any:
    return api.run_job(job, progress=False, store_factory=lambda: store_for(ns), until="load", **kwargs)


def test_one_changed_description_re_extracts_that_item_only_and_equals_a_full_run(
    tmp_path: Path, store_for: StoreFor, state_home: Path
) -> None:
    movies, _ = _copy_inputs(tmp_path / "inputs")
    with ScriptedServer([*FIRST, CHANGED]) as server:
        job = _job(tmp_path / "a", tmp_path / "inputs", url=server.url)
        first = _run(job, store_for, "t")
        assert first.report["extract"]["llm_calls"] == 3
        assert first.report["graph"]["mode"] == "full"

        _edit_movies(
            movies,
            lambda rows: [
                {**r, "genres": r["genres"] + "|Drama"} if r["movieId"] == "1" else r for r in rows
            ],
        )
        predicted = api.diff(job)
        assert predicted["subjects"]["item"]["ids"] == {"changed": ["1"]}
        assert predicted["llm"]["calls"] == 1

        second = _run(job, store_for, "t")
        assert len(server.requests) == 4  # one more request: Toy Story only
        assert second.report["extract"]["llm_calls"] == 1
        assert second.report["graph"]["mode"] == "incremental"
        assert second.report["graph"]["refresh"]["items_written"] == 1
        assert second.report["delta"]["subjects"]["item"]["changed"] == 1
        incremental = graph_fingerprint(store_for("t"))

        # a full run over the changed catalog into an empty namespace (same endpoint: answers are cached)
        # (same job name: fact edges record it; another namespace)
        full_job = _job(tmp_path / "b", tmp_path / "inputs", url=server.url, extra="graph: {namespace: full}")
        fresh = _run(full_job, store_for, "full")
        assert fresh.report["extract"]["llm_calls"] == 0
        assert fresh.report["graph"]["mode"] == "full"
        assert graph_fingerprint(store_for("full")) == incremental
    store = store_for("t")
    assert ("item:1", "STARRING", "entity:Person:tom hanks") in store.item_fact_triples(["llm"])
    assert not any(t[2] == "entity:Country:usa" for t in store.item_fact_triples(["llm"]))


def test_a_removed_item_is_retired_and_another_namespace_is_untouched(
    tmp_path: Path, store_for: StoreFor, state_home: Path
) -> None:
    movies, _ = _copy_inputs(tmp_path / "inputs")
    with ScriptedServer([*FIRST, *FIRST]) as server:
        other = _job(tmp_path / "other", tmp_path / "inputs", url=server.url, name="other")
        _run(other, store_for, "other")
        before = graph_fingerprint(store_for("other"))
        job = _job(tmp_path / "a", tmp_path / "inputs", url=server.url)
        _run(job, store_for, "t")
        calls = len(server.requests)

        _edit_movies(movies, lambda rows: [r for r in rows if r["movieId"] != "6"])
        second = _run(job, store_for, "t")
        # GoldenEye, fourth in the catalog, moved into llm.item_limit: the only subject to ask about
        assert len(server.requests) == calls + 1
        assert second.report["extract"]["llm_calls"] == 1
        refresh = second.report["graph"]["refresh"]
        assert refresh["items_retired"] == 1 and refresh["items_written"] == 0
        assert second.report["delta"]["subjects"]["item"]["removed"] == 1
        assert second.report["delta"]["subjects"]["item"]["changed"] == 1
    store = store_for("t")
    assert not any(h == "item:6" for h, _, _ in store.item_fact_triples())
    assert not any(i == "6" for _, i, _, _ in store.interactions())
    assert graph_fingerprint(store_for("other")) == before
    # the retired item's own entities went with it (Al Pacino was only Heat's), shared ones stay
    keys = {e["key"] for e in store.entity_keys()}
    assert "Person:al pacino" not in keys
    assert "Person:john lasseter" in keys
