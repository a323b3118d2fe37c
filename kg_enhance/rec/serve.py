"""Serving without an LLM: precomputed top-K with KG-path explanations.

The recommend stage writes ``recommend/topk.parquet`` (one row per user and rank, with
explanation paths) and ``(:User)-[:RECOMMENDED {rank, score, run, model}]->(:Item)``
edges. :func:`recommend` answers from the parquet table in process; the Browser query
``cypher/browser/why_recommended.cypher`` answers from the graph.

An explanation path is ``user -> an item they interacted with -> a shared entity ->
the recommended item``. Paths through rare entities (a director) rank above paths
through common ones (Drama): the weight of an entity is ``1 / log2(1 + items)``.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kg_enhance.errors import StageError
from kg_enhance.names import ENTITY, ITEM, anchor_of
from kg_enhance.rundir import RunDir


@dataclass(frozen=True)
class Path3:
    via_item: str
    via_entity: str
    weight: float


class PathExplainer:
    """KG paths from a user's training items to a recommended item."""

    def __init__(self, triples: Iterable[tuple[str, str, str]]) -> None:
        self.entities: dict[str, set[str]] = defaultdict(set)
        degree: dict[str, int] = defaultdict(int)
        for head, _, tail in triples:
            item_id, key = anchor_of(head, ITEM), anchor_of(tail, ENTITY)
            if item_id is not None and key is not None and key not in self.entities[item_id]:
                self.entities[item_id].add(key)
                degree[key] += 1
        self.weight = {k: 1.0 / math.log2(1 + d) for k, d in degree.items()}

    def paths(self, history: Sequence[str], item_id: str, *, limit: int = 3) -> list[Path3]:
        target = self.entities.get(item_id, set())
        found = [
            Path3(j, e, self.weight[e])
            for j in history
            for e in self.entities.get(j, set()) & target
            if j != item_id
        ]
        found.sort(key=lambda p: (-p.weight, p.via_entity, p.via_item))
        out: list[Path3] = []
        used_items: set[str] = set()
        for p in found:  # prefer distinct supporting items
            if p.via_item in used_items and len(found) > limit:
                continue
            out.append(p)
            used_items.add(p.via_item)
            if len(out) == limit:
                break
        return out


def topk_rows(
    split: Any,
    top_idx: np.ndarray,
    top_scores: np.ndarray,
    explainer: PathExplainer | None,
    *,
    model: str,
    run_id: str,
) -> list[dict[str, Any]]:
    history: dict[int, list[str]] = defaultdict(list)
    for u, i in split.train.tolist():
        history[u].append(split.item_ids[i])
    rows = []
    for u in range(split.n_users):
        for r in range(top_idx.shape[1]):
            item_id = split.item_ids[int(top_idx[u, r])]
            paths = explainer.paths(history[u], item_id) if explainer else []
            rows.append(
                {
                    "user_id": split.user_ids[u],
                    "rank": r + 1,
                    "item_id": item_id,
                    "score": float(top_scores[u, r]),
                    "model": model,
                    "run": run_id,
                    "via_items": [p.via_item for p in paths],
                    "via_entities": [p.via_entity for p in paths],
                }
            )
    return rows


@dataclass(frozen=True)
class Recommendation:
    item_id: str
    rank: int
    score: float
    #: (item the user interacted with, shared entity key) pairs, strongest first
    because: list[tuple[str, str]]


class PrecomputedRecommender:
    """Top-K lists from ``recommend/topk.parquet``, served from memory (no model, no LLM)."""

    def __init__(self, run_dir: str | Path) -> None:
        path = RunDir.at(run_dir).topk
        if not path.is_file():
            raise StageError(
                f"{path} not found; run the recommend stage first (`kg-enhance run JOB --only recommend`)"
            )
        df = pd.read_parquet(path).sort_values(["user_id", "rank"], kind="mergesort")
        self.run = str(df["run"].iloc[0]) if len(df) else None
        self.model = str(df["model"].iloc[0]) if len(df) else None
        self.table: dict[str, list[Recommendation]] = {}
        for user_id, group in df.groupby("user_id", sort=False):
            self.table[str(user_id)] = [
                Recommendation(
                    item_id=str(r.item_id),
                    rank=int(r.rank),
                    score=float(r.score),
                    because=list(zip(list(r.via_items), list(r.via_entities), strict=True)),
                )
                for r in group.itertuples(index=False)
            ]

    def recommend(self, user_id: str | int, k: int = 10) -> list[Recommendation]:
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"recommend: k must be a whole number >= 1, got {k!r}")
        recs = self.table.get(str(user_id))
        if recs is None:
            raise KeyError(f"user {user_id!r} has no precomputed recommendations (cold user or unknown id)")
        return recs[:k]


@lru_cache(maxsize=8)
def _cached(run_dir: str, mtime: float) -> PrecomputedRecommender:
    return PrecomputedRecommender(run_dir)


def recommender_for(run_dir: str | Path | None = None) -> PrecomputedRecommender:
    """The precomputed recommender of a run folder (``outputs.dir``; default ``$KG_ENHANCE_RUN_DIR``).

    Re-read whenever ``topk.parquet`` changes (its modification time is part of the cache key).
    """
    chosen = run_dir or os.environ.get("KG_ENHANCE_RUN_DIR")
    if not chosen:
        raise StageError(
            "recommend: no run folder given; pass job= or run_dir= (or set KG_ENHANCE_RUN_DIR to a job's outputs.dir)"
        )
    run = RunDir.at(chosen)
    mtime = run.topk.stat().st_mtime if run.topk.exists() else 0.0
    return _cached(str(run.root), mtime)
