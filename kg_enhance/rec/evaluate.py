"""Full-ranking evaluation and top-K: every item is a candidate, known positives are excluded.

Bounded memory for any catalog: users are scored in batches and items in chunks
(``batch_users x item_chunk`` scores at a time, 64 MiB of float32 by default), keeping a
running top-K per user; nothing ``users x items`` is ever built. Exclusion sets and
held-out targets are built once as sparse per-user lists (:class:`UserItems`, CSR) and
reused every epoch; metrics are computed with array operations, not per-user loops.
Models are scored from their final representations (computed once per evaluation), so
graph models propagate once, not once per user batch.

A :class:`TailSlots` policy (``recommender.tail_slots``) reserves the last positions of every
list for long-tail items, in the model's own score order; it is applied in the same ranking
pass, to every model alike, wherever lists are ranked (early stopping, test, the served top-K).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from kg_enhance.rec.neighbours import NeighbourScores

#: scores held at once: batch_users x item_chunk float32 values (64 MiB)
SCORE_BUDGET = 1 << 24


@dataclass(frozen=True)
class UserItems:
    """Items per user in compressed sparse rows: ``indices[indptr[u]:indptr[u + 1]]``."""

    indptr: np.ndarray
    indices: np.ndarray

    @classmethod
    def from_pairs(cls, pairs: np.ndarray, n_users: int) -> UserItems:
        pairs = np.unique(np.asarray(pairs, dtype=np.int64).reshape(-1, 2), axis=0)  # sorted by user, item
        users, items = pairs[:, 0], pairs[:, 1]
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(users, minlength=n_users), out=indptr[1:])
        return cls(indptr=indptr, indices=items)

    def counts(self, users: np.ndarray) -> np.ndarray:
        return np.asarray(self.indptr[users + 1] - self.indptr[users])

    def rows(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(row in users, item)`` for every item of ``users``, without a Python loop."""
        counts = self.counts(users)
        row = np.repeat(np.arange(len(users)), counts)
        starts = np.repeat(self.indptr[users], counts)
        offset = np.arange(len(row)) - np.repeat(np.cumsum(counts) - counts, counts)
        return row, self.indices[starts + offset]

    def users(self) -> np.ndarray:
        """Users with at least one item."""
        return np.nonzero(np.diff(self.indptr))[0]


@dataclass(frozen=True, eq=False)
class TailSlots:
    """Reserve the last ``slots`` of the K positions for items where ``tail`` is true.

    The list is the model's top ``K - slots`` over every item, then its best ``slots`` tail items
    not already in them, both in the model's score order (so the list stays sorted by score).
    A quota of this kind is how a recommender guarantees the long tail some exposure; since
    every model gets the same quota, comparing their long-tail figures under it compares how
    well each orders the tail.
    """

    tail: np.ndarray  # (n_items,) bool
    slots: int
    #: item rows, head items first, then tail items: the order a ranking pass visits them in
    order: np.ndarray = field(init=False)
    #: the inverse of :attr:`order`: each item row's position in it
    position: np.ndarray = field(init=False)
    #: how many head items lead :attr:`order`
    n_head: int = field(init=False)

    def __post_init__(self) -> None:  # built once per policy, not per ranking pass
        tail = np.asarray(self.tail, dtype=bool)
        order = np.concatenate([np.flatnonzero(~tail), np.flatnonzero(tail)])
        position = np.empty(len(order), dtype=np.int64)
        position[order] = np.arange(len(order))
        for name, value in (("tail", tail), ("order", order), ("position", position)):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "n_head", int(len(tail) - tail.sum()))

    @classmethod
    def of(cls, tail: np.ndarray | None, slots: int) -> TailSlots | None:
        """The policy, or None when there is nothing to reserve."""
        if tail is None or slots <= 0:
            return None
        return cls(np.asarray(tail, dtype=bool), slots)


def _fill_tail(
    top: tuple[torch.Tensor, torch.Tensor],
    tail_top: tuple[torch.Tensor, torch.Tensor],
    is_tail: torch.Tensor,
    slots: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``K - slots`` of ``top`` (items, scores), then the best ``slots`` of ``tail_top``
    (the top K, or all, tail items) not already among them, in score order. Where a user has
    fewer tail items left than ``slots``, the rest come from ``top``'s own next positions."""
    items, scores = top
    t_items, t_scores = tail_top
    k = items.shape[1]
    keep = k - slots
    head_items = items[:, :keep]
    rest_items, rest_scores = items[:, keep:], scores[:, keep:]
    missing = torch.isneginf
    # priority 0: a tail item not yet listed; 1: the plain list's next non-tail item (the fallback
    # when the tail runs out); 2: the plain list's own -inf filler (a user with fewer than K items
    # left); 3: never taken (already listed, excluded, or a tail item the tail list offers already).
    # Every plain rest position yields one distinct candidate below 3, so no item is listed twice.
    sorted_head = torch.sort(head_items, dim=1).values
    at = torch.searchsorted(sorted_head, t_items).clamp(max=keep - 1)
    listed = torch.gather(sorted_head, 1, at) == t_items
    t_prio = torch.where(listed | missing(t_scores), 3, 0)
    r_prio = torch.where(missing(rest_scores), 2, torch.where(is_tail[rest_items], 3, 1))
    cand_items = torch.cat([t_items, rest_items], dim=1)
    cand_scores = torch.cat([t_scores, rest_scores], dim=1)
    order = torch.sort(torch.cat([t_prio, r_prio], dim=1), dim=1, stable=True).indices[:, :slots]
    extra_items, extra_scores = torch.gather(cand_items, 1, order), torch.gather(cand_scores, 1, order)
    by_score = torch.sort(extra_scores, dim=1, descending=True, stable=True).indices
    extra_items, extra_scores = (
        torch.gather(extra_items, 1, by_score),
        torch.gather(extra_scores, 1, by_score),
    )
    return torch.cat([head_items, extra_items], dim=1), torch.cat([scores[:, :keep], extra_scores], dim=1)


def _chunks(n_items: int, batch_users: int) -> int:
    return max(1024, SCORE_BUDGET // max(1, batch_users))


@torch.no_grad()
def batched_top_k(
    user_vecs: torch.Tensor,
    item_vecs: torch.Tensor,
    users: np.ndarray,
    *,
    k: int,
    exclude: UserItems | None,
    batch_users: int = 1024,
    item_chunk: int | None = None,
    tail_slots: TailSlots | None = None,
    extra: NeighbourScores | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(users, top item rows, top scores)`` per user batch, excluded items never returned.

    With ``tail_slots`` the last positions hold long-tail items (:class:`TailSlots`): the pass
    visits head items, then tail items, keeping a running top-K of each, so the plain top-K
    and the tail's come from one scoring of every item. Memory per step is ``batch_users x
    item_chunk`` scores plus ``batch_users x k`` (twice with ``tail_slots``). A row can end in ``-inf`` scores only when fewer than ``k`` items
    are left to rank for the user.

    ``extra``: item-neighbourhood terms added to the dot product (:class:`NeighbourScores`, the
    ``*_knn`` models), one ``batch x chunk`` block per item chunk like the dot product's.
    """
    n_items = int(item_vecs.shape[0])
    k = min(k, n_items)
    chunk = item_chunk or _chunks(n_items, batch_users)
    device = item_vecs.device
    policy = tail_slots if tail_slots is not None and 0 < tail_slots.slots < k else None
    if policy is not None and policy.tail.shape != (n_items,):
        raise ValueError(f"tail_slots: the tail mask has shape {policy.tail.shape}, expected ({n_items},)")
    # with a policy, items are visited head first, then tail (``order``: item row per position),
    # so the tail's own top-K is the running top-K of the tail chunks and every item is scored
    # and ranked once, as without one; chunks never straddle the boundary
    order: torch.Tensor | None = None
    is_tail: torch.Tensor | None = None
    n_head = n_items
    if policy is not None:
        order = torch.as_tensor(policy.order, device=device)
        is_tail = torch.as_tensor(policy.tail, device=device)
        n_head = policy.n_head
    spans = [
        (c0, min(c0 + chunk, end))
        for begin, end in ((0, n_head), (n_head, n_items))
        for c0 in range(begin, end, chunk)
    ]
    order_np = None if order is None else order.cpu().numpy()
    if extra is not None:
        extra.prepare(item_vecs)
    for start in range(0, len(users), batch_users):
        batch = users[start : start + batch_users]
        u = user_vecs[torch.as_tensor(batch, device=device)].float()
        terms = None
        if extra is not None:
            u, terms = extra.batch(batch, u)
        rows, cols = exclude.rows(batch) if exclude is not None else (np.zeros(0, int), np.zeros(0, int))
        if policy is not None:
            cols = policy.position[cols]
        best = _Running(len(batch), k, device)
        best_tail = _Running(len(batch), k, device)
        for c0, c1 in spans:
            ids = torch.arange(c0, c1, device=device) if order is None else order[c0:c1]
            scores = u @ (item_vecs[c0:c1] if order is None else item_vecs[ids]).float().T
            if terms is not None:
                block = terms.block(slice(c0, c1) if order_np is None else order_np[c0:c1])
                if block is not None:
                    scores = scores + block
            inside = (cols >= c0) & (cols < c1)
            if inside.any():
                scores[
                    torch.as_tensor(rows[inside], device=device),
                    torch.as_tensor(cols[inside] - c0, device=device),
                ] = -torch.inf
            (best if c0 < n_head else best_tail).add(scores, ids)
        items, values = best.items, best.scores
        if policy is not None and is_tail is not None:
            plain = _Running(len(batch), k, device)
            plain.add(best.scores, best.items)
            plain.add(best_tail.scores, best_tail.items)
            items, values = _fill_tail(
                (plain.items, plain.scores), (best_tail.items, best_tail.scores), is_tail, policy.slots
            )
        yield batch, items.cpu().numpy(), values.cpu().numpy()


class _Running:
    """A running top-``k`` per row over item chunks."""

    def __init__(self, rows: int, k: int, device: torch.device) -> None:
        self.k = k
        self.scores = torch.full((rows, 0), -torch.inf, device=device)
        self.items = torch.zeros((rows, 0), dtype=torch.long, device=device)

    def add(self, scores: torch.Tensor, ids: torch.Tensor) -> None:
        """Merge ``scores`` of the items ``ids`` (1-d, one per column, or one row per row)."""
        merged_scores = torch.cat([self.scores, scores], dim=1)
        merged_items = torch.cat([self.items, ids.expand(scores.shape[0], -1)], dim=1)
        top = torch.topk(merged_scores, k=min(self.k, merged_scores.shape[1]), dim=1)
        self.scores = top.values
        self.items = torch.gather(merged_items, 1, top.indices)


class RankingEvaluator:
    """Recall@K, NDCG@K (ideal DCG over the user's held-out items), HitRate@K and coverage@K.

    Built once per (held-out target, excluded items); :meth:`evaluate` then ranks every
    item for every target user from a model's user and item representations.
    """

    def __init__(
        self,
        target: np.ndarray,
        exclude: list[np.ndarray],
        *,
        n_users: int,
        n_items: int,
        k: int,
        batch_users: int = 1024,
        tail_slots: TailSlots | None = None,
    ) -> None:
        self.truth = UserItems.from_pairs(target, n_users)
        pairs = [np.asarray(e, dtype=np.int64).reshape(-1, 2) for e in exclude]
        self.exclude = UserItems.from_pairs(np.concatenate(pairs) if pairs else np.zeros((0, 2)), n_users)
        self.users = self.truth.users()
        self.n_users, self.n_items, self.k, self.batch_users = n_users, n_items, k, batch_users
        #: the ranking policy of every list this evaluator ranks (:class:`TailSlots`)
        self.tail_slots = tail_slots
        self.discounts = 1.0 / np.log2(np.arange(2, k + 2))
        self.ideal = np.cumsum(self.discounts)

    def score_top(self, batch: np.ndarray, top: np.ndarray) -> dict[str, np.ndarray]:
        """Per-user ``recall``, ``ndcg`` and ``hit`` at K of the ranked ``top`` item rows of ``batch``.

        Shared by :meth:`evaluate` and by rankings computed elsewhere (a peer library's
        top-K lists), so every library is scored by the same code.
        """
        k = self.k
        rows, items = self.truth.rows(batch)
        truth_keys = np.sort(batch[rows] * self.n_items + items)
        top_keys = batch[:, None] * self.n_items + top[:, :k]
        gains = np.isin(top_keys, truth_keys).astype(np.float64)
        hits = gains.sum(axis=1)
        relevant = self.truth.counts(batch)
        idcg = self.ideal[np.minimum(relevant, k) - 1]
        return {
            "recall": hits / relevant,
            "ndcg": (gains @ self.discounts[: gains.shape[1]]) / idcg,
            "hit": (hits > 0).astype(np.float64),
        }

    @torch.no_grad()
    def per_user(
        self, user_vecs: torch.Tensor, item_vecs: torch.Tensor, extra: NeighbourScores | None = None
    ) -> dict[str, np.ndarray]:
        """Per-user metrics aligned with :attr:`users` (for paired tests over users), plus ``top``:
        the top-K item rows, one row per user (for coverage, and for :meth:`from_top` of evaluators
        over a subset of these users). Memory: K + a few numbers per evaluated user."""
        out: dict[str, list[np.ndarray]] = {"recall": [], "ndcg": [], "hit": [], "top": []}
        for batch, top, _ in batched_top_k(
            user_vecs,
            item_vecs,
            self.users,
            k=self.k,
            exclude=self.exclude,
            batch_users=self.batch_users,
            tail_slots=self.tail_slots,
            extra=extra,
        ):
            for name, values in self.score_top(batch, top).items():
                out[name].append(values)
            out["top"].append(top)
        return {name: np.concatenate(parts) if parts else np.zeros(0) for name, parts in out.items()}

    def from_top(self, users: np.ndarray, top: np.ndarray) -> dict[str, np.ndarray]:
        """:meth:`per_user` from top-K rows already ranked for ``users`` (sorted, a superset of
        :attr:`users`) with the same excluded items: the test split's slices reuse the test ranking
        instead of ranking every item again."""
        if len(self.users) == 0:
            return {name: np.zeros(0) for name in ("recall", "ndcg", "hit", "top")}
        at = np.searchsorted(users, self.users)
        if at.max() >= len(users) or not np.array_equal(users[at], self.users):
            raise ValueError("from_top: the ranked users do not include every user of this evaluator")
        rows = top[at]
        return {**self.score_top(self.users, rows), "top": rows}

    def summarise(self, per_user: dict[str, np.ndarray]) -> dict[str, float]:
        """Means of :meth:`per_user` values: Recall@K, NDCG@K, HitRate@K, coverage@K, users."""
        k = self.k
        n = len(self.users)
        if n == 0:
            return {f"recall@{k}": 0.0, f"ndcg@{k}": 0.0, f"hit@{k}": 0.0, f"coverage@{k}": 0.0, "users": 0}
        recommended = np.zeros(self.n_items, dtype=bool)
        recommended[per_user["top"].astype(np.int64)] = True
        return {
            f"recall@{k}": float(per_user["recall"].sum()) / n,
            f"ndcg@{k}": float(per_user["ndcg"].sum()) / n,
            f"hit@{k}": float(per_user["hit"].sum()) / n,
            f"coverage@{k}": float(recommended.sum()) / self.n_items,
            "users": n,
        }

    @torch.no_grad()
    def evaluate(
        self, user_vecs: torch.Tensor, item_vecs: torch.Tensor, extra: NeighbourScores | None = None
    ) -> dict[str, float]:
        return self.summarise(self.per_user(user_vecs, item_vecs, extra))


@torch.no_grad()
def rank_metrics(
    representations: tuple[torch.Tensor, torch.Tensor],
    target: np.ndarray,
    exclude: list[np.ndarray],
    *,
    n_items: int,
    k: int,
    batch_users: int = 1024,
) -> dict[str, float]:
    """One-off evaluation (see :class:`RankingEvaluator`) from ``(user vectors, item vectors)``."""
    user_vecs, item_vecs = representations
    evaluator = RankingEvaluator(
        target, exclude, n_users=int(user_vecs.shape[0]), n_items=n_items, k=k, batch_users=batch_users
    )
    return evaluator.evaluate(user_vecs, item_vecs)


def long_tail_mask(train: np.ndarray, n_items: int, head_share: float) -> np.ndarray:
    """``(n_items,)`` bool: items outside the short head, the top ``head_share`` of items by
    training interactions (ties broken by item row)."""
    counts = np.bincount(np.asarray(train, dtype=np.int64).reshape(-1, 2)[:, 1], minlength=n_items)
    order = np.argsort(-counts, kind="stable")
    n_head = int(round(head_share * n_items))
    mask = np.zeros(n_items, dtype=bool)
    mask[order[n_head:]] = True
    return mask


@dataclass
class Slices:
    """Test-set slices: long-tail items and users with few interactions.

    * ``long_tail``: test positives whose item is outside the most popular
      ``head_share`` of training interactions (the "short head"); ranking is still
      over all items, so this is how well a model surfaces the tail.
    * ``few_interactions``: users with at most ``few`` training positives.
    """

    tail_items: set[int]
    few_users: set[int]
    head_share: float
    few: int
    tail_mask: np.ndarray | None = None
    few_mask: np.ndarray | None = None

    @classmethod
    def from_split(cls, split: Any, *, head_share: float = 0.2, few: int = 10) -> Slices:
        tail_mask = long_tail_mask(split.train, split.n_items, head_share)
        user_counts = np.bincount(split.train[:, 0], minlength=split.n_users)
        few_mask = user_counts <= few
        return cls(
            tail_items={int(i) for i in np.nonzero(tail_mask)[0]},
            few_users={int(u) for u in np.nonzero(few_mask)[0]},
            head_share=head_share,
            few=few,
            tail_mask=tail_mask,
            few_mask=few_mask,
        )

    def evaluators(
        self, split: Any, *, k: int, tail_slots: TailSlots | None = None
    ) -> dict[str, RankingEvaluator]:
        """One evaluator per slice, over the test split with training and validation excluded,
        ranking with ``tail_slots`` (the policy the model is evaluated with)."""
        tail = (
            self.tail_mask
            if self.tail_mask is not None
            else np.isin(np.arange(split.n_items), list(self.tail_items))
        )
        few = (
            self.few_mask
            if self.few_mask is not None
            else np.isin(np.arange(split.n_users), list(self.few_users))
        )
        test, exclude = split.test, [split.train, split.valid]
        return {
            name: RankingEvaluator(
                rows, exclude, n_users=split.n_users, n_items=split.n_items, k=k, tail_slots=tail_slots
            )
            for name, rows in (
                ("long_tail", test[tail[test[:, 1]]]),
                ("few_interactions", test[few[test[:, 0]]]),
            )
        }

    def definitions(self) -> dict[str, str]:
        return {
            "long_tail": f"test items outside the top {self.head_share:.0%} most-interacted items",
            "few_interactions": f"users with <= {self.few} training positives",
        }

    def evaluate(
        self,
        representations: tuple[torch.Tensor, torch.Tensor],
        split: Any,
        *,
        k: int,
        tail_slots: TailSlots | None = None,
    ) -> dict[str, dict[str, float | int | str]]:
        definitions = self.definitions()
        return {
            name: {**evaluator.evaluate(*representations), "definition": definitions[name]}
            for name, evaluator in self.evaluators(split, k=k, tail_slots=tail_slots).items()
        }

    def from_test(
        self, test_users: np.ndarray, test_top: np.ndarray, split: Any, *, k: int
    ) -> dict[str, dict[str, float | int | str]]:
        """:meth:`evaluate` from the test ranking (``RankingEvaluator.per_user`` of the test split:
        its ``users`` and ``top``): every slice user is a test user with the same exclusions, so
        the slices cost no ranking of their own."""
        definitions = self.definitions()
        return {
            name: {
                **evaluator.summarise(evaluator.from_top(test_users, test_top)),
                "definition": definitions[name],
            }
            for name, evaluator in self.evaluators(split, k=k).items()
        }
