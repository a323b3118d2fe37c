"""Item neighbourhoods (``lightgcn_knn``, ``kg_knn``): the sparse kNN against a dense computation,
the blended ranking against a per-user z-score computed by hand, and the models on the demo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import sparse

from kg_enhance.config.job import load_job
from kg_enhance.config.models import RecModelSpec, RecommenderConfig
from kg_enhance.rec import neighbours
from kg_enhance.rec.evaluate import TailSlots, UserItems, batched_top_k
from kg_enhance.rec.neighbours import (
    NeighbourScores,
    collaborative_features,
    item_knn,
    knowledge_features,
    term_spread,
    user_profiles,
)
from kg_enhance.rec.train import train_model
from kg_enhance.stages.recommend import recommend_split
from tests.support.helpers import run_models_in_memory
from tests.unit.test_rec import _demo_fact_kg, split  # noqa: F401  (the demo split fixture)


def _dense_knn(x: np.ndarray, k: int, idf: bool, cap: int | None) -> np.ndarray:
    """The same neighbourhoods by dense arithmetic and a Python loop per item."""
    x = (x > 0).astype(np.float64)
    df = x.sum(0)
    keep = (df > 0) & (df <= (cap if cap is not None else np.inf))
    w = np.log(x.shape[0] / np.maximum(df, 1)) if idf else np.ones_like(df)
    x = x * np.where(keep, w, 0.0)
    norms = np.linalg.norm(x, axis=1)
    x = x / np.where(norms > 0, norms, 1.0)[:, None]
    sims = x @ x.T
    out = np.zeros_like(sims)
    for i in range(len(sims)):
        cand = [(-sims[i, j], j) for j in range(len(sims)) if j != i and sims[i, j] > 1e-9]
        for neg, j in sorted(cand)[:k]:
            out[i, j] = -neg
    return out


@pytest.mark.parametrize("dense_share", [0.0, 2.0])
@pytest.mark.parametrize("idf,cap", [(True, None), (False, None), (True, 3)])
def test_item_knn_matches_a_dense_computation(
    idf: bool, cap: int | None, dense_share: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each item's neighbours are its k most similar items of a dense computation, with their
    cosines, over several row chunks, with and without idf and with a cap on how many items a
    feature may have, whether each chunk's k-th values come from a dense top-k (share 0) or from
    sorting every pair (share 2). (Float32 and float64 may order near-equal cosines differently,
    so the check is on values, not on which of two near-equal items is kept.)"""
    monkeypatch.setattr(neighbours, "DENSE_SHARE", dense_share)
    rng = np.random.default_rng(0)
    x = (rng.random((37, 15)) < 0.2).astype(np.float32)
    x[5] = 0  # an item without features has no neighbours
    got = item_knn(sparse.csr_matrix(x), k=4, idf=idf, max_feature_items=cap, chunk=8).toarray()
    want = _dense_knn(x, 4, idf, cap)
    true = _dense_knn(x, 36, idf, cap)  # every similarity
    for row in range(len(x)):
        np.testing.assert_allclose(
            np.sort(got[row][got[row] > 0]), np.sort(want[row][want[row] > 0]), atol=1e-5
        )
        kth = np.sort(want[row])[-4] if (want[row] > 0).sum() >= 4 else 0.0
        assert (true[row][got[row] > 0] >= kth - 1e-5).all()
        np.testing.assert_allclose(got[row][got[row] > 0], true[row][got[row] > 0], atol=1e-5)
    assert not got[5].any() and not got[:, 5].any()
    assert ((got > 0).sum(1) <= 4).all()


@pytest.mark.parametrize("dense_share", [0.0, 2.0])
def test_item_knn_breaks_exact_ties_by_the_lower_item_row(
    dense_share: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(neighbours, "DENSE_SHARE", dense_share)
    x = np.zeros((6, 4), dtype=np.float32)
    x[:4, :2] = 1  # items 0-3 identical: every pair among them has cosine 1
    x[4:, 2:] = 1
    got = item_knn(sparse.csr_matrix(x), k=2, idf=False).toarray()
    assert list(np.nonzero(got[0])[0]) == [1, 2] and list(np.nonzero(got[3])[0]) == [0, 1]
    assert list(np.nonzero(got[4])[0]) == [5]


def test_features_of_facts_and_of_users() -> None:
    facts = np.array([[0, 3, 1], [1, 3, 1], [1, 3, 0], [2, 0, 1]])  # (item, entity, relation)
    kn = knowledge_features(facts, 4).toarray()
    assert kn.shape == (4, 3)  # (relation, entity) pairs: (0, 3), (1, 0), (1, 3)
    assert kn[0].sum() == 1 and kn[1].sum() == 2 and not kn[3].any()
    assert (kn[0] == kn[1]).sum() == 2  # items 0 and 1 share (1, 3) only
    cf = collaborative_features(np.array([[0, 1], [0, 1], [2, 1], [1, 0]]), 3, 2).toarray()
    np.testing.assert_array_equal(cf, [[0, 1, 0], [1, 0, 1]])


def test_the_blend_ranks_as_a_per_user_z_score_computed_by_hand() -> None:
    """``batched_top_k`` with neighbour terms (in item chunks, excluded items, several user
    batches) ranks like ``z(u.i) + w1 z(kn1) + w2 z(kn2)`` per user, computed densely."""
    rng = np.random.default_rng(1)
    n_users, n_items = 23, 41
    pairs = np.unique(np.stack([rng.integers(0, n_users, 200), rng.integers(0, n_items, 200)], 1), axis=0)
    profiles = user_profiles(pairs, n_users, n_items)
    sims = [
        item_knn(collaborative_features(pairs, n_users, n_items), k=6, idf=False),
        item_knn(sparse.csr_matrix((rng.random((n_items, 9)) < 0.3).astype(np.float32)), k=5),
    ]
    weights = [0.3, 0.7]
    u = torch.randn(n_users, 8)
    i = torch.randn(n_items, 8)

    def z(s: np.ndarray) -> np.ndarray:
        std = s.std(1, keepdims=True)
        return (s - s.mean(1, keepdims=True)) / np.where(std > 0, std, 1.0)

    dense = z((u @ i.T).double().numpy())
    for sim, w in zip(sims, weights, strict=True):
        dense = dense + w * z(profiles.toarray() @ sim.toarray().T)
    dense[pairs[:, 0], pairs[:, 1]] = -np.inf
    want = np.argsort(-dense, axis=1, kind="stable")[:, :10]
    extra = NeighbourScores(
        profiles, sims, weights, [term_spread(profiles, s, batch_users=5, chunk=7) for s in sims]
    )
    got = np.zeros_like(want)
    for batch, top, _ in batched_top_k(
        u, i, np.arange(n_users), k=10, exclude=UserItems.from_pairs(pairs, n_users),
        batch_users=7, item_chunk=5, extra=extra,
    ):  # fmt: skip
        got[batch] = top
    np.testing.assert_array_equal(got, want)
    # with tail slots the items are visited in another order (head, then tail): any chunking gives
    # the lists of one chunk, and the first K - slots positions are the plain ranking's
    tail = np.zeros(n_items, dtype=bool)
    tail[::3] = True
    policy = TailSlots.of(tail, 3)
    lists = []
    for chunk in (4, 1000):
        got = np.zeros_like(want)
        for batch, top, _ in batched_top_k(
            u, i, np.arange(n_users), k=10, exclude=UserItems.from_pairs(pairs, n_users),
            batch_users=7, item_chunk=chunk, tail_slots=policy, extra=extra,
        ):  # fmt: skip
            got[batch] = top
        lists.append(got)
    np.testing.assert_array_equal(lists[0], lists[1])
    for row, plain in zip(lists[0], want, strict=True):
        assert set(row[:7]) == set(plain[:7])
        assert tail[row[7:]].all() or not tail[np.setdiff1d(np.arange(n_items), row[:7])].any()


def test_bad_neighbourhood_settings_are_refused_in_one_line(split) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    cfg = RecommenderConfig(epochs=1, dim=8, k=20)
    with pytest.raises(ValueError, match="cf_weights must be a non-empty list"):
        train_model(RecModelSpec(type="lightgcn_knn", params={"cf_weights": 0.3}), split, cfg, progress=False)
    with pytest.raises(ValueError, match="max_feature_items must be at least 2"):
        item_knn(sparse.csr_matrix(np.eye(3, dtype=np.float32)), k=2, max_feature_items=0)


def test_kg_knn_chooses_its_weights_on_validation_and_contains_lightgcn_knn(split) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """On the demo with the bundled facts: the LightGCN inside trains exactly as ``lightgcn`` does,
    the weights are the best validation NDCG of the grid (reported with every combination tried),
    and with the knowledge weight held at 0, ``kg_knn`` is ``lightgcn_knn``."""
    kg = _demo_fact_kg(split)
    cfg = RecommenderConfig(
        epochs=6, dim=16, k=20, patience=6, learning_rate=0.01, graph_batches_per_epoch=16
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # with 2 threads the sparse products' sums may differ in the last bit
    try:
        plain = train_model(RecModelSpec(type="lightgcn"), split, cfg, kg=kg, progress=False)
        knn = train_model(RecModelSpec(type="lightgcn_knn"), split, cfg, kg=kg, progress=False)
        both = train_model(RecModelSpec(type="kg_knn"), split, cfg, kg=kg, progress=False)
        no_kg = train_model(
            RecModelSpec(type="kg_knn", params={"kg_weights": [0.0]}), split, cfg, kg=kg, progress=False
        )
    finally:
        torch.set_num_threads(threads)
    for other in (knn, both):  # the LightGCN inside trains bit for bit as lightgcn does
        assert torch.equal(other.model.user.weight, plain.model.user.weight)
        assert torch.equal(other.model.item.weight, plain.model.item.weight)
        assert [h["ndcg@20"] for h in other.history] == [h["ndcg@20"] for h in plain.history]
    blend = both.blend
    assert blend is not None and len(blend["tried"]) == 25
    best = max(blend["tried"], key=lambda t: t["valid"])
    assert blend["chosen"] == {"cf": best["cf"], "kg": best["kg"]}
    assert both.valid["ndcg@20"] == pytest.approx(best["valid"])
    # the grid starts at (0, 0): LightGCN's own ranking, and its validation NDCG
    assert blend["tried"][0]["valid"] == pytest.approx(plain.valid["ndcg@20"])
    assert both.valid["ndcg@20"] >= knn.valid["ndcg@20"] >= plain.valid["ndcg@20"]
    assert no_kg.blend is not None and no_kg.blend["chosen"]["kg"] == 0.0
    assert no_kg.test == knn.test and no_kg.blend["chosen"]["cf"] == knn.blend["chosen"]["cf"]  # type: ignore[index]
    assert both.report()["blend"]["chosen"] == blend["chosen"]
    # the knowledge term uses the facts: items sharing a director or a genre are neighbours
    sim = both.model.terms["kg"]
    assert sim.nnz > 0 and both.model.terms["cf"].nnz > 0


def test_kg_knn_keeps_the_relations_it_is_given(split) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """``kg_relations`` restricts the knowledge similarity to those relations' facts; a relation the
    KG does not have is refused with the ones it has."""
    kg = _demo_fact_kg(split)
    cfg = RecommenderConfig(epochs=1, dim=8, k=20, graph_batches_per_epoch=4)
    facts = kg.item_entity_relations
    for relation in kg.relation_keys:
        spec = RecModelSpec(type="kg_knn", params={"kg_relations": [relation], "kg_weights": [0.0]})
        model = train_model(spec, split, cfg, kg=kg, progress=False).model
        only = facts[facts[:, 2] == kg.relation_keys.index(relation)]
        want = item_knn(knowledge_features(only, split.n_items), k=100, max_feature_items=1000)
        assert (model.terms["kg"] != want).nnz == 0
    with pytest.raises(ValueError, match="not relations of this KG"):
        train_model(
            RecModelSpec(type="kg_knn", params={"kg_relations": ["NOPE"]}), split, cfg, kg=kg, progress=False
        )


def test_kg_knn_runs_from_a_job_file_and_serves_every_user(tmp_path: Path) -> None:
    """Usable from YAML like the others: trained, reported with its weights, and its top-K served."""
    job, result = run_models_in_memory(tmp_path, "[{type: kg_knn, params: {layers: 2, neighbours: 20}}]")
    rec = result.report["recommend"]
    assert set(rec["kg_knn"]["blend"]["chosen"]) == {"cf", "kg"}
    job_split = recommend_split(load_job(job))
    assert rec["kg_knn"]["test"]["recall@20"] > 3 * 20 / job_split.n_items  # random: 20 / n_items
    served = pd.read_parquet(result.run.topk)
    assert served["user_id"].nunique() == job_split.n_users and set(served["model"]) == {"kg_knn"}


def test_kg_knn_warm_starts_by_fold_in_and_chooses_its_weights_again(split) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """An incremental refresh of ``kg_knn`` (``warm_start_mode: fold_in``): the LightGCN rows the
    previous run had stay as they were, only the new item's row trains (on the pairs that touch it),
    the neighbourhoods are those of the new data, and the weights are chosen again on validation."""
    import dataclasses

    from kg_enhance.rec.models import KGKNN
    from kg_enhance.rec.train import WarmStart

    kg = _demo_fact_kg(split)
    cfg = RecommenderConfig(
        epochs=4, dim=8, k=20, graph_batches_per_epoch=4, warm_start_mode="fold_in", warm_start_epochs=0.5
    )
    spec = RecModelSpec(type="kg_knn")
    # the previous run did not know the most rated item: no training pair of it, and its row is new now
    new = int(np.bincount(split.train[:, 1], minlength=split.n_items).argmax())
    keep = [i for i in range(split.n_items) if i != new]
    before_split = dataclasses.replace(split, train=split.train[split.train[:, 1] != new])
    first = train_model(spec, before_split, cfg, kg=kg, progress=False)
    state = {k: v.clone() for k, v in first.model.state_dict().items()}
    state["item.weight"] = state["item.weight"][keep]
    # weights the grid cannot give: a refresh that carried them instead of choosing again shows them
    state["blend_weights"] = torch.full_like(state["blend_weights"], 0.77)
    warm = WarmStart(
        state=state,
        user_ids=list(split.user_ids),
        item_ids=[split.item_ids[i] for i in keep],
        entity_keys=[],
        source="previous",
    )
    second = train_model(spec, split, cfg, kg=kg, progress=False, warm=warm)
    info = second.warm_start
    assert info is not None and info["mode"] == "fold_in" and info["from"] == "previous"
    assert info["items"] == split.n_items - 1 and info["users"] == split.n_users
    assert info["fold_in_pairs"] == int((split.train[:, 1] == new).sum()) > 0
    assert info["epochs_allowed"] == 2
    before, after = first.model.item.weight.detach(), second.model.item.weight.detach()
    assert torch.equal(after[keep], before[keep])  # carried rows are frozen
    assert torch.equal(second.model.user.weight, first.model.user.weight)
    # the new row starts where a fresh model of this seed starts, and trains from there
    torch.manual_seed(cfg.seed)
    fresh = KGKNN(split.n_users, split.n_items, cfg.dim, train_pairs=split.train, **kg.model_kwargs())
    assert not torch.equal(after[new], fresh.item.weight.detach()[new])
    # the neighbourhoods are those of this run's data (the new item's pairs included), not carried
    for name in ("cf", "kg"):
        assert (second.model.terms[name] != fresh.terms[name]).nnz == 0
    assert (second.model.terms["cf"] != first.model.terms["cf"]).nnz > 0
    assert first.model.terms["cf"][new].nnz == 0 < second.model.terms["cf"][new].nnz
    blend = second.blend
    assert blend is not None and len(blend["tried"]) == 25
    assert 0.77 not in blend["chosen"].values()
    assert second.model.blend == {k: v for k, v in blend["chosen"].items()}
    assert blend["chosen"] == {
        k: v for k, v in max(blend["tried"], key=lambda t: t["valid"]).items() if k != "valid"
    }
