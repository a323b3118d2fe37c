"""The stages as typed components, run on the in-memory graph store and on the real Neo4j.

The same job runs through ``run_job(..., store_factory=...)`` on both stores: every stage
returns its typed result, the report keeps its keys, and the load stage's result is the
same on both (so the in-memory store cannot drift from Neo4j).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kg_enhance import api
from kg_enhance.graph.fingerprint import graph_fingerprint
from kg_enhance.graph.memory import InMemoryGraphStore
from kg_enhance.graph.store import GraphStore
from kg_enhance.pipeline import RunResult
from kg_enhance.stages import EmbedResult, ExportResult, ExtractResult, LoadResult, RecommendResult
from tests.support.helpers import JOB_NAME, write_job

SMALL = "\nkge: {dim: 8, epochs: 5}\n"

#: report keys of each section before the stages became typed components (issue: no key changes)
REPORT_KEYS = {
    "extract": {"items", "llm_calls", "cache_hits", "quarantined", "tokens"},
    "graph": {
        "nodes",
        "edges",
        "items",
        "items_with_facts",
        "items_with_facts_share",
        "nodes_by_label",
        "edges_by_type",
        "facts_written",
        "stale_facts_deleted",
        "facts_by_source",
        "user_facts_written",
        "interactions_written",
        "rejected_facts",
        "quarantined_items",
        "write_seconds",
        "resolution",
        "degrees",
        "duplicate_candidates",
        "duplicate_candidates_top",
        "llm_vs_gold",
    },
    "kge": {
        "metrics",
        "model",
        "dim",
        "seed",
        "device",
        "epochs_run",
        "final_loss",
        "train_seconds",
        "triples",
        "train_triples",
        "test_triples",
        "entities",
        "relations",
        "triples_fingerprint",
        "graph_fingerprint",
        "pykeen_version",
        "evaluation",
        "run_id",
        "artifact",
        "written_back",
        "vector_indexes",
        "best_epoch",
        "under_trained",
        "stopped_too_early",
    },
    "recommend": {
        "split",
        "positive_threshold",
        "kg_item_coverage",
        "kg_entities",
        "k",
        "device",
        "bpr_mf",
        "lightgcn",
        "kg_bpr",
        "kg_lightgcn",
        "best_model",
        "serving",
        "seconds_by_part",
    },
    "export": {"items", "items_with_vectors", "dim", "dir"},
}


def _run(tmp_path: Path, factory: Callable[[], GraphStore], **kwargs: Any) -> RunResult:
    job = write_job(tmp_path, llm_enabled=False, extra=SMALL)
    return api.run_job(job, progress=False, store_factory=factory, **kwargs)


def test_every_stage_returns_its_typed_result_on_the_memory_store(tmp_path: Path) -> None:
    store = InMemoryGraphStore(namespace=JOB_NAME)
    result = _run(tmp_path, lambda: store)
    assert list(result.results) == ["extract", "load", "embed", "recommend", "export"]
    types = (ExtractResult, LoadResult, EmbedResult, RecommendResult, ExportResult)
    assert [type(r) for r in result.results.values()] == list(types)
    for section, keys in REPORT_KEYS.items():
        assert keys <= set(result.report[section]), (section, keys - set(result.report[section]))
    load = result.results["load"]
    assert isinstance(load, LoadResult)
    assert load.items == 300 and load.interactions_written > 10_000
    assert load.facts_by_source["catalog"] > 500 and load.facts_by_source["hetrec"] > 1000
    rec = result.results["recommend"]
    assert isinstance(rec, RecommendResult)
    assert set(rec.models) == {"bpr_mf", "lightgcn", "kg_bpr", "kg_lightgcn"}
    assert rec.serving is not None and rec.serving.topk_rows == rec.split.users * 20
    # each model sits under its own key in report.json, as before, with its training flags
    assert result.report["recommend"]["bpr_mf"]["test"] == rec.models["bpr_mf"].test
    for model in rec.models:
        assert {"best_epoch", "under_trained", "stopped_too_early"} <= set(result.report["recommend"][model])
    # where the stage's time went: the parts follow one another, so they add up to the stage (less its
    # report bookkeeping), and the models' part holds every model's training and final evaluation
    parts = result.report["recommend"]["seconds_by_part"]
    assert list(parts) == ["inputs", "models", "top_k", "explain", "write"]
    stage_seconds = result.report["stages"]["recommend"]["seconds"]
    assert 0.8 * stage_seconds <= sum(parts.values()) <= stage_seconds
    assert all(m.eval_seconds > 0 for m in rec.models.values())
    assert parts["models"] >= sum(m.train_seconds + m.eval_seconds for m in rec.models.values())
    export = result.results["export"]
    assert isinstance(export, ExportResult) and export.items == 300 and export.items_with_vectors == 300
    # what the stages wrote is in the store: the recommendations and the vectors
    assert store.counts_by_type()["RECOMMENDED"] == rec.serving.recommended_edges
    assert result.report["stages"]["load"]["status"] == "ok"


def test_a_stage_reads_only_the_run_folder_and_the_store(tmp_path: Path) -> None:
    """`--only recommend` after a full run: the stage needs nothing from the earlier process."""
    store = InMemoryGraphStore(namespace=JOB_NAME)
    _run(tmp_path, lambda: store, until="embed")
    again = _run(tmp_path, lambda: store, only=["recommend"])
    assert list(again.results) == ["recommend"]
    assert set(again.report) >= {"recommend", "stages"} and "graph" not in again.report
    assert again.report["stages"]["load"]["status"] == "skipped"


@pytest.mark.neo4j
def test_the_load_stage_gives_the_same_result_on_both_stores(neo4j_store: Any, tmp_path: Path) -> None:
    from kg_enhance.graph.store import Neo4jStore

    memory = InMemoryGraphStore(namespace=JOB_NAME)
    on_memory = _run(tmp_path / "memory", lambda: memory, until="load")
    on_neo4j = _run(
        tmp_path / "neo4j", lambda: Neo4jStore(neo4j_store.config, namespace=JOB_NAME), until="load"
    )
    timing = {"write_seconds", "phase_seconds"}
    a = on_memory.results["load"].model_dump(exclude=timing)
    b = on_neo4j.results["load"].model_dump(exclude=timing)
    assert a == b
    assert graph_fingerprint(memory).hash == graph_fingerprint(neo4j_store).hash


def test_a_model_whose_best_epoch_is_its_last_is_flagged_under_trained(tmp_path: Path) -> None:
    store = InMemoryGraphStore(namespace=JOB_NAME)
    job = write_job(tmp_path, llm_enabled=False, extra=SMALL)
    result = api.run_job(
        job,
        progress=False,
        store_factory=lambda: store,
        until="recommend",
        overrides=["recommender.epochs=2", "recommender.models=[{type: bpr_mf}]"],
    )
    rec = result.results["recommend"]
    assert isinstance(rec, RecommendResult)
    report = rec.models["bpr_mf"]
    assert report.best_epoch == 2 and report.under_trained  # two epochs never converge here
    assert result.report["recommend"]["bpr_mf"]["under_trained"] is True


def test_a_model_whose_best_is_its_first_evaluation_is_flagged_stopped_too_early(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A learning rate too small to move a float32 weight: validation never improves on the first
    evaluation, so early stopping ends training there (and the budget is not what ended it)."""
    from kg_enhance.cli import _summary
    from kg_enhance.report.html import _training_flags

    store = InMemoryGraphStore(namespace=JOB_NAME)
    job = write_job(tmp_path, llm_enabled=False, extra=SMALL)
    result = api.run_job(
        job,
        progress=False,
        store_factory=lambda: store,
        until="recommend",
        overrides=[
            "kge.epochs=30",
            "kge.eval_every=1",
            "kge.patience=2",
            "kge.learning_rate=1e-12",
            "recommender.epochs=30",
            "recommender.patience=2",
            "recommender.models=[{type: bpr_mf, name: frozen}]",
            "recommender.learning_rate=1e-12",
        ],
    )
    kge = result.results["embed"]
    assert isinstance(kge, EmbedResult)
    assert kge.best_epoch == 1 and kge.epochs_run < 30 and kge.stopped_too_early is True
    assert kge.under_trained is False and result.report["kge"]["stopped_too_early"] is True
    rec = result.results["recommend"]
    assert isinstance(rec, RecommendResult)
    frozen = rec.models["frozen"]
    assert frozen.best_epoch == 1 and frozen.epochs == 3  # first evaluation, then patience 2
    assert frozen.stopped_too_early and not frozen.under_trained
    assert result.report["recommend"]["frozen"]["stopped_too_early"] is True
    assert _training_flags(result.report["recommend"]["frozen"]) == "stopped too early"
    _summary(result)
    lines = capsys.readouterr().out.splitlines()
    assert any(
        line.startswith("kge:") and "STOPPED TOO EARLY: best validation at epoch 1" in line for line in lines
    )
    assert any(line.startswith("recommend frozen:") and "STOPPED TOO EARLY" in line for line in lines), lines
