"""Stage selection, splits and ranking metrics on hand-checkable inputs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from kg_enhance.errors import StageError
from kg_enhance.pipeline import select_stages
from kg_enhance.rec.data import make_split, positives
from kg_enhance.rec.evaluate import rank_metrics
from kg_enhance.rec.models import check_model_type, rec_model_resolver


def test_select_stages() -> None:
    # without a job every stage; a job without text_embeddings leaves embed_text out (tests/unit/test_any_domain.py)
    assert select_stages() == ["extract", "load", "embed_text", "embed", "recommend", "export"]
    assert select_stages(until="load") == ["extract", "load"]
    assert select_stages(only=["recommend", "embed"]) == ["embed", "recommend"]
    with pytest.raises(StageError, match="unknown stage"):
        select_stages(until="train")


def test_recommender_registry_lists_valid_types() -> None:
    assert check_model_type("bpr_mf") == "bpr_mf"
    assert rec_model_resolver.lookup("kg_bpr").needs_kg
    with pytest.raises(ValueError, match="valid types: bpr_mf, kg_bpr"):
        check_model_type("svd")


def _df(rows: list[tuple[str, str, float, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "ts"])


def test_positive_rule_and_dedup() -> None:
    df = _df([("u", "a", 5, 1), ("u", "a", 4, 2), ("u", "b", 2, 3)])
    out = positives(df, 4.0)
    assert out[["item_id", "ts"]].values.tolist() == [["a", 2]]


def test_user_random_split_is_deterministic_and_disjoint() -> None:
    rows = [(f"u{u}", f"i{i}", 5.0, i) for u in range(20) for i in range(u % 7 + 1, 30, 2)]
    df = _df(rows)
    a = make_split(df, kind="user_random", seed=3)
    b = make_split(df, kind="user_random", seed=3)
    assert all(np.array_equal(x, y) for x, y in ((a.train, b.train), (a.valid, b.valid), (a.test, b.test)))
    parts = [set(map(tuple, s.tolist())) for s in (a.train, a.valid, a.test)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert sum(len(p) for p in parts) == len(rows)


def test_temporal_split_holds_out_the_last_items() -> None:
    df = _df([("u", f"i{t}", 5.0, t) for t in range(5)])
    s = make_split(df, kind="temporal", seed=0)
    assert s.item_ids[s.test[0, 1]] == "i4" and s.item_ids[s.valid[0, 1]] == "i3"


def test_rank_metrics_by_hand() -> None:
    # one user, 5 items; scores rank items 4,3,2,1,0; item 4 is a training positive (masked)
    scores = torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0]])
    target = np.array([[0, 3], [0, 1]])
    # representations whose dot products are those scores: one user vector (1), item vectors = scores
    reps = (torch.ones((1, 1)), scores.T.clone())
    m = rank_metrics(reps, target, [np.array([[0, 4]])], n_items=5, k=2)
    # ranking after masking: 3, 2 -> one hit of two relevant
    assert m["recall@2"] == pytest.approx(0.5)
    assert m["ndcg@2"] == pytest.approx(1.0 / (1.0 + 1.0 / math.log2(3)))
    assert m["hit@2"] == 1.0
    assert m["coverage@2"] == pytest.approx(2 / 5)
