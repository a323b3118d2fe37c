"""PyKEEN training: reproducible on CPU, stable id maps, versioned artifacts, model-name validation,
bounded evaluation (memory budget, seeded sample, cadence), under-training flag."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from pykeen.evaluation import RankBasedEvaluator
from pykeen.evaluation.evaluator import create_sparse_positive_filter_, prepare_filter_triples
from pykeen.models import model_resolver
from pykeen.pipeline import pipeline
from pykeen.training import SLCWATrainingLoop
from pykeen.triples import TriplesFactory

from kg_enhance.config.models import KGEConfig
from kg_enhance.datasets.movielens import DEMO_DIR
from kg_enhance.errors import SparseGraphError, StageError
from kg_enhance.kge.artifacts import load_embeddings_dir, save_embeddings
from kg_enhance.kge.ranking import KnownTriples, candidate_scores, scoring_path
from kg_enhance.kge.train import (
    AFTER_EVAL_MMAP_THRESHOLD,
    METRIC_KEYS,
    _glibc,
    _set_mmap_threshold,
    cpu_evaluation,
    evaluation_batch_and_slice,
    floats_per_entity,
    link_prediction_metrics,
    sample_triples,
    sparse_updates,
    train_kge,
    training_batch_size,
)
from kg_enhance.names import entity_key


def gold_triples() -> list[tuple[str, str, str]]:
    df = pd.read_csv(DEMO_DIR / "gold_facts.tsv", sep="\t", dtype=str)
    return [
        (f"item:{i}", r, f"entity:{entity_key(t, o)}")
        for i, r, o, t in df[["item_id", "relation", "object", "object_type"]].itertuples(index=False)
    ]


CONFIG = KGEConfig(model="DistMult", dim=8, epochs=4, batch_size=256, seed=7)


def test_same_seed_and_graph_give_the_same_metrics_and_rows(tmp_path: Path) -> None:
    triples = gold_triples()
    a = train_kge(triples, CONFIG, progress=False)
    b = train_kge(list(reversed(triples)), CONFIG, progress=False)  # order of reading must not matter
    assert a.metrics == b.metrics
    assert a.entity_to_id == b.entity_to_id and a.relation_to_id == b.relation_to_id
    assert np.array_equal(a.entity_vectors, b.entity_vectors)
    assert a.metadata["triples_fingerprint"] == b.metadata["triples_fingerprint"]
    assert set(a.metrics) == {"mrr", "hits@1", "hits@3", "hits@10"}
    other = train_kge(triples, CONFIG.model_copy(update={"seed": 8}), progress=False)
    assert not np.array_equal(a.entity_vectors, other.entity_vectors)


def test_artifacts_are_versioned_and_checked_against_the_graph(tmp_path: Path) -> None:
    result = train_kge(gold_triples(), CONFIG, progress=False, graph_fingerprint="abc")
    root = tmp_path / "run" / "embeddings"
    save_embeddings(result, root, version="20260101T000000-aaaaaa")
    save_embeddings(result, root, version="20260102T000000-bbbbbb")
    latest = load_embeddings_dir(tmp_path / "run")
    assert latest.metadata["version"] == "20260102T000000-bbbbbb"
    assert latest.entity_vectors.shape == (len(latest.entity_to_id), 8)
    older = load_embeddings_dir(tmp_path / "run", version="20260101T000000-aaaaaa")
    assert older.metadata["version"] == "20260101T000000-aaaaaa"
    assert (
        load_embeddings_dir(tmp_path / "run", expected_fingerprint="abc").metadata["graph_fingerprint"]
        == "abc"
    )
    with pytest.raises(
        StageError, match="trained on graph abc but the graph is now xyz; re-run the embed stage"
    ):
        load_embeddings_dir(tmp_path / "run", expected_fingerprint="xyz")
    with pytest.raises(StageError, match="no complete embeddings version 'nope'"):
        load_embeddings_dir(tmp_path / "run", version="nope")
    for n in range(3, 9):
        save_embeddings(result, root, version=f"2026010{n}T000000-cccccc")
    assert len([p for p in root.iterdir() if p.is_dir()]) == 5  # the newest five are kept


def test_a_kg_too_sparse_to_split_is_a_clear_error() -> None:
    star = [(f"item:{n}", "HAS_THEME", f"entity:Theme:t{n}") for n in range(40)]  # every entity once
    with pytest.raises(SparseGraphError, match="too sparse to hold out 10% .* kge.test_ratio: 0"):
        train_kge(star, CONFIG, progress=False)
    result = train_kge(star, CONFIG.model_copy(update={"test_ratio": 0.0}), progress=False)
    assert result.entity_vectors.shape[0] == 80
    # nothing held out: no metrics (a score on training triples is not a result)
    assert result.metrics == {"mrr": None, "hits@1": None, "hits@3": None, "hits@10": None}
    assert result.metadata["test_triples"] == 0


def test_a_missing_or_junk_latest_falls_back_to_the_newest_complete_version(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    result = train_kge(gold_triples(), CONFIG, progress=False)
    root = tmp_path / "run" / "embeddings"
    save_embeddings(result, root, version="20260101T000000-aaaaaa")
    save_embeddings(result, root, version="20260102T000000-bbbbbb")
    (root / "20260103T000000-cccccc").mkdir()  # a version whose writer died before its metadata
    for latest, why in (
        (None, "is missing"),
        (b"\xff\xfe\x00junk", "is unreadable"),
        (b"../../etc", "does not name a version"),
        (b"20260103T000000-cccccc", "missing or incomplete"),
    ):
        (root / "LATEST").unlink(missing_ok=True)
        if latest is not None:
            (root / "LATEST").write_bytes(latest)
        caplog.clear()
        with caplog.at_level("WARNING"):
            got = load_embeddings_dir(tmp_path / "run")
        assert got.metadata["version"] == "20260102T000000-bbbbbb"
        assert (
            why in caplog.text and "using the newest complete version 20260102T000000-bbbbbb" in caplog.text
        )


def test_corrupt_artifact_files_are_one_line_errors(tmp_path: Path) -> None:
    result = train_kge(gold_triples(), CONFIG, progress=False)
    root = tmp_path / "run" / "embeddings"
    folder = save_embeddings(result, root, version="20260101T000000-aaaaaa")
    good = (folder / "entity_vectors.npy").read_bytes()
    (folder / "entity_vectors.npy").write_bytes(good[: len(good) // 2])  # truncated
    with pytest.raises(StageError) as info:
        load_embeddings_dir(tmp_path / "run")
    message = info.value.one_line()
    assert (
        "entity_vectors.npy: corrupt embeddings artifact" in message and "re-run the embed stage" in message
    )
    assert "\n" not in str(info.value)
    (folder / "entity_vectors.npy").write_bytes(good)
    (folder / "entity_to_id.json").write_text('{"item:1": 0}')  # ids and rows disagree
    with pytest.raises(StageError, match="entity_to_id.json: corrupt embeddings artifact \\(1 ids for"):
        load_embeddings_dir(tmp_path / "run")
    (folder / "entity_to_id.json").write_bytes(b"\x00\x01 not json")
    with pytest.raises(StageError, match="entity_to_id.json: corrupt embeddings artifact"):
        load_embeddings_dir(tmp_path / "run")


# --- bounded evaluation, sampling, cadence, under-training (issue 15, item 1) ---


def _split_gold() -> tuple[TriplesFactory, TriplesFactory, TriplesFactory]:
    tf = TriplesFactory.from_labeled_triples(np.array(sorted(set(gold_triples())), dtype=str))
    training, validation, testing = tf.split([0.8, 0.1, 0.1], random_state=7)
    return training, validation, testing


@pytest.mark.parametrize("model_name", ["DistMult", "TransE"])
def test_bounded_evaluation_gives_pykeens_unbounded_metrics(model_name: str) -> None:
    training, validation, testing = _split_gold()
    model = model_resolver.make(model_name, triples_factory=training, embedding_dim=8, random_seed=7)
    SLCWATrainingLoop(model=model, triples_factory=training, automatic_memory_optimization=False).train(
        triples_factory=training, num_epochs=3, batch_size=256, use_tqdm=False
    )
    known = [training.mapped_triples, validation.mapped_triples]
    # a tiny budget: a few triples per batch, the entities scored in slices
    plan = evaluation_batch_and_slice(
        model.num_entities, floats_per_entity(model), 100_000, num_filter_triples=1422
    )
    assert 1 < plan.batch_size < testing.num_triples and plan.sliced
    bounded = link_prediction_metrics(model, testing.mapped_triples, known_triples=known, plan=plan)
    # PyKEEN unbounded: every test triple in one batch, every entity at once, on torch's own threads,
    # outside cpu_evaluation
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        unbounded = RankBasedEvaluator(filtered=True).evaluate(
            model,
            testing.mapped_triples,
            additional_filter_triples=known,
            batch_size=testing.num_triples,
            slice_size=None,
            use_tqdm=False,
        )
    finally:
        torch.set_num_threads(threads)
    for name, key in METRIC_KEYS:
        assert bounded[name] == pytest.approx(unbounded.get_metric(f"both.realistic.{key}"), abs=1e-6)
    assert bounded["mrr"] > 0


@pytest.mark.parametrize(
    ("model_name", "kwargs", "path"),
    [
        ("TransE", {}, "distance matrix per batch (torch.cdist)"),  # PyKEEN's default: L1
        ("TransE", {"scoring_fct_norm": 2}, "distance matrix per batch (torch.cdist)"),
        ("TransE", {"scoring_fct_norm": 2, "power_norm": True}, "distance matrix per batch (torch.cdist)"),
        ("DistMult", {}, "matrix product per batch"),
        ("ComplEx", {}, "predict"),  # no fast path: PyKEEN's own scores
    ],
)
def test_matrix_scores_equal_pykeens_predict(model_name: str, kwargs: dict[str, Any], path: str) -> None:
    training, _, testing = _split_gold()
    model = model_resolver.make(
        model_name, triples_factory=training, embedding_dim=8, random_seed=3, **kwargs
    )
    model.eval()
    assert scoring_path(model) == path
    batch = testing.mapped_triples[:40]
    with torch.no_grad():
        for target in ("head", "tail"):
            got = candidate_scores(model, batch, target)
            want = model.predict(hrt_batch=batch, target=target)
            assert got.shape == (40, model.num_entities)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_the_known_triples_index_filters_what_pykeens_comparison_filters() -> None:
    training, validation, testing = _split_gold()
    known = torch.cat([testing.mapped_triples, training.mapped_triples, validation.mapped_triples])
    index = KnownTriples(known, num_relations=training.num_relations)
    assert len(index) == len(torch.unique(known, dim=0))
    all_pos = prepare_filter_triples(
        testing.mapped_triples, [training.mapped_triples, validation.mapped_triples]
    )
    batch = testing.mapped_triples[:100]
    for target, column in (("head", 0), ("tail", 2)):
        theirs, _ = create_sparse_positive_filter_(batch, all_pos, filter_col=column)
        ours = index.filter_pairs(batch, target)
        assert sorted(map(tuple, ours.tolist())) == sorted(map(tuple, theirs.tolist()))
        # every row filters at least its own true entity, and more than that somewhere
        assert set(ours[:, 0].tolist()) == set(range(100)) and len(ours) > 100


def test_cpu_evaluation_runs_on_one_thread_and_restores_the_process_settings() -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with cpu_evaluation(torch.device("cpu")):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError), cpu_evaluation("cpu"):
            raise RuntimeError("an evaluation failing half-way")
        assert torch.get_num_threads() == 2
        with cpu_evaluation("cuda"):  # not a CPU evaluation: nothing changes (no CUDA needed to check)
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    # on this Linux/glibc machine the mmap threshold really is set (mallopt reports success)
    assert _set_mmap_threshold(_glibc(), AFTER_EVAL_MMAP_THRESHOLD)
    assert not _set_mmap_threshold(None, AFTER_EVAL_MMAP_THRESHOLD)


def test_the_evaluation_sample_is_capped_and_fixed_by_seed() -> None:
    training, _, _ = _split_gold()
    mapped = training.mapped_triples
    a, b = sample_triples(mapped, 100, seed=7), sample_triples(mapped, 100, seed=7)
    assert torch.equal(a, b) and a.shape[0] == 100 < mapped.shape[0]
    assert len({tuple(row) for row in a.tolist()}) == 100  # without replacement
    assert not torch.equal(a, sample_triples(mapped, 100, seed=8))
    assert sample_triples(mapped, None, seed=7) is mapped  # null: the full set
    assert sample_triples(mapped, 10**6, seed=7) is mapped
    # through the embed stage's trainer: the test and validation sets are sampled (each by its own
    # cap), the same way twice
    capped = CONFIG.model_copy(update={"eval_max_triples": 50, "valid_max_triples": 40})
    x, y = (
        train_kge(gold_triples(), capped, progress=False),
        train_kge(gold_triples(), capped, progress=False),
    )
    assert x.metrics == y.metrics
    held = x.metadata["test_triples"]
    assert re.search(
        rf"validation 40 of \d+ triples \(seeded sample\), test 50 of {held} triples \(seeded sample\)",
        x.metadata["evaluation"],
    )
    full = train_kge(gold_triples(), CONFIG, progress=False).metadata
    assert re.search(rf"validation (\d+) of \1 triples, test {held} of {held} triples", full["evaluation"])
    assert "batch " in full["evaluation"] and full["test_triples"] == held


def test_the_evaluation_batch_fits_the_memory_budget_at_any_entity_count() -> None:
    budget = 256 * 2**20
    for entities in (500, 17_600, 47_000, 2_000_000, 20_000_000):
        for width in (8, 64, 256, 2048):
            plan = evaluation_batch_and_slice(entities, width, budget, num_filter_triples=5 * entities)
            assert plan.batch_size >= 1 and 1 <= plan.slice_size <= entities
            # the interaction tensor: batch x slice x width floats
            assert plan.batch_size * plan.slice_size * width * 4 <= budget // 2
            # the score rows: batch x entities floats (one row is PyKEEN's floor)
            assert plan.batch_size * entities * 4 <= budget or plan.batch_size == 1
            assert plan.estimated_bytes <= budget or plan.batch_size == 1
    # the old fixed batch at the k = 4 (47k entities, dim 64) asked for 11.4 GiB at once
    assert 1024 * 47_000 * 64 * 4 / 2**30 > 11
    big = evaluation_batch_and_slice(47_000, 64, budget, num_filter_triples=330_000)
    assert big.sliced and big.batch_size * big.slice_size * 64 * 4 <= 16 * 2**20
    # a small graph needs no slicing; on CUDA the chunk may use the whole half budget
    assert not evaluation_batch_and_slice(500, 8, budget).sliced
    assert evaluation_batch_and_slice(47_000, 64, budget, cpu=False).slice_size > big.slice_size
    with pytest.raises(ValueError):
        evaluation_batch_and_slice(0, 64, budget)


def test_eval_every_and_patience_set_how_often_validation_runs() -> None:
    triples = gold_triples()
    six = CONFIG.model_copy(update={"epochs": 6, "patience": 10})
    for every, epochs in ((1, [1, 2, 3, 4, 5, 6]), (3, [3, 6]), (4, [4, 6])):  # the last epoch always
        meta = train_kge(triples, six.model_copy(update={"eval_every": every}), progress=False).metadata
        assert [h["epoch"] for h in meta["validation_history"]] == epochs
        assert meta["validation_evaluations"] == len(epochs) and meta["epochs_run"] == 6
    # a learning rate too small to change any rank: no evaluation after the first improves on it
    frozen = six.model_copy(update={"eval_every": 1, "learning_rate": 1e-12})
    for patience in (1, 2):
        meta = train_kge(triples, frozen.model_copy(update={"patience": patience}), progress=False).metadata
        assert meta["validation_evaluations"] == 1 + patience and meta["epochs_run"] == 1 + patience
        assert meta["stopped_early"] and meta["best_epoch"] == 1 and meta["under_trained"] is False


def test_too_few_epochs_are_flagged_as_under_training() -> None:
    result = train_kge(gold_triples(), CONFIG, progress=False)  # 4 epochs: still improving at the end
    meta = result.metadata
    assert meta["best_epoch"] == 4 == meta["epochs_run"] and meta["under_trained"] is True
    assert meta["stopped_early"] is False and meta["validation_evaluations"] == 1
    assert len(meta["losses"]) == 4 and meta["eval_seconds"] > 0 and meta["train_triples_per_second"] > 0
    # nothing held out: no evaluation at all, and no verdict
    star = [(f"item:{n}", "HAS_THEME", f"entity:Theme:t{n}") for n in range(40)]
    none = train_kge(star, CONFIG.model_copy(update={"test_ratio": 0.0}), progress=False).metadata
    assert none["validation_evaluations"] == 0 and none["best_epoch"] is None
    assert none["under_trained"] is None and none["epochs_run"] == 4


def test_training_memory_settings_change_memory_not_results() -> None:
    triples = gold_triples()
    # TransE: no regularizer (PyKEEN adds a regularizer's term once per slice, e.g. DistMult's)
    # PyKEEN's split: with the hash split's training set, Adam's first step turns float noise in near-zero
    # LCWA gradients into differences of up to 3e-4 between sliced and whole scoring (measured)
    lcwa = CONFIG.model_copy(
        update={"training_loop": "lcwa", "epochs": 1, "model": "TransE", "split": "random"}
    )
    whole = train_kge(triples, lcwa, progress=False)
    sliced = train_kge(triples, lcwa.model_copy(update={"slice_size": 64}), progress=False)
    assert np.allclose(whole.entity_vectors, sliced.entity_vectors, atol=1e-4)
    assert whole.metadata["losses"] == pytest.approx(sliced.metadata["losses"], rel=1e-6)
    slcwa = CONFIG.model_copy(update={"epochs": 2})
    full = train_kge(triples, slcwa, progress=False)
    sub = train_kge(triples, slcwa.model_copy(update={"sub_batch_size": 64}), progress=False)
    assert np.allclose(full.entity_vectors, sub.entity_vectors, atol=1e-5)
    assert full.metadata["losses"] == pytest.approx(sub.metadata["losses"], rel=1e-6)
    assert full.metadata["automatic_memory_optimization"] is False  # off on CPU by default
    with pytest.raises(ValueError, match="only training_loop: lcwa does"):
        KGEConfig(slice_size=64)
    with pytest.raises(ValueError, match="set those or turn it off"):
        KGEConfig(automatic_memory_optimization=True, sub_batch_size=64)


def _pykeen_pipeline(cfg: KGEConfig, ours: Any, *, epochs: int, batch_size: int) -> Any:
    """``pykeen.pipeline`` on the gold triples with ``ours``'s ids and ``cfg``'s settings: the reference
    our training must equal (its memory search off, dense Adam)."""
    tf = TriplesFactory.from_labeled_triples(
        np.array(sorted(set(gold_triples())), dtype=str),
        entity_to_id=ours.entity_to_id,
        relation_to_id=ours.relation_to_id,
    )
    training, validation, testing = tf.split([0.8, 0.1, 0.1], random_state=cfg.seed)
    return pipeline(
        training=training,
        validation=validation,
        testing=testing,
        model=cfg.model,
        model_kwargs={"embedding_dim": cfg.dim},
        negative_sampler="basic",
        negative_sampler_kwargs={"num_negs_per_pos": cfg.num_negs_per_pos},
        optimizer="Adam",
        optimizer_kwargs={"lr": cfg.learning_rate},
        training_kwargs={"num_epochs": epochs, "batch_size": batch_size, "use_tqdm": False},
        training_loop_kwargs={"automatic_memory_optimization": False},
        evaluation_kwargs={"batch_size": 1024, "use_tqdm": False},
        random_seed=cfg.seed,
        device="cpu",
        use_tqdm=False,
    )


def test_training_is_pykeens_pipeline_with_the_same_settings() -> None:
    """Built from PyKEEN's pieces, training matches ``pykeen.pipeline`` exactly (its memory search off,
    dense Adam: the pipeline cannot make embedding tables sparse)."""
    cfg = CONFIG.model_copy(update={"epochs": 3, "split": "random"})  # PyKEEN's own split
    ours = train_kge(gold_triples(), cfg, progress=False)
    theirs = _pykeen_pipeline(cfg, ours, epochs=3, batch_size=cfg.batch_size)
    vectors = theirs.model.entity_representations[0](indices=None).detach().numpy()  # type: ignore[index,operator]
    assert np.array_equal(vectors, ours.entity_vectors)
    mrr = theirs.metric_results.get_metric("both.realistic.inverse_harmonic_mean_rank")
    assert ours.metrics["mrr"] == pytest.approx(mrr, abs=1e-9)


def test_device_and_automatic_memory_optimization_defaults() -> None:
    from kg_enhance.kge.train import _memory_optimization

    assert _memory_optimization(KGEConfig(), "cuda") is True  # PyKEEN's search where it can recover
    assert _memory_optimization(KGEConfig(), "cpu") is False  # on CPU it can only probe
    assert _memory_optimization(KGEConfig(sub_batch_size=64), "cuda") is False  # explicit sizes win
    assert _memory_optimization(KGEConfig(automatic_memory_optimization=True), "cpu") is True
    if not torch.cuda.is_available():
        with pytest.raises(StageError, match="kge.device is cuda but torch sees no CUDA device"):
            train_kge(gold_triples(), CONFIG.model_copy(update={"device": "cuda"}), progress=False)
        auto = train_kge(
            gold_triples(), CONFIG.model_copy(update={"device": "auto", "epochs": 1}), progress=False
        )
        assert auto.metadata["device"] == "cpu"


def test_sparse_updates_touch_only_the_batch_rows_and_are_refused_where_unsafe() -> None:
    tf = TriplesFactory.from_labeled_triples(np.array(sorted(set(gold_triples())), dtype=str))
    transe = model_resolver.make("TransE", triples_factory=tf, embedding_dim=8, random_seed=1)
    assert not sparse_updates(KGEConfig(model="TransE"), transe)  # dense Adam by default
    assert sparse_updates(KGEConfig(model="TransE", optimizer="sparse_adam"), transe)
    assert all(m.sparse for m in transe.modules() if isinstance(m, torch.nn.Embedding))
    # one SparseAdam step on one batch changes the rows of that batch's entities and no other
    optimizer = torch.optim.SparseAdam(list(transe.parameters()), lr=0.1)
    before = transe.entity_representations[0](indices=None).detach().clone()  # type: ignore[index,operator]
    batch = tf.mapped_triples[:4]
    transe.score_hrt(batch).sum().backward()
    optimizer.step()
    after = transe.entity_representations[0](indices=None).detach()  # type: ignore[index,operator]
    changed = set(torch.nonzero((after - before).abs().sum(dim=1) > 0).flatten().tolist())
    assert changed == set(batch[:, [0, 2]].flatten().tolist())
    # refused for lcwa (every entity scored: dense gradients) and models with other parameters
    fresh = model_resolver.make("TransE", triples_factory=tf, embedding_dim=8, random_seed=1)
    with pytest.raises(StageError, match="sparse_adam needs"):
        sparse_updates(KGEConfig(model="TransE", training_loop="lcwa", optimizer="sparse_adam"), fresh)
    conve = model_resolver.make("ConvE", triples_factory=tf, embedding_dim=16, random_seed=1)
    with pytest.raises(StageError, match="sparse_adam needs"):
        sparse_updates(KGEConfig(model="ConvE", optimizer="sparse_adam"), conve)
    # through the trainer: recorded, and it learns
    config = CONFIG.model_copy(update={"epochs": 3, "optimizer": "sparse_adam"})
    run = train_kge(gold_triples(), config, progress=False)
    assert run.metadata["optimizer"] == "SparseAdam"
    assert run.metadata["losses"][-1] < run.metadata["losses"][0]
    assert train_kge(gold_triples(), CONFIG, progress=False).metadata["optimizer"] == "Adam"


def test_large_graphs_train_bounded_steps_per_epoch_on_larger_batches() -> None:
    """``kge.max_batches_per_epoch`` grows the batch, never the step count; the result is PyKEEN's
    with that batch size (same vectors)."""
    assert training_batch_size(CONFIG, 1_000) == CONFIG.batch_size  # small graphs: the configured batch
    assert training_batch_size(CONFIG.model_copy(update={"max_batches_per_epoch": 3}), 1_000) == 334
    assert training_batch_size(CONFIG.model_copy(update={"max_batches_per_epoch": None}), 10**7) == 256
    cfg = CONFIG.model_copy(update={"epochs": 2, "max_batches_per_epoch": 4, "split": "random"})
    ours = train_kge(gold_triples(), cfg, progress=False)
    n_train = ours.metadata["train_triples"]
    assert ours.metadata["train_batch_size"] == -(-n_train // 4) > cfg.batch_size
    theirs = _pykeen_pipeline(cfg, ours, epochs=2, batch_size=ours.metadata["train_batch_size"])
    vectors = theirs.model.entity_representations[0](indices=None).detach().numpy()  # type: ignore[index,operator]
    assert np.array_equal(vectors, ours.entity_vectors)
