"""Implicit-feedback interactions and deterministic splits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kg_enhance.arrays import joined_keys, seeded_hash
from kg_enhance.errors import StageError


@dataclass
class Split:
    """Index-encoded interactions: users and items are rows ``0..n-1``."""

    user_ids: list[str]
    item_ids: list[str]
    train: np.ndarray  # (n, 2) user, item
    valid: np.ndarray
    test: np.ndarray

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)


def positives(df: pd.DataFrame, threshold: float | None) -> pd.DataFrame:
    """Apply the job's implicit-feedback rule and drop repeated (user, item) pairs, keeping the latest."""
    out = df if threshold is None else df[df["rating"] >= threshold]
    out = out.sort_values(["user_id", "ts", "item_id"], kind="mergesort")
    return out.drop_duplicates(["user_id", "item_id"], keep="last")


def pair_keys(user_ids: Any, item_ids: Any) -> pd.Series:
    """One string per (user id, item id) pair, the ids joined by a unit separator (0x1F)."""
    return joined_keys(user_ids, item_ids)


def hash_sides(user_ids: pd.Series, item_ids: pd.Series, *, seed: int) -> np.ndarray:
    """0 (train), 1 (validation) or 2 (test) per (user, item): a seeded 64-bit hash of the pair, test
    below 10% of the hash range, validation below 20%. Depends on nothing but the pair and the seed."""
    share = seeded_hash(pair_keys(user_ids, item_ids), seed=seed).astype(np.float64) / 2.0**64
    return np.where(share < 0.1, 2, np.where(share < 0.2, 1, 0)).astype(np.int8)


def make_split(
    df: pd.DataFrame, *, kind: str, seed: int, item_ids: list[str] | None = None, min_user_positives: int = 3
) -> Split:
    """``user_random``: 80/10/10 of each user's positives; ``temporal``: leave-last-out (last to test, second last to valid);
    ``user_hash``: each interaction to test, validation or training by a seeded hash of (user, item)
    (:func:`hash_sides`): 10/10/80 on average, and an interaction keeps its side when others are
    added or removed, so a model trained on an earlier split never saw this split's held-out pairs.

    Users with fewer than ``min_user_positives`` positives stay in training only.
    """
    if df.empty:
        raise StageError(
            "recommend: no positive interactions after the implicit-feedback rule; lower positive_threshold"
        )
    users = sorted(df["user_id"].unique().tolist())
    items = sorted(set(item_ids or []) | set(df["item_id"].unique().tolist()))
    u_index = {u: i for i, u in enumerate(users)}
    i_index = {it: i for i, it in enumerate(items)}
    if kind == "user_hash":
        u = df["user_id"].map(u_index).to_numpy(dtype=np.int64)
        i = df["item_id"].map(i_index).to_numpy(dtype=np.int64)
        side = hash_sides(df["user_id"], df["item_id"], seed=seed)
        counts = df.groupby("user_id")["item_id"].transform("size").to_numpy()
        side[counts < min_user_positives] = 0
        pairs = np.stack([u, i], axis=1)
        return Split(
            user_ids=users,
            item_ids=items,
            train=pairs[side == 0],
            valid=pairs[side == 1],
            test=pairs[side == 2],
        )
    rng = np.random.default_rng(seed)
    train, valid, test = [], [], []
    for user, group in df.groupby("user_id", sort=True):
        rows = [(u_index[user], i_index[it]) for it in group["item_id"].tolist()]
        n = len(rows)
        if n < min_user_positives:
            train.extend(rows)
            continue
        if kind == "temporal":
            train.extend(rows[:-2])
            valid.append(rows[-2])
            test.append(rows[-1])
            continue
        order = rng.permutation(n)
        n_test = max(1, int(round(0.1 * n)))
        n_valid = max(1, int(round(0.1 * n)))
        test.extend(rows[j] for j in order[:n_test])
        valid.extend(rows[j] for j in order[n_test : n_test + n_valid])
        train.extend(rows[j] for j in order[n_test + n_valid :])

    def arr(x: list[tuple[int, int]]) -> np.ndarray:
        return np.asarray(x, dtype=np.int64).reshape(-1, 2)

    return Split(user_ids=users, item_ids=items, train=arr(train), valid=arr(valid), test=arr(test))
