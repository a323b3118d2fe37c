"""A stable split of KG triples for training, validation and test (``kge.split: hash``).

PyKEEN's ``TriplesFactory.split`` draws a seeded random split of the whole triple set: one
added triple reshuffles every side, so vectors carried over from a previous run (a warm
start) would have been trained on triples that are now held out, and their test metrics
would be inflated. Here each triple's side depends only on its labels and the seed:

* a seeded 64-bit hash of ``head, relation, tail`` puts it in test (below ``ratio`` of the
  hash range), validation (below ``2 * ratio``) or training;
* PyKEEN needs every entity and relation in training: for each one left without a training
  triple, its held-out triple of smallest hash moves to training (``forced``);
* ``sticky``: triples an earlier run of the chain forced into training stay there, so
  nothing a carried vector was trained on is ever held out.

Cost is linear in the triples (vectorised hashing, sorting and grouping; no Python loop).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from kg_enhance.arrays import joined_keys, seeded_hash

TRAIN, VALID, TEST = 0, 1, 2


def triple_keys(labeled: np.ndarray, *, seed: int) -> np.ndarray:
    """A seeded 64-bit hash per labelled triple (rows ``head, relation, tail``)."""
    if len(labeled) == 0:
        return np.zeros(0, dtype=np.uint64)
    rows = np.asarray(labeled, dtype=object).reshape(-1, 3)
    return seeded_hash(joined_keys(rows[:, 0], rows[:, 1], rows[:, 2]), seed=seed)


@dataclass(frozen=True)
class HashSplit:
    """Side per triple (:data:`TRAIN`, :data:`VALID`, :data:`TEST`) and the triples forced into training."""

    side: np.ndarray
    keys: np.ndarray
    #: training triples that the hash had held out: moved for coverage here, or kept by ``sticky``
    forced: np.ndarray

    def rows(self, which: int) -> np.ndarray:
        return np.nonzero(self.side == which)[0]

    def forced_keys(self) -> np.ndarray:
        """Hash keys of the forced triples, sorted (what the next warm start must keep in training)."""
        return np.sort(self.keys[self.forced])


def _cover(side: np.ndarray, keys: np.ndarray, columns: list[np.ndarray]) -> np.ndarray:
    """Rows (held out) to move to training so that every id of ``columns`` has a training triple."""
    n_ids = int(max((int(c.max()) for c in columns if len(c)), default=-1)) + 1
    in_train = np.zeros(n_ids, dtype=bool)
    train = side == TRAIN
    for column in columns:
        in_train[column[train]] = True
    held = np.nonzero(~train)[0]
    ids = np.concatenate([column[held] for column in columns])
    rows = np.tile(held, len(columns))
    need = ~in_train[ids]
    ids, rows = ids[need], rows[need]
    if len(ids) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((keys[rows], ids))  # by id, then smallest hash first
    ids, rows = ids[order], rows[order]
    first = np.ones(len(ids), dtype=bool)
    first[1:] = ids[1:] != ids[:-1]
    return np.unique(rows[first])


def hash_split(
    labeled: np.ndarray, *, ratio: float, seed: int, sticky: np.ndarray | None = None
) -> HashSplit:
    """Split labelled triples (rows ``head, relation, tail``; see the module docstring).

    ``sticky``: sorted hash keys (:meth:`HashSplit.forced_keys` of the run warm-started from)
    of triples that must stay in training.
    """
    labeled = np.asarray(labeled, dtype=object).reshape(-1, 3)
    keys = triple_keys(labeled, seed=seed)
    share = keys.astype(np.float64) / 2.0**64
    side = np.where(share < ratio, TEST, np.where(share < 2 * ratio, VALID, TRAIN)).astype(np.int8)
    forced = np.zeros(len(side), dtype=bool)
    if sticky is not None and len(sticky):
        keep = np.isin(keys, sticky) & (side != TRAIN)
        side[keep], forced[keep] = TRAIN, True
    entity_codes, _ = pd.factorize(np.concatenate([labeled[:, 0], labeled[:, 2]]))
    heads, tails = entity_codes[: len(labeled)], entity_codes[len(labeled) :]
    relations, _ = pd.factorize(labeled[:, 1])
    for columns in ([heads, tails], [relations]):
        moved = _cover(side, keys, columns)
        side[moved], forced[moved] = TRAIN, True
    return HashSplit(side=side, keys=keys, forced=forced)
