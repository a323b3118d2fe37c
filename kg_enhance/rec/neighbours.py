"""Item neighbourhoods and the scores they add to a model's (issue 16: ``lightgcn_knn``, ``kg_knn``).

An item-kNN term scores item ``i`` for user ``u`` by how similar ``i`` is to the user's training
items: ``kn(u, i) = mean over j in train(u) of S[i, j]``, with ``S`` each item's ``k`` nearest
items by the cosine of idf-weighted feature rows (features: the item's training users, for the
collaborative term; its ``(relation, entity)`` facts, for the knowledge term). This is ItemKNN
(Sarwar et al., 2001; the knowledge version is content-based ItemKNN), kept sparse throughout.

:class:`NeighbourScores` adds such terms to a model's dot product. Each term, and the dot product,
is divided by its standard deviation over the catalog for that user, so a weight means the same
for every user whatever the size of its history::

    score(u, i) = c_u . c_i / s_c(u)  +  sum_t  w_t kn_t(u, i) / s_t(u)

(a per-user z-score of each term, without the means, which do not change a user's ranking).

Cost, with ``k`` neighbours per item:

* :func:`item_knn`: item rows in chunks, each multiplied by the whole (sparse) feature matrix: the
  sum over features of (items with it) squared. Features shared by more than ``max_feature_items``
  items are left out (a genre of thousands of items makes everything a candidate of everything:
  quadratic); what they add to a cosine is small (their idf is low). With the cap that sum is at
  most ``cap x facts``: linear in the facts. Memory: one chunk of similarities (64 MiB dense at most).
* ranking: per user batch and item chunk, ``profiles[batch] @ S[chunk].T`` per term, a dense
  ``batch x chunk`` block like the dot product's (:func:`~kg_enhance.rec.evaluate.batched_top_k`);
  over a whole pass that is the users' training pairs times their items' in-neighbours, ``k`` on
  average. Each user's spread of a term (:func:`term_spread`) is one such pass, once per model.
  ``benchmarks/knn_scale.py`` measures both against the catalog size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import sparse

#: most item rows per chunk in :func:`item_knn` (a chunk's similarity rows are built at once)
KNN_CHUNK = 1 << 16
#: most feature-sharing products per chunk in :func:`item_knn` (bounds a chunk's similarity pairs)
PAIR_BUDGET = 1 << 24
#: float32 values of one dense chunk of similarities in :func:`item_knn` (64 MiB)
DENSE_BUDGET = 1 << 24
#: share of non-zero similarities above which a chunk's k-th values come from a dense top-k
DENSE_SHARE = 0.02


def feature_matrix(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sparse.csr_matrix:
    """Binary ``items x features`` matrix from ``(item, feature)`` index pairs (duplicates once)."""
    m = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (np.asarray(rows, np.int64), np.asarray(cols, np.int64))),
        shape=shape,
    )
    m.data[:] = 1.0  # duplicates summed to more than 1
    return m


def knowledge_features(item_entity_relations: np.ndarray, n_items: int) -> sparse.csr_matrix:
    """``items x (relation, entity)`` from ``(item, entity, relation)`` fact rows."""
    facts = np.asarray(item_entity_relations, dtype=np.int64).reshape(-1, 3)
    if not len(facts):
        return sparse.csr_matrix((n_items, 0), dtype=np.float32)
    key = facts[:, 2] * (int(facts[:, 1].max()) + 1) + facts[:, 1]
    _, col = np.unique(key, return_inverse=True)
    return feature_matrix(facts[:, 0], col, (n_items, int(col.max()) + 1))


def collaborative_features(train_pairs: np.ndarray, n_users: int, n_items: int) -> sparse.csr_matrix:
    """``items x users``: the users each item was trained with."""
    pairs = np.asarray(train_pairs, dtype=np.int64).reshape(-1, 2)
    return feature_matrix(pairs[:, 1], pairs[:, 0], (n_items, n_users))


def item_knn(
    features: sparse.csr_matrix,
    *,
    k: int,
    idf: bool = True,
    max_feature_items: int | None = None,
    chunk: int = KNN_CHUNK,
) -> sparse.csr_matrix:
    """``items x items``: each item's ``k`` most similar other items by the cosine of its feature
    row, with the similarity as value; an item without features (or sharing none) has no
    neighbours. ``idf``: weigh each feature by ``log(items / items with the feature)`` first.

    Features of more than ``max_feature_items`` items are left out (module docstring). Ties at the
    ``k``-th place are broken by the lower item row."""
    if k < 1:
        raise ValueError(f"item_knn: k must be at least 1, got {k}")
    if max_feature_items is not None and max_feature_items < 2:
        raise ValueError(
            f"item_knn: max_feature_items must be at least 2 (a feature of one item links no two items), "
            f"got {max_feature_items}; use null for no cap"
        )
    n_items, _ = features.shape
    x = sparse.csr_matrix(features, dtype=np.float32, copy=True)
    x.data[:] = 1.0
    df = np.asarray(x.sum(axis=0)).ravel()
    keep = df > 0 if max_feature_items is None else (df > 0) & (df <= max_feature_items)
    weight = np.log(n_items / np.maximum(df, 1)) if idf else np.ones_like(df)
    x = sparse.csr_matrix(x @ sparse.diags(np.where(keep, weight, 0.0).astype(np.float32)))
    x.eliminate_zeros()
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    x = sparse.csr_matrix(sparse.diags(np.where(norms > 0, 1.0 / np.maximum(norms, 1e-12), 0.0)) @ x)
    xt = sparse.csr_matrix(x.T)
    out_rows, out_cols, out_vals = [], [], []
    # rows per chunk: at most ``chunk``, and products (an upper bound of the chunk's similarity pairs:
    # per item, the items sharing each of its features) within PAIR_BUDGET, so memory is bounded and a
    # sparse catalog takes few, large chunks (each product call costs the catalog's size once)
    binary = x.copy()
    binary.data[:] = 1.0
    pairs = np.asarray(binary @ np.asarray(binary.sum(axis=0)).ravel()).ravel()
    total = np.concatenate([[0.0], np.cumsum(pairs)])
    c0 = 0
    while c0 < n_items:
        c1 = int(np.searchsorted(total, total[c0] + PAIR_BUDGET, side="right")) - 1
        # ... and rows whose dense block fits DENSE_BUDGET (or 1,024 rows for a huge catalog)
        c1 = min(max(c1, c0 + 1), c0 + chunk, c0 + max(DENSE_BUDGET // max(1, n_items), 1024), n_items)
        sims = sparse.coo_matrix(x[c0:c1] @ xt)
        rows, cols, vals = sims.row.astype(np.int64), sims.col.astype(np.int64), sims.data
        mine = (cols != rows + c0) & (vals > 0)
        rows, cols, vals = rows[mine], cols[mine], vals[mine]
        dense_fits = (c1 - c0) * n_items <= DENSE_BUDGET
        if dense_fits and len(vals) > DENSE_SHARE * (c1 - c0) * n_items and n_items > k:
            # dense enough that a dense top-k is cheaper than sorting every pair: keep the pairs at
            # or above their row's k-th largest value (ties included), then sort those exactly
            dense = torch.zeros((c1 - c0, n_items))
            dense[torch.as_tensor(rows), torch.as_tensor(cols)] = torch.as_tensor(vals, dtype=torch.float32)
            kth = torch.topk(dense, k, dim=1).values[:, -1].numpy()
            near = vals >= kth[rows]
            rows, cols, vals = rows[near], cols[near], vals[near]
        # per row: k largest values, ties by the lower item row (sort by row, -value, column)
        order = np.lexsort((cols, -vals, rows))
        rows, cols, vals = rows[order], cols[order], vals[order]
        starts = np.searchsorted(rows, np.arange(c1 - c0))
        rank = np.arange(len(rows)) - starts[rows]
        top = rank < k
        out_rows.append(rows[top] + c0)
        out_cols.append(cols[top])
        out_vals.append(vals[top].astype(np.float32))
        c0 = c1
    if not out_rows:
        return sparse.csr_matrix((n_items, n_items), dtype=np.float32)
    return sparse.csr_matrix(
        (np.concatenate(out_vals), (np.concatenate(out_rows), np.concatenate(out_cols))),
        shape=(n_items, n_items),
    )


def user_profiles(train_pairs: np.ndarray, n_users: int, n_items: int) -> sparse.csr_matrix:
    """``users x items``: ``1 / (the user's training items)`` on each of them, so
    ``profiles @ S.T`` is each user's mean similarity to an item."""
    pairs = np.unique(np.asarray(train_pairs, dtype=np.int64).reshape(-1, 2), axis=0)
    deg = np.bincount(pairs[:, 0], minlength=n_users).astype(np.float32)
    values = 1.0 / deg[pairs[:, 0]] if len(pairs) else np.zeros(0, np.float32)
    return sparse.csr_matrix((values, (pairs[:, 0], pairs[:, 1])), shape=(n_users, n_items))


def term_spread(
    profiles: sparse.csr_matrix, sim: sparse.csr_matrix, *, batch_users: int = 1024, chunk: int = 16384
) -> np.ndarray:
    """Each user's standard deviation, over the catalog, of ``kn(u, i) = (profiles @ sim.T)[u, i]``
    (zeros included), streamed in ``batch_users x chunk`` blocks: memory is one block whatever
    the catalog; cost is one scoring pass. It depends on the training pairs and the similarity
    only, so a model computes it once (not per weight it tries)."""
    n_users, n_items = profiles.shape
    total = np.zeros(n_users)
    square = np.zeros(n_users)
    for u0 in range(0, n_users, batch_users):
        rows_t = sparse.csr_matrix(profiles[u0 : u0 + batch_users].T)
        for c0 in range(0, n_items, chunk):
            # (chunk x items) @ (items x batch): scipy's work arrays are the batch's size, not the catalog's
            block = sparse.csr_matrix((sim[c0 : c0 + chunk] @ rows_t).T)
            total[u0 : u0 + rows_t.shape[1]] += np.asarray(block.sum(axis=1)).ravel()
            square[u0 : u0 + rows_t.shape[1]] += np.asarray(block.multiply(block).sum(axis=1)).ravel()
    mean = total / max(1, n_items)
    return np.asarray(np.sqrt(np.maximum(square / max(1, n_items) - mean * mean, 0.0)))


@dataclass
class NeighbourScores:
    """Item-kNN terms added to a model's dot product (module docstring): ``sims[t]`` with weight
    ``weights[t]``, over the users' training items ``profiles``; ``spreads[t]``: each user's
    spread of that term (:func:`term_spread`). Used by
    :func:`~kg_enhance.rec.evaluate.batched_top_k`: :meth:`prepare` once per ranking pass, then
    :meth:`batch` per user batch, whose :meth:`_BatchTerms.block` gives the terms of one item
    chunk: ``batch x chunk`` values at a time, like the dot product's."""

    profiles: sparse.csr_matrix
    sims: list[sparse.csr_matrix]
    weights: list[float]
    spreads: list[np.ndarray]
    _item_cov: torch.Tensor | None = field(default=None, repr=False)

    def prepare(self, item_vecs: torch.Tensor) -> None:
        """The item vectors' covariance: a user's dot-product spread over the catalog is
        ``sqrt(u^T C u)``, exact, without scoring the catalog twice."""
        v = item_vecs.detach().float()
        centred = v - v.mean(0, keepdim=True)
        self._item_cov = centred.T @ centred / max(1, v.shape[0])

    def batch(self, users: np.ndarray, u: torch.Tensor) -> tuple[torch.Tensor, _BatchTerms]:
        """``u`` divided by each user's dot-product spread, and the batch's neighbour terms."""
        if self._item_cov is None:
            raise RuntimeError("NeighbourScores.prepare(item_vecs) must run before batch()")
        spread = torch.sqrt(((u @ self._item_cov) * u).sum(-1).clamp_min(0.0))
        scaled = u / spread.clamp_min(1e-12).unsqueeze(-1)
        terms = []
        for sim, weight, spreads in zip(self.sims, self.weights, self.spreads, strict=True):
            s = spreads[users]
            if weight:
                scale = np.where(s > 0, weight / np.maximum(s, 1e-12), 0.0).astype(np.float32)
                terms.append((sim, scale))
        return scaled, _BatchTerms(sparse.csr_matrix(self.profiles[users].T), terms, u.device)


@dataclass
class _BatchTerms:
    """One user batch's profiles (transposed: items x batch) and its weighted terms; :meth:`block`
    computes one item chunk."""

    rows_t: sparse.csr_matrix
    terms: list[tuple[sparse.csr_matrix, np.ndarray]]
    device: torch.device

    def block(self, ids: slice | np.ndarray) -> torch.Tensor | None:
        """``batch x len(ids)``: the sum over terms of ``scale_u x kn(u, i)``, for the items ``ids``."""
        if not self.terms:
            return None
        out: np.ndarray | None = None
        for sim, scale in self.terms:
            part = (sim[ids] @ self.rows_t).toarray().T * scale[:, None]
            out = part if out is None else out + part
        return torch.as_tensor(out, dtype=torch.float32, device=self.device)
