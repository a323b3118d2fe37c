"""Array helpers shared by the KG embeddings and the recommenders (no project imports).

* :func:`joined_keys` / :func:`seeded_hash`: one string per row and its seeded 64-bit hash, the
  basis of the stable splits (``recommender.split: user_hash``, ``kge.split: hash``): a row's
  hash depends on nothing but its ids and the seed.
* :func:`matching_rows`: rows of the ids two runs share (warm starts), vectorised.
* :func:`freeze_rows`: a gradient hook that keeps chosen rows of a table fixed (fold-ins).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

#: joins the ids of one row in :func:`joined_keys` (ASCII unit separator, absent from ids)
SEPARATOR = "\x1f"


def joined_keys(*columns: Any) -> pd.Series:
    """One string per row: the columns' values as strings, joined by :data:`SEPARATOR`."""
    out = pd.Series(columns[0], dtype=str).reset_index(drop=True)
    for column in columns[1:]:
        out = out + SEPARATOR + pd.Series(column, dtype=str).to_numpy()
    return out


def seeded_hash(keys: pd.Series, *, seed: int) -> np.ndarray:
    """A seeded 64-bit hash (uint64) per key, stable across runs, processes and machines."""
    hashed: np.ndarray = pd.util.hash_array(
        keys.to_numpy(dtype=object), hash_key=f"kg-enhance{seed % 10**6:06d}"
    )
    return hashed.astype(np.uint64)


def matching_rows(
    before: Sequence[Any] | np.ndarray, now: Sequence[Any] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(rows in now, rows in before)`` of the ids found in both sequences, in the order of ``now``.

    Vectorised (one hash index over ``before``, no Python loop over the catalog); an id that
    appears twice in ``before`` maps to its last row."""
    index = pd.Index(list(before), dtype=object)
    positions = np.arange(len(index))
    if not index.is_unique:
        keep = ~index.duplicated(keep="last")
        index, positions = index[keep], positions[keep]
    at = index.get_indexer(pd.Index(list(now), dtype=object)) if len(index) else np.full(len(now), -1)
    rows_now = np.flatnonzero(at >= 0)
    rows_before: np.ndarray = positions[at[rows_now]]
    return rows_now, rows_before


def in_row_order(ids: Mapping[Any, int]) -> np.ndarray:
    """The keys of an id -> row map (rows ``0..n-1``, as PyKEEN's label maps) in row order."""
    keys = np.empty(len(ids), dtype=object)
    keys[np.fromiter(ids.values(), dtype=np.int64, count=len(ids))] = list(ids)
    return keys


def matching_ids(before: Mapping[Any, int], now: Mapping[Any, int]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`matching_rows` of two id -> row maps: the rows, in each map's own numbering, of the ids
    both have."""
    return matching_rows(in_row_order(before), in_row_order(now))


def freeze_rows(param: torch.Tensor, frozen: torch.Tensor | np.ndarray) -> torch.utils.hooks.RemovableHandle:
    """A gradient hook that removes the gradient of ``param``'s rows where ``frozen`` is True.

    Dense gradients get those rows zeroed; sparse ones (``nn.Embedding(sparse=True)``) lose their
    entries. Adam or SparseAdam started fresh never move a row whose gradient is always zero or
    absent (their moments stay zero), provided no decoupled weight decay is used. Remove the
    returned handle to undo.
    """
    mask = torch.as_tensor(frozen, dtype=torch.bool, device=param.device)
    column = mask.view(-1, *([1] * (param.dim() - 1)))

    def hook(grad: torch.Tensor) -> torch.Tensor:
        if grad.is_sparse:
            indices, values = grad._indices(), grad._values()
            keep = ~mask[indices[0]]
            return torch.sparse_coo_tensor(indices[:, keep], values[keep], grad.shape, check_invariants=False)
        return grad.masked_fill(column, 0)

    handle: torch.utils.hooks.RemovableHandle = param.register_hook(hook)  # type: ignore[no-untyped-call]
    return handle
