"""Warm starts in ``fold_in`` mode: carried rows and parameters stay bit-identical, only new rows
train, on the training pairs of new users and items only (bundled MovieLens demo data)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from kg_enhance.arrays import matching_rows as _row_map
from kg_enhance.config.models import RecModelSpec, RecommenderConfig
from kg_enhance.datasets.movielens import DEMO_DIR
from kg_enhance.rec.data import Split, make_split, positives
from kg_enhance.rec.kg import KGInputs
from kg_enhance.rec.models import RecModel, rec_model_resolver
from kg_enhance.rec.train import WarmStart, batch_size_for, train_model

N_ENTITIES = 7


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    df = pd.read_csv(DEMO_DIR / "ratings.csv", dtype=str)
    df = df.rename(columns={"userId": "user_id", "movieId": "item_id", "timestamp": "ts"})
    df["rating"] = df["rating"].astype(float)
    df["ts"] = df["ts"].astype(int)
    return positives(df, 4.0)


@pytest.fixture(scope="module")
def splits(frame: pd.DataFrame) -> tuple[Split, Split]:
    """(before, now): ``before`` lacks 3% of the items and 3% of the users of ``now``."""
    items, users = sorted(frame["item_id"].unique()), sorted(frame["user_id"].unique())
    rng = np.random.default_rng(1)
    gone_items = set(rng.choice(items, size=max(1, len(items) * 3 // 100), replace=False))
    gone_users = set(rng.choice(users, size=max(1, len(users) * 3 // 100), replace=False))
    old = frame[~frame["item_id"].isin(gone_items) & ~frame["user_id"].isin(gone_users)]
    before = make_split(old, kind="user_hash", seed=0, item_ids=[i for i in items if i not in gone_items])
    now = make_split(frame, kind="user_hash", seed=0, item_ids=items)
    return before, now


def _kg(split: Split, n_entities: int) -> KGInputs:
    """A KG whose items point at genre-like entities ``Genre:0..n-1``; vectors drawn from the item id,
    so an item has the same KG vector in both runs."""
    vectors = np.stack(
        [np.random.default_rng(int(i)).normal(size=16).astype(np.float32) for i in split.item_ids]
    )
    edges = np.array([[row, int(i) % n_entities] for row, i in enumerate(split.item_ids)])
    return KGInputs(
        item_vectors=torch.from_numpy(vectors),
        item_mask=torch.ones(split.n_items),
        entity_vectors=torch.from_numpy(
            np.random.default_rng(7).normal(size=(n_entities, 16)).astype(np.float32)
        ),
        item_entity_edges=edges,
        entity_keys=[f"Genre:{n}" for n in range(n_entities)],
    )


def _config(**update: Any) -> RecommenderConfig:
    base: dict[str, Any] = {"epochs": 4, "dim": 16, "k": 20, "patience": 4, "learning_rate": 0.01}
    return RecommenderConfig(**{**base, "warm_start_epochs": 0.5, **update})


def _previous(model_type: str, before: Split) -> tuple[WarmStart, KGInputs | None]:
    """A model trained for one epoch on ``before`` (its KG has one entity fewer), as a warm start."""
    kg = _kg(before, N_ENTITIES - 1) if rec_model_resolver.lookup(model_type).needs_kg else None
    old = train_model(RecModelSpec(type=model_type), before, _config(epochs=1), kg=kg, progress=False)
    warm = WarmStart(
        state={k: v.detach().clone() for k, v in old.model.state_dict().items()},
        user_ids=before.user_ids,
        item_ids=before.item_ids,
        entity_keys=kg.entity_keys if kg is not None else [],
        source="r1",
        relation_keys=kg.relation_keys if kg is not None else [],
    )
    return warm, kg


def _start(model_type: str, split: Split, cfg: RecommenderConfig, kg: KGInputs | None) -> RecModel:
    """The model ``train_model`` builds (same seed and arguments), before any warm start."""
    cls = rec_model_resolver.lookup(model_type)
    kwargs: dict[str, Any] = {}
    if cls.needs_kg:
        assert kg is not None
        kwargs.update(kg.model_kwargs())
    if cls.needs_graph:
        kwargs["train_pairs"] = split.train
    torch.manual_seed(cfg.seed)
    return cls(split.n_users, split.n_items, cfg.dim, **kwargs)


@pytest.mark.parametrize("model_type", ["bpr_mf", "kg_bpr", "lightgcn", "kg_lightgcn", "kg_hybrid", "kgat"])
def test_fold_in_keeps_every_carried_row_bit_identical_and_trains_the_new_ones(
    splits: tuple[Split, Split], model_type: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, now = splits
    warm, _ = _previous(model_type, before)
    kg = _kg(now, N_ENTITIES) if rec_model_resolver.lookup(model_type).needs_kg else None
    cfg = _config(warm_start_mode="fold_in")

    # what the model holds just before training: the carried rows copied into a fresh model
    start = _start(model_type, now, cfg, kg)
    WarmStart(
        warm.state, warm.user_ids, warm.item_ids, warm.entity_keys, relation_keys=warm.relation_keys
    ).apply(start, now, kg)
    start_params = {k: v.detach().clone() for k, v in start.named_parameters()}

    batches = []
    cls = rec_model_resolver.lookup(model_type)
    bpr_terms = cls.bpr_terms

    def counted(self: RecModel, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> Any:
        batches.append(len(users))
        return bpr_terms(self, users, pos, neg)

    monkeypatch.setattr(cls, "bpr_terms", counted)
    trained = train_model(RecModelSpec(type=model_type), now, cfg, kg=kg, progress=False, warm=warm)
    model = trained.model
    params = dict(model.named_parameters())

    old_users = {u: r for r, u in enumerate(before.user_ids)}
    old_items = {i: r for r, i in enumerate(before.item_ids)}
    new_users = [r for r, u in enumerate(now.user_ids) if u not in old_users]
    new_items = [r for r, i in enumerate(now.item_ids) if i not in old_items]
    assert new_users and new_items
    with torch.no_grad():
        for table, ids, old_rows in (("user", now.user_ids, old_users), ("item", now.item_ids, old_items)):
            rows = [(r, old_rows[key]) for r, key in enumerate(ids) if key in old_rows]
            now_rows = torch.as_tensor([r for r, _ in rows])
            then_rows = torch.as_tensor([o for _, o in rows])
            assert torch.equal(params[f"{table}.weight"][now_rows], warm.state[f"{table}.weight"][then_rows])
        # every new row that has a fold-in pair moved; the new rows are all that moved in these tables
        moved_users = (params["user.weight"] != start_params["user.weight"]).any(-1)
        moved_items = (params["item.weight"] != start_params["item.weight"]).any(-1)
        assert set(torch.nonzero(moved_users).flatten().tolist()) <= set(new_users)
        assert set(torch.nonzero(moved_items).flatten().tolist()) <= set(new_items)
        with_pairs = set(now.train[np.isin(now.train[:, 0], new_users), 0].tolist())
        assert with_pairs and with_pairs == set(torch.nonzero(moved_users).flatten().tolist())
        for name, value in params.items():  # other parameters carried whole: unchanged
            if name.split(".")[0] not in ("user", "item", "entity", "kg"):
                assert torch.equal(value, warm.state[name]), name
        if "entity.weight" in params:  # Genre:0..5 carried and frozen; Genre:6 is new and trains
            carried = params["entity.weight"][: N_ENTITIES - 1]
            assert torch.equal(carried, warm.state["entity.weight"][: N_ENTITIES - 1])
            assert not torch.equal(params["entity.weight"][-1], start_params["entity.weight"][-1])

    fold_pairs = int((np.isin(now.train[:, 0], new_users) | np.isin(now.train[:, 1], new_items)).sum())
    info = trained.warm_start
    assert info is not None
    assert info["mode"] == "fold_in" and info["fold_in_pairs"] == fold_pairs < len(now.train) // 10
    assert info["trained_rows"]["users"] == len(new_users) and info["trained_rows"]["items"] == len(new_items)
    assert info["users"] == now.n_users - len(new_users) and info["epochs_allowed"] == 2
    if model_type in ("kg_lightgcn", "kg_hybrid", "kgat"):
        assert info["trained_rows"]["entities"] == 1
    # an epoch is the fold-in pairs only, in as few batches as the batch size allows
    per_epoch = math.ceil(fold_pairs / batch_size_for(model, fold_pairs, cfg))
    assert (
        per_epoch == 1
        and len(batches) == trained.epochs * per_epoch
        and sum(batches) == trained.epochs * fold_pairs
    )
    # the freezing is undone once trained
    assert all(p.requires_grad for p in model.parameters() if p is not params.get("kg.weight"))
    assert trained.test["recall@20"] > 0


def test_fold_in_with_nothing_new_trains_no_epoch_and_keeps_the_weights(splits: tuple[Split, Split]) -> None:
    _, now = splits
    warm, _ = _previous("bpr_mf", now)
    trained = train_model(
        RecModelSpec(type="bpr_mf"), now, _config(warm_start_mode="fold_in"), progress=False, warm=warm
    )
    info = trained.warm_start
    assert info is not None and info["fold_in_pairs"] == 0 and info["epochs_allowed"] == 0
    assert "no epoch" in info["note"] and info["trained_rows"] == {"users": 0, "items": 0}
    assert trained.epochs == 0 and trained.history == []
    for name, value in trained.model.state_dict().items():
        assert torch.equal(value, warm.state[name]), name
    assert set(trained.valid) == set(trained.test) and trained.test["ndcg@20"] > 0  # still evaluated


def test_continue_mode_trains_every_row_on_every_pair(splits: tuple[Split, Split]) -> None:
    before, now = splits
    warm, _ = _previous("bpr_mf", before)
    trained = train_model(RecModelSpec(type="bpr_mf"), now, _config(), progress=False, warm=warm)
    info = trained.warm_start
    assert info is not None and info["mode"] == "continue"
    assert "fold_in_pairs" not in info and "trained_rows" not in info and info["epochs_allowed"] == 2
    old = {u: r for r, u in enumerate(before.user_ids)}
    kept = [(r, old[u]) for r, u in enumerate(now.user_ids) if u in old]
    moved = trained.model.user.weight[[r for r, _ in kept]] != warm.state["user.weight"][[o for _, o in kept]]
    assert bool(moved.any(-1).all())  # every carried user with training pairs moved


def test_row_map_matches_a_dict_over_the_ids() -> None:
    """Same pairs as the dict lookup it replaced: repeated ids map to their last row, absent ids drop out."""
    rng = np.random.default_rng(0)
    before = [f"id{n}" for n in rng.integers(0, 400, size=300)]  # repeats on purpose
    now = [f"id{n}" for n in rng.integers(0, 400, size=250)]
    where = {key: row for row, key in enumerate(before)}
    expected = [(row, where[key]) for row, key in enumerate(now) if key in where]
    rows_now, rows_before = _row_map(before, now)
    assert list(zip(rows_now.tolist(), rows_before.tolist(), strict=True)) == expected
    assert len(expected) > 50 and len(expected) < len(now)
    assert _row_map([], now)[0].tolist() == [] and _row_map(before, [])[0].tolist() == []


def test_fold_in_through_the_pipeline_freezes_what_the_last_run_trained(
    tmp_path: Path, state_home: Path
) -> None:
    """Three runs of the refresh pipeline (memory store, no LLM) with ``warm_start_mode: fold_in``: the
    second adds three users and one movie and folds them in, carried rows stay bit-identical in the
    saved weights; the third has nothing new, trains no epoch, and its report says so."""
    from kg_enhance import api
    from kg_enhance.graph.memory import InMemoryGraphStore, MemoryDatabase
    from kg_enhance.rundir import RunDir
    from tests.unit.test_refresh import _copy_inputs, _job, _write_csv

    movies, ratings = _copy_inputs(tmp_path / "inputs", n=41)
    all_movies = list(csv.DictReader(movies.open(newline="", encoding="utf-8")))
    all_ratings = list(csv.DictReader(ratings.open(newline="", encoding="utf-8")))
    new_movie = all_movies[-1]["movieId"]
    counts = pd.Series([r["userId"] for r in all_ratings]).value_counts()
    new_users = set(counts.index[10:13])
    # the new movie's ratings come from users with many ratings only: a user whose positives reach
    # min_user_positives (3) with it would move an old training pair to held-out, and the warm start be refused
    all_ratings = [r for r in all_ratings if r["movieId"] != new_movie or counts[r["userId"]] >= 20]
    _write_csv(movies, all_movies[:-1])
    _write_csv(
        ratings, [r for r in all_ratings if r["userId"] not in new_users and r["movieId"] != new_movie]
    )
    job = _job(
        tmp_path / "a",
        tmp_path / "inputs",
        url="http://127.0.0.1:9/v1",
        llm_enabled=False,
        recommender="{epochs: 4, dim: 8, warm_start_epochs: 0.5, split: user_hash, warm_start_mode: fold_in, "
        "models: [{type: bpr_mf}, {type: kg_bpr}]}",
    )
    db = MemoryDatabase()
    run_dir = RunDir(tmp_path / "a" / "run")

    def run() -> Any:
        return api.run_job(job, progress=False, store_factory=lambda: InMemoryGraphStore(db, namespace="t"))

    def saved(key: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        state = torch.load(run_dir.model_weights(key), weights_only=True)
        return state, json.loads(run_dir.model_ids(key).read_text(encoding="utf-8"))

    first = run()
    assert first.report["recommend"]["warm_start"] is None
    before = {key: saved(key) for key in ("bpr_mf", "kg_bpr")}
    _write_csv(movies, all_movies)
    _write_csv(ratings, all_ratings)
    second = run()
    rec = second.report["recommend"]
    users_now = rec["split"]["users"]
    for key, (state, ids) in before.items():
        info = rec["warm_start"][key]
        assert info["mode"] == "fold_in" and info["from"] == first.run_id and rec[key]["warm_start"] == info
        assert info["trained_rows"] == {"users": 3, "items": 1}
        assert 0 < info["fold_in_pairs"] < rec["split"]["train"] // 5 and info["users"] == users_now - 3
        state_now, ids_now = saved(key)
        for table, id_key in (("user", "user_ids"), ("item", "item_ids")):
            row_then = {x: r for r, x in enumerate(ids[id_key])}
            kept = [(r, row_then[x]) for r, x in enumerate(ids_now[id_key]) if x in row_then]
            assert len(kept) == len(ids_now[id_key]) - (3 if table == "user" else 1)
            now_rows, then_rows = zip(*kept, strict=True)
            w_now, w_then = state_now[f"{table}.weight"], state[f"{table}.weight"]
            assert torch.equal(w_now[list(now_rows)], w_then[list(then_rows)])
        if key == "kg_bpr":
            assert torch.equal(state_now["gate"], state["gate"]) and torch.equal(
                state_now["proj.weight"], state["proj.weight"]
            )
        assert rec[key]["stopped_too_early"] is False

    per_user_second = pd.read_parquet(run_dir.test_per_user)
    third = run()
    rec = third.report["recommend"]
    # per-user test metrics: one row per test user and model, their means are the report's
    per_user = pd.read_parquet(run_dir.test_per_user)
    assert set(per_user["run"]) == {third.run_id}
    for key in ("bpr_mf", "kg_bpr"):
        rows = per_user[per_user["model"] == key].set_index("user_id")
        assert len(rows) == rec[key]["test"]["users"] and rows.index.is_unique
        assert rows["ndcg@20"].mean() == pytest.approx(rec[key]["test"]["ndcg@20"], abs=1e-12)
        assert rows["recall@20"].mean() == pytest.approx(rec[key]["test"]["recall@20"], abs=1e-12)
    # bpr_mf's weights are unchanged; kg_bpr's KG vectors come from this run's KGE (it continues training)
    rows, before_rows = (t[t["model"] == "bpr_mf"].set_index("user_id") for t in (per_user, per_user_second))
    assert rows["ndcg@20"].equals(before_rows["ndcg@20"].loc[rows.index])
    for key in ("bpr_mf", "kg_bpr"):
        info = rec["warm_start"][key]
        assert info["fold_in_pairs"] == 0 and info["epochs_allowed"] == 0 and "no epoch" in info["note"]
        assert rec[key]["epochs"] == 0 and rec[key]["history"] == [] and rec[key]["test"]["ndcg@20"] >= 0


def test_relation_weights_are_carried_only_over_the_same_relations(splits: tuple[Split, Split]) -> None:
    """kg_hybrid's per-relation weights follow ``KGInputs.relation_keys``: carried when both runs list
    the same relations in the same order, left fresh when the order differs or is unknown."""
    before, now = splits

    def with_relations(split: Split, keys: list[str]) -> KGInputs:
        kg = _kg(split, N_ENTITIES)
        edges = kg.item_entity_edges
        kg.item_entity_relations = np.concatenate([edges, (edges[:, 1:] % 2)], axis=1)
        kg.relation_keys = keys
        return kg

    old_kg = with_relations(before, ["DIRECTED_BY", "HAS_GENRE"])
    old = train_model(RecModelSpec(type="kg_hybrid"), before, _config(epochs=1), kg=old_kg, progress=False)
    trained_relation = old.model.relation.detach().clone()
    assert not torch.equal(trained_relation, torch.ones_like(trained_relation))
    for keys, carried in (
        (["DIRECTED_BY", "HAS_GENRE"], True),
        (["HAS_GENRE", "DIRECTED_BY"], False),  # same shape, other order
        (None, False),  # an artifact from before relation keys were recorded
    ):
        warm = WarmStart(
            state={k: v.detach().clone() for k, v in old.model.state_dict().items()},
            user_ids=before.user_ids,
            item_ids=before.item_ids,
            entity_keys=old_kg.entity_keys,
            relation_keys=keys,
        )
        model = _start("kg_hybrid", now, _config(), with_relations(now, ["DIRECTED_BY", "HAS_GENRE"]))
        warm.apply(model, now, with_relations(now, ["DIRECTED_BY", "HAS_GENRE"]))
        assert torch.equal(model.relation.detach(), trained_relation) is carried, keys
        if not carried:
            assert torch.equal(model.relation.detach(), torch.ones_like(trained_relation))
