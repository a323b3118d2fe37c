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
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kg_enhance.errors import StageError
from kg_enhance.names import ENTITY, ITEM, anchor_of
from kg_enhance.rec.evaluate import UserItems
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
        #: each item's entities, strongest first (the order paths are ranked in)
        self._ranked: dict[str, tuple[str, ...]] = {
            item_id: tuple(sorted(keys, key=lambda k: (-self.weight[k], k)))
            for item_id, keys in self.entities.items()
        }

    def support(self, history: Sequence[str]) -> dict[str, list[str]]:
        """Entity key -> the user's distinct history items that have it, sorted (built once per user)."""
        out: dict[str, list[str]] = defaultdict(list)
        for j in dict.fromkeys(history):
            for e in self.entities.get(j, ()):
                out[e].append(j)
        for items in out.values():
            items.sort()
        return out

    def paths(
        self,
        history: Sequence[str],
        item_id: str,
        *,
        limit: int = 3,
        support: dict[str, list[str]] | None = None,
    ) -> list[Path3]:
        """The strongest paths user -> history item -> shared entity -> ``item_id``.

        Pass ``support`` (:meth:`support` of the same history) when explaining many items
        for one user: the cost is then the item's entities, not the history's.

        Paths rank by entity weight, then entity key, then history item, and the first
        ``limit`` with distinct history items win (repeats only fill in when there are no more
        than ``limit`` paths in all). An entity reached with ``m`` paths chosen can skip at most
        its ``m`` used history items (its own are distinct) and give at most ``limit - m`` new
        ones, so its first ``limit`` candidates are all the search can use: a user with
        thousands of items sharing "Drama" costs no more than one with five.
        """
        support = self.support(history) if support is None else support
        found: list[Path3] = []
        total = 0  # every path, not only the candidates kept
        for e in self._ranked.get(item_id, ()):
            items = support.get(e)
            if not items:
                continue
            at = bisect_left(items, item_id)
            total += len(items) - (at < len(items) and items[at] == item_id)
            weight = self.weight[e]
            found.extend([Path3(j, e, weight) for j in items[: limit + 1] if j != item_id][:limit])
        out: list[Path3] = []
        used_items: set[str] = set()
        for p in found:  # prefer distinct supporting items
            if p.via_item in used_items and total > limit:
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
    train = UserItems.from_pairs(split.train, split.n_users)
    rows = []
    for u in range(split.n_users):
        history = [split.item_ids[i] for i in train.indices[train.indptr[u] : train.indptr[u + 1]]]
        support = explainer.support(history) if explainer else {}
        for r in range(top_idx.shape[1]):
            item_id = split.item_ids[int(top_idx[u, r])]
            paths = explainer.paths(history, item_id, support=support) if explainer else []
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


def add_names(
    rows: list[dict[str, Any]], *, titles: Mapping[str, str | None], entity_names: Mapping[str, str | None]
) -> list[dict[str, Any]]:
    """Add names to top-K rows (in place): ``title`` of the item, ``via_titles`` of the items and
    ``via_names`` of the entities on its paths (``None`` where a name is unknown)."""
    for row in rows:
        row["title"] = titles.get(row["item_id"])
        row["via_titles"] = [titles.get(j) for j in row["via_items"]]
        row["via_names"] = [entity_names.get(e) for e in row["via_entities"]]
    return rows


@dataclass(frozen=True)
class Recommendation:
    item_id: str
    rank: int
    score: float
    #: (item the user interacted with, shared entity key) pairs, strongest first
    because: list[tuple[str, str]]
    #: the item's title (``None`` in tables written before titles were stored, or without a title column)
    title: str | None = None
    #: ``because`` by name: (title of the item the user interacted with, entity name); the id or key
    #: stands in where no name is known
    because_names: list[tuple[str, str]] = field(default_factory=list)


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
        named = {"title", "via_titles", "via_names"} <= set(df.columns)  # older tables have ids only
        for user_id, group in df.groupby("user_id", sort=False):
            recs = []
            for r in group.itertuples(index=False):
                because = [(str(j), str(e)) for j, e in zip(r.via_items, r.via_entities, strict=True)]
                title = _name(r.title) if named else None
                names = (
                    list(zip(r.via_titles, r.via_names, strict=True))
                    if named
                    else [(None, None)] * len(because)
                )
                recs.append(
                    Recommendation(
                        item_id=str(r.item_id),
                        rank=int(r.rank),
                        score=float(r.score),
                        because=because,
                        title=title,
                        because_names=[
                            (_name(t) or j, _name(n) or e)
                            for (j, e), (t, n) in zip(because, names, strict=True)
                        ],
                    )
                )
            self.table[str(user_id)] = recs

    def recommend(self, user_id: str | int, k: int = 10) -> list[Recommendation]:
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"recommend: k must be a whole number >= 1, got {k!r}")
        recs = self.table.get(str(user_id))
        if recs is None:
            raise KeyError(f"user {user_id!r} has no precomputed recommendations (cold user or unknown id)")
        return recs[:k]


def _name(value: Any) -> str | None:
    """A stored name, or ``None`` for a missing one (null, NaN, empty)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value)
    return text or None


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
