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
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from kg_enhance import api
from kg_enhance.cli import main
from kg_enhance.config.models import Neo4jConfig
from kg_enhance.graph.fingerprint import graph_fingerprint
from kg_enhance.graph.memory import InMemoryGraphStore, MemoryDatabase
from kg_enhance.graph.store import GraphStore, Neo4jStore
from kg_enhance.rundir import RunDir
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


def _job(
    folder: Path,
    inputs: Path,
    *,
    url: str,
    name: str = "t",
    extra: str = "",
    llm_enabled: bool = True,
    kge: str = "{dim: 8, epochs: 4}",
    recommender: str = "{epochs: 3, dim: 8, models: [{type: bpr_mf}]}",
) -> Path:
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
  enabled: {str(llm_enabled).lower()}
  base_url: {url}
  structured_output: json_schema
  item_limit: 3
  max_concurrency: 1
kge: {kge}
recommender: {recommender}
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
        shown = CliRunner().invoke(main, ["diff", str(job)])
        assert shown.exit_code == 0, shown.output
        assert "items: 0 new, 1 changed, 11 unchanged, 0 removed" in shown.output
        assert "  changed: 1\n" in shown.output and "LLM: 1 calls" in shown.output

        second = _run(job, store_for, "t")
        assert len(server.requests) == 4  # one more request: Toy Story only
        assert second.report["extract"]["llm_calls"] == 1
        # gold quality: the full run scored its 3 items, the incremental one the item it asked
        quality = {
            r.report["extract"]["quality_scope"]: r.report["extract"]["quality"]["hetrec"]
            for r in (first, second)
        }
        assert {scope: (q["items"], q["overall"]["matched"]) for scope, q in quality.items()} == {
            "every extracted item (3)": (3, 4),
            "the 1 item(s) asked in this incremental run": (1, 1),
        }
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


def test_a_changed_fact_file_rewrites_only_the_subjects_whose_facts_changed(
    tmp_path: Path, store_for: StoreFor, state_home: Path
) -> None:
    """A fact file that changes is compared subject by subject with the last load: only the items whose
    facts from it changed (edited, gone, added to) are rewritten, and the graph equals a full load's."""
    _copy_inputs(tmp_path / "inputs")
    gold = tmp_path / "inputs" / "gold.tsv"
    lines = (REPO / "kg_enhance" / "datasets" / "movielens_demo" / "gold_facts.tsv").read_text(
        encoding="utf-8"
    )
    gold.write_text(lines, encoding="utf-8")

    def job_at(folder: Path, **kwargs: Any) -> Path:
        job = _job(folder, tmp_path / "inputs", url="http://127.0.0.1:9/v1", llm_enabled=False, **kwargs)
        job.write_text(job.read_text().replace("@bundled/movielens_demo/gold_facts.tsv", str(gold)))
        return job

    job = job_at(tmp_path / "a")
    first = _run(job, store_for, "t")
    assert first.report["graph"]["mode"] == "full"
    rows = lines.splitlines()
    edited = [
        r.replace("John Lasseter", "Pete Docter") if r.startswith("1\t") else r
        for r in rows
        if not r.startswith("2\t")  # item 2 loses every fact from the file
    ] + ["6\tPRODUCED_IN\tFrance\tCountry"]  # item 6 gains one
    gold.write_text("\n".join(edited) + "\n", encoding="utf-8")

    second = _run(job, store_for, "t")
    refresh = second.report["graph"]["refresh"]
    assert second.report["graph"]["mode"] == "incremental"
    assert refresh["fact_files_rewritten"] == [] and refresh["fact_file_subjects_rewritten"] == {"hetrec": 3}
    assert second.report["graph"]["facts_written"] < first.report["graph"]["facts_written"] // 4
    triples = set(store_for("t").item_fact_triples(["hetrec"]))
    assert ("item:1", "DIRECTED_BY", "entity:Person:pete docter") in triples
    assert not any(t[0] == "item:1" and t[2] == "entity:Person:john lasseter" for t in triples)
    assert not any(t[0] == "item:2" for t in triples)
    assert ("item:6", "PRODUCED_IN", "entity:Country:france") in triples
    incremental = graph_fingerprint(store_for("t"))

    fresh = _run(job_at(tmp_path / "b", extra="graph: {namespace: full}"), store_for, "full")
    assert fresh.report["graph"]["mode"] == "full"
    assert graph_fingerprint(store_for("full")) == incremental


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


# -- warm start -----------------------------------------------------------------------------------
def _triples(n_items: int, *, extra: int = 0) -> list[tuple[str, str, str]]:
    """A small KG: items with genres and directors; ``extra`` more items with a new director."""
    out = []
    for i in range(n_items + extra):
        out.append((f"item:{i}", "HAS_GENRE", f"entity:Genre:g{i % 4}"))
        out.append((f"item:{i}", "DIRECTED_BY", f"entity:Person:p{i % 7 if i < n_items else 'new'}"))
    return out


def test_kge_warm_start_carries_vectors_of_entities_that_still_exist() -> None:
    from pykeen.triples import TriplesFactory

    from kg_enhance.config.models import KGEConfig
    from kg_enhance.kge.train import build_model, train_kge, warm_start_model

    config = KGEConfig(dim=8, epochs=3, test_ratio=0, seed=3)
    before = train_kge(_triples(30), config, progress=False)
    assert before.metadata["warm_start"] is None  # trained from scratch
    before.metadata["version"] = "v1"

    triples = sorted(set(_triples(30, extra=2)))
    entities = sorted({h for h, _, _ in triples} | {t for _, _, t in triples})
    entity_to_id = {e: i for i, e in enumerate(entities)}
    relation_to_id = {"DIRECTED_BY": 0, "HAS_GENRE": 1}
    tf = TriplesFactory.from_labeled_triples(
        np.array(triples, dtype=str), entity_to_id=entity_to_id, relation_to_id=relation_to_id
    )
    cold = build_model(config, tf).entity_representations[0](indices=None).detach().numpy()
    model = build_model(config, tf)
    carried = warm_start_model(model, before, entity_to_id, relation_to_id)
    rows = carried.pop("rows")
    assert rows.entities.sum() == len(before.entity_to_id) and not rows.entities[entity_to_id["item:30"]]
    assert carried == {
        "carried": True,
        "entities": len(before.entity_to_id),
        "new_entities": 3,  # item:30, item:31, entity:Person:pnew
        "relations": 2,
        "new_relations": 0,
    }
    start = model.entity_representations[0](indices=None).detach().numpy()
    kept = entity_to_id["entity:Person:p3"]
    np.testing.assert_allclose(start[kept], before.vector("entity:Person:p3"), rtol=1e-6)
    new = entity_to_id["entity:Person:pnew"]
    np.testing.assert_allclose(start[new], cold[new])  # a new entity is initialised as PyKEEN does
    assert not np.allclose(start[kept], cold[kept])

    warm = train_kge(triples, config, progress=False, warm_from=before)
    assert warm.metadata["warm_start"]["from"] == "v1"
    assert warm.metadata["warm_start"]["epochs_allowed"] == 1  # ceil(3 x 0.3)
    assert warm.metadata["epochs_run"] == 1
    # training starts from the carried vectors (PyKEEN itself would re-initialise every parameter when
    # training starts): with a tiny learning rate they barely move
    still = train_kge(
        triples, config.model_copy(update={"learning_rate": 1e-7}), progress=False, warm_from=before
    )
    np.testing.assert_allclose(still.vector("entity:Person:p3"), before.vector("entity:Person:p3"), atol=1e-4)


def test_the_hash_split_keeps_each_triple_on_its_side_and_never_holds_out_a_carried_training_triple() -> None:
    from kg_enhance.kge.split import TRAIN, hash_split

    before = np.array(_triples(60), dtype=object)
    first = hash_split(before, ratio=0.1, seed=5)
    assert set(np.unique(first.side)) == {0, 1, 2}
    trained = before[first.side == TRAIN]
    # every entity and relation keeps a training triple (PyKEEN's condition), some only by a forced move
    assert set(trained[:, 0]) | set(trained[:, 2]) == set(before[:, 0]) | set(before[:, 2])
    assert set(trained[:, 1]) == set(before[:, 1]) and first.forced.any()
    # items 0..59 each have two triples: an item whose both triples hashed out has one moved back
    again = hash_split(before, ratio=0.1, seed=5)
    assert np.array_equal(first.side, again.side)  # depends on nothing but the triples and the seed
    assert not np.array_equal(first.side, hash_split(before, ratio=0.1, seed=6).side)

    # the graph grows: one more genre triple for every item. Without the previous run's forced keys
    # an item covered by a forced move may now be covered by its new triple, and the forced triple
    # (which the previous vectors were trained on) would be held out; with them it stays in training.
    grown = np.array(
        _triples(60) + [(f"item:{i}", "HAS_GENRE", f"entity:Genre:g{(i + 1) % 4}") for i in range(60)],
        dtype=object,
    )
    previous_training = {tuple(t) for t in trained}
    forgetful = hash_split(grown, ratio=0.1, seed=5)
    sticky = hash_split(grown, ratio=0.1, seed=5, sticky=first.forced_keys())
    held_out = {tuple(t) for t in grown[sticky.side != TRAIN]}
    assert not held_out & previous_training
    assert {tuple(t) for t in grown[forgetful.side != TRAIN]} & previous_training  # the leak it prevents
    # a triple forced in neither run keeps its hash side
    old = np.arange(len(before))
    neither = ~first.forced & ~sticky.forced[old]
    assert np.array_equal(sticky.side[old][neither], first.side[neither]) and neither.sum() > 100


def test_kge_warm_start_needs_the_same_hash_split_and_fold_in_trains_only_new_rows(tmp_path: Path) -> None:
    from kg_enhance.config.models import KGEConfig
    from kg_enhance.kge.artifacts import load_embeddings_dir, save_embeddings
    from kg_enhance.kge.train import train_kge

    config = KGEConfig(model="DistMult", dim=8, epochs=6, eval_every=2, seed=3, warm_start_epochs=0.5)
    first = train_kge(_triples(60), config, progress=False)
    assert first.metadata["split"]["kind"] == "hash" and first.forced_keys is not None
    save_embeddings(first, tmp_path, version="v1")
    before = load_embeddings_dir(tmp_path)  # the forced keys travel with the artifact
    assert before.forced_keys is not None and np.array_equal(before.forced_keys, first.forced_keys)

    grown = _triples(60, extra=3)  # three new items and a new director
    for other, why in (
        (config.model_copy(update={"split": "random"}), "kge.split is random"),
        (config.model_copy(update={"seed": 4}), "split hash \\(seed 3"),
    ):
        refused = train_kge(grown, other, progress=False, warm_from=before).metadata["warm_start"]
        assert refused["carried"] is False and re.search(why, refused["reason"])

    folded = train_kge(
        grown,
        config.model_copy(update={"warm_start_mode": "fold_in", "fold_in_eval_max_triples": 2}),
        progress=False,
        warm_from=before,
    )
    warm = folded.metadata["warm_start"]
    assert warm["carried"] and warm["mode"] == "fold_in" and warm["new_entities"] == 4
    # early stopping ranks only validation triples of new rows; the test ranking is capped for a fold-in
    test_triples = folded.metadata["test_triples"]
    assert f"test 2 of {test_triples} triples (seeded sample)" in folded.metadata["evaluation"]
    assert "validation (fold-in: triples touching a new entity or relation)" in folded.metadata["evaluation"]
    assert warm["fold_in_validation_triples"] <= 6  # of the 6 triples of new items (about 12 validate)
    # only the training triples of the new items (each has a genre and a director triple) are fitted
    assert 0 < warm["fold_in_triples"] <= 6 and folded.metadata["epochs_run"] >= 1
    # every carried vector is exactly where it was (the unit-norm constraint re-applied is undone)
    for label, row in before.entity_to_id.items():
        np.testing.assert_allclose(folded.vector(label), before.entity_vectors[row], atol=1e-6)
    np.testing.assert_array_equal(
        folded.relation_vectors[[folded.relation_to_id[r] for r in before.relation_to_id]],
        before.relation_vectors[list(before.relation_to_id.values())],
    )
    # the new rows do train: with a vanishing learning rate they end elsewhere
    still = train_kge(
        grown,
        config.model_copy(update={"warm_start_mode": "fold_in", "learning_rate": 1e-9}),
        progress=False,
        warm_from=before,
    )
    assert not np.allclose(folded.vector("entity:Person:pnew"), still.vector("entity:Person:pnew"), atol=1e-4)
    # the continue mode moves carried vectors too
    continued = train_kge(grown, config, progress=False, warm_from=before)
    assert continued.metadata["warm_start"]["mode"] == "continue"
    assert not np.allclose(continued.vector("entity:Person:p3"), before.vector("entity:Person:p3"))
    # nothing new: nothing is trained, the carried vectors are the model, and it is still evaluated
    same = train_kge(
        _triples(60),
        config.model_copy(update={"warm_start_mode": "fold_in"}),
        progress=False,
        warm_from=before,
    )
    assert same.metadata["epochs_run"] == 0 and same.metadata["warm_start"]["fold_in_triples"] == 0
    # no triple touches a new row: nothing to validate, no early-stopping round, still a test ranking
    assert same.metadata["warm_start"]["fold_in_validation_triples"] == 0
    assert same.metadata["validation_evaluations"] == 0
    np.testing.assert_allclose(same.entity_vectors, before.entity_vectors, atol=1e-6)
    assert same.metrics["mrr"] is not None


def test_warm_start_in_the_pipeline_and_full_trains_from_scratch(tmp_path: Path, state_home: Path) -> None:
    _copy_inputs(tmp_path / "inputs", n=40)
    job = _job(
        tmp_path / "a",
        tmp_path / "inputs",
        url="http://127.0.0.1:9/v1",
        llm_enabled=False,
        kge="{dim: 8, epochs: 4, eval_every: 1, warm_start_epochs: 0.5}",
        recommender="{epochs: 4, dim: 8, warm_start_epochs: 0.5, models: [{type: bpr_mf}, {type: kg_bpr}]}",
    )
    db = MemoryDatabase()

    def run(**kwargs: Any) -> Any:
        return api.run_job(
            job, progress=False, store_factory=lambda: InMemoryGraphStore(db, namespace="t"), **kwargs
        )

    first = run()
    assert first.report["kge"]["warm_start"] is None
    assert first.report["recommend"]["warm_start"] is None
    second = run()
    kge = second.report["kge"]["warm_start"]
    assert kge["from"] == first.run_id and kge["carried"] and kge["epochs_allowed"] == 2
    assert kge["entities"] == first.report["kge"]["entities"] and kge["new_entities"] == 0
    assert second.report["kge"]["epochs_run"] <= 2
    rec = second.report["recommend"]["warm_start"]
    assert rec["bpr_mf"]["from"] == first.run_id
    assert rec["bpr_mf"]["users"] == first.report["recommend"]["split"]["users"]
    assert second.report["recommend"]["bpr_mf"]["epochs"] <= 2
    # a best epoch <= 2 is within the first 3 evaluations, but a warm start began from trained weights
    assert second.report["kge"]["stopped_too_early"] is False
    assert second.report["recommend"]["bpr_mf"]["stopped_too_early"] is False
    delta = second.report["delta"]
    assert delta["mode"] == "incremental" and delta["last_full_run_id"] == first.run_id
    assert set(delta["seconds_saved"]) == {"extract", "load", "embed", "recommend", "export"}
    assert delta["warm_start"]["kge"]["from"] == first.run_id

    full = run(full=True)
    assert full.report["kge"]["warm_start"] is None
    assert full.report["recommend"]["warm_start"] is None
    assert full.report["delta"]["mode"] == "full"
    assert full.report["graph"]["mode"] == "full"


@pytest.mark.parametrize("split", ["user_random", "user_hash"])
def test_a_warm_start_that_would_evaluate_on_its_training_data_is_refused(
    tmp_path: Path, state_home: Path, split: str
) -> None:
    """New interactions reshuffle a ``user_random`` split: the previous model has trained on some of
    the new validation and test pairs, so it must not be warm-started (its metrics would be
    inflated). ``user_hash`` keeps every old pair on its side: the warm start is safe and taken."""
    _, ratings = _copy_inputs(tmp_path / "inputs", n=40)
    with ratings.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    _write_csv(ratings, rows[:-60])  # the first run misses the last 60 ratings
    job = _job(
        tmp_path / "a",
        tmp_path / "inputs",
        url="http://127.0.0.1:9/v1",
        llm_enabled=False,
        recommender=f"{{epochs: 3, dim: 8, split: {split}, models: [{{type: bpr_mf}}]}}",
    )
    db = MemoryDatabase()

    def run() -> Any:
        return api.run_job(job, progress=False, store_factory=lambda: InMemoryGraphStore(db, namespace="t"))

    first = run()
    run_dir = RunDir(tmp_path / "a" / "run")
    assert run_dir.train_pairs.exists()
    trained = pd.read_parquet(run_dir.train_pairs)
    assert len(trained) == first.report["recommend"]["split"]["train"]
    _write_csv(ratings, rows)  # the 60 ratings arrive
    second = run()
    warm = second.report["recommend"]["warm_start"]
    held = second.report["recommend"]["split"]["valid"] + second.report["recommend"]["split"]["test"]
    if split == "user_random":
        assert warm is not None and "refused" in warm and "bpr_mf" not in warm
        assert f"of this split's {held:,} validation and test interactions" in warm["refused"]
        assert second.report["recommend"]["bpr_mf"]["warm_start"] is None  # trained from scratch
    else:
        assert warm is not None and "refused" not in warm and warm["bpr_mf"]["from"] == first.run_id
    # what the first model trained on is never held out in the second split when the warm start ran
    if warm is not None and "bpr_mf" in warm:
        split_now = recommend_split_pairs(ratings, tmp_path / "inputs" / "movies.csv", split)
        assert not split_now & set(zip(trained["user_id"], trained["item_id"], strict=True))


def test_a_user_hash_user_newly_past_min_positives_keeps_old_training_pairs_in_training(
    tmp_path: Path, state_home: Path
) -> None:
    """``user_hash`` keeps users with fewer than 3 positives in training only. When a new rating takes
    one past that, a pair it trained on may hash to validation or test: it stays in training (sticky),
    the warm start is taken, and nothing the previous model trained on is held out."""
    from kg_enhance.rec.data import hash_sides

    _, ratings = _copy_inputs(tmp_path / "inputs", n=40)
    with ratings.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    seed = 7  # recommender.seed's default, which the job keeps
    positive = [r for r in rows if float(r["rating"]) >= 4.0]
    by_user = pd.DataFrame(positive).groupby("userId")
    # a user with >= 3 positives, two of which are chosen so that at least one hashes to held-out
    for candidate, group in by_user:
        sides = hash_sides(group["userId"], group["movieId"], seed=seed)
        held, kept = group[sides > 0], group[sides == 0]
        if len(group) >= 3 and len(held) >= 1 and len(kept) >= 1:
            first_two = {held.iloc[0]["movieId"], kept.iloc[0]["movieId"]}
            user = str(candidate)
            break
    else:
        raise AssertionError("no suitable user in the test data")
    before = [r for r in rows if r["userId"] != user or float(r["rating"]) < 4.0 or r["movieId"] in first_two]
    _write_csv(ratings, before)
    job = _job(
        tmp_path / "a",
        tmp_path / "inputs",
        url="http://127.0.0.1:9/v1",
        llm_enabled=False,
        recommender="{epochs: 3, dim: 8, split: user_hash, models: [{type: bpr_mf}]}",
    )
    db = MemoryDatabase()

    def run() -> Any:
        return api.run_job(job, progress=False, store_factory=lambda: InMemoryGraphStore(db, namespace="t"))

    first = run()
    run_dir = RunDir(tmp_path / "a" / "run")
    trained = set(
        zip(*pd.read_parquet(run_dir.train_pairs)[["user_id", "item_id"]].T.to_numpy(), strict=True)
    )
    assert {(user, m) for m in first_two} <= trained  # 2 positives: training only
    _write_csv(ratings, rows)  # the user's other positives arrive
    second = run()
    warm = second.report["recommend"]["warm_start"]
    assert "refused" not in warm and warm["bpr_mf"]["from"] == first.run_id
    assert warm["kept_in_training"] >= 1
    now = pd.read_parquet(run_dir.train_pairs)
    assert trained <= set(zip(now["user_id"], now["item_id"], strict=True))  # sticky
    split = second.report["recommend"]["split"]
    assert split["train"] == len(now)


def recommend_split_pairs(ratings: Path, movies: Path, kind: str) -> set[tuple[str, str]]:
    """The (user id, item id) validation and test pairs of the stage's split, recomputed from the files."""
    from kg_enhance.config.models import RecommenderConfig
    from kg_enhance.rec.data import make_split, positives

    df = pd.read_csv(ratings, dtype=str).rename(
        columns={"userId": "user_id", "movieId": "item_id", "timestamp": "ts"}
    )
    df["rating"], df["ts"] = df["rating"].astype(float), df["ts"].astype(int)
    catalog = pd.read_csv(movies, dtype=str)["movieId"].tolist()
    s = make_split(positives(df, 4.0), kind=kind, seed=RecommenderConfig().seed, item_ids=catalog)
    return {(s.user_ids[u], s.item_ids[i]) for u, i in [*s.valid.tolist(), *s.test.tolist()]}


def test_recommender_warm_start_copies_rows_by_id() -> None:
    import torch

    from kg_enhance.rec.data import Split
    from kg_enhance.rec.models import rec_model_resolver
    from kg_enhance.rec.train import WarmStart

    empty = np.zeros((0, 2), dtype=np.int64)
    old = rec_model_resolver.lookup("bpr_mf")(3, 2, 4)
    warm = WarmStart(
        state={k: v.clone() for k, v in old.state_dict().items()},
        user_ids=["u1", "u2", "u3"],
        item_ids=["a", "b"],
        entity_keys=[],
        source="r1",
    )
    split = Split(user_ids=["u0", "u2", "u3"], item_ids=["b", "c"], train=empty, valid=empty, test=empty)
    torch.manual_seed(0)
    new = rec_model_resolver.lookup("bpr_mf")(3, 2, 4)
    fresh_u0 = new.user.weight[0].detach().clone()
    assert warm.apply(new, split, None) == {"from": "r1", "users": 2, "items": 1}
    with torch.no_grad():
        assert torch.equal(new.user.weight[1], old.user.weight[1])  # u2
        assert torch.equal(new.user.weight[2], old.user.weight[2])  # u3
        assert torch.equal(new.item.weight[0], old.item.weight[1])  # b
        assert torch.equal(new.user.weight[0], fresh_u0)  # u0 is new: its fresh initialisation stays


def test_facts_older_than_refresh_after_are_re_extracted_oldest_first_within_the_budget(
    tmp_path: Path, state_home: Path
) -> None:
    import pandas as pd

    _copy_inputs(tmp_path / "inputs")
    db = MemoryDatabase()
    newer_heat = _answer(("DIRECTED_BY", "Michael Mann", "Person"), ("STARRING", "Robert De Niro", "Person"))
    with ScriptedServer([*FIRST, newer_heat]) as server:
        job = _job(tmp_path / "a", tmp_path / "inputs", url=server.url)
        _run(job, lambda ns: InMemoryGraphStore(db, namespace=ns), "t")
        # let time pass: Jumanji's facts are 100 days old, Heat's 200, Toy Story's fresh
        run = api.run_dir(job)
        table = pd.read_parquet(run.delta_subjects)
        day = 86400.0
        now = float(table["answered_at"].max())
        table.loc[table["id"] == "2", "answered_at"] = now - 100 * day
        table.loc[table["id"] == "6", "answered_at"] = now - 200 * day
        table.to_parquet(run.delta_subjects, index=False)

        # 90 days: two subjects are stale; a budget of one call (15 tokens each) refreshes the oldest only
        aged = job.with_name("aged.yaml")
        aged.write_text(
            job.read_text().replace(
                "  item_limit: 3\n", "  item_limit: 3\n  refresh_after: 90d\n  budget_tokens: 1\n"
            )
        )
        predicted = api.diff(aged)
        assert predicted["subjects"]["item"]["ids"] == {"stale": ["6", "2"]}
        assert predicted["staleness"]["facts_older_than_limit"] == 3  # Jumanji 1 + Heat 2

        second = _run(aged, lambda ns: InMemoryGraphStore(db, namespace=ns), "t")
        assert len(server.requests) == 4  # the cached answer about Heat was not reused
        delta = second.report["delta"]
        assert delta["staleness"] == {
            "refresh_after": "90d",
            "facts_older_than_limit": 3,
            "subjects_older_than_limit": 2,
        }
        assert delta["subjects"]["item"]["refreshed"] == 1 and delta["subjects"]["item"]["pending"] == 1
        store = InMemoryGraphStore(db, namespace="t")
        triples = store.item_fact_triples(["llm"])
        assert ("item:6", "STARRING", "entity:Person:robert de niro") in triples
        assert ("item:6", "STARRING", "entity:Person:al pacino") not in triples
        assert ("item:2", "DIRECTED_BY", "entity:Person:joe johnston") in triples  # pending: kept
        after = pd.read_parquet(run.delta_subjects).set_index("id")
        assert after.loc["6", "answered_at"] > now - day
        assert after.loc["2", "answered_at"] == now - 100 * day  # still stale: asked on the next run


def test_a_graph_cleared_outside_the_job_is_loaded_in_full_again(
    tmp_path: Path, store_for: StoreFor, state_home: Path
) -> None:
    _copy_inputs(tmp_path / "inputs")
    with ScriptedServer(list(FIRST)) as server:
        job = _job(tmp_path / "a", tmp_path / "inputs", url=server.url)
        _run(job, store_for, "t")
        loaded = graph_fingerprint(store_for("t"))
        store_for("t").clear_namespace()
        again = _run(job, store_for, "t")
    assert again.report["extract"]["delta_mode"] == "incremental"  # nothing changed in the inputs...
    assert again.report["graph"]["mode"] == "full"  # ...but the graph did: the load writes it all again
    assert "no longer matches" in again.report["graph"]["refresh"]["reason"]
    assert graph_fingerprint(store_for("t")) == loaded


def test_refresh_after_is_a_duration() -> None:
    from pydantic import ValidationError

    from kg_enhance.config.models import LLMConfig

    assert LLMConfig(refresh_after="90d").refresh_after_s == 90 * 86400
    assert LLMConfig(refresh_after="12h").refresh_after_s == 12 * 3600
    assert LLMConfig().refresh_after_s is None
    with pytest.raises(ValidationError, match="refresh_after"):
        LLMConfig(refresh_after="3 months")


def test_kge_fold_in_writes_back_only_new_vectors_and_the_graph_holds_the_artifact(
    tmp_path: Path, state_home: Path
) -> None:
    """A fold-in's carried vectors equal the previous artifact's bit for bit: the graph keeps them and
    only the run that holds them changes; new items' vectors are written. Afterwards every node's
    vector is the new artifact's, marked with the new run (nothing left from the old run)."""
    from kg_enhance.kge.artifacts import load_embeddings_dir

    movies, _ = _copy_inputs(tmp_path / "inputs", n=41)
    _edit_movies(movies, lambda rows: rows[:-2])
    job = _job(
        tmp_path / "a",
        tmp_path / "inputs",
        url="http://127.0.0.1:9/v1",
        llm_enabled=False,
        kge="{dim: 8, epochs: 4, eval_every: 1, warm_start_mode: fold_in}",
        recommender="{epochs: 1, dim: 8, models: [{type: bpr_mf}]}",
    )
    db = MemoryDatabase()

    def run() -> Any:
        return api.run_job(
            job, progress=False, until="embed", store_factory=lambda: InMemoryGraphStore(db, namespace="t")
        )

    first = run()
    assert first.report["kge"]["written_back"]["unchanged_item"] == 0
    _copy_inputs(tmp_path / "inputs", n=41)  # the two movies come back
    second = run()
    kge = second.report["kge"]
    assert kge["warm_start"]["mode"] == "fold_in" and kge["warm_start"]["new_entities"] >= 2
    back = kge["written_back"]
    assert back["item"] == 2 and back["unchanged_item"] == 39
    assert back["entity"] + back["unchanged_entity"] == first.report["kge"]["written_back"]["entity"] + (
        kge["warm_start"]["new_entities"] - 2
    )
    emb = load_embeddings_dir(RunDir(tmp_path / "a" / "run").embeddings)
    store = InMemoryGraphStore(db, namespace="t")
    nodes = [r for r in store.fingerprint_nodes() if "embedding" in r["props"]]
    assert len(nodes) == back["item"] + back["unchanged_item"] + back["entity"] + back["unchanged_entity"]
    for row in nodes:
        assert row["props"]["embedding_run"] == second.run_id
        np.testing.assert_array_equal(
            np.asarray(row["props"]["embedding"], dtype=np.float32), emb.vector(row["id"])
        )
