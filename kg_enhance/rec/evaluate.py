"""Full-ranking evaluation: every item is a candidate, known positives are masked."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


def group_by_user(pairs: np.ndarray) -> dict[int, list[int]]:
    out: dict[int, list[int]] = defaultdict(list)
    for u, i in pairs.tolist():
        out[u].append(i)
    return out


@torch.no_grad()
def rank_metrics(
    scores_fn: Callable[[torch.Tensor], torch.Tensor],
    target: np.ndarray,
    exclude: list[np.ndarray],
    *,
    n_items: int,
    k: int,
    batch_users: int = 1024,
    device: str = "cpu",
) -> dict[str, float]:
    """Recall@K, NDCG@K (ideal DCG over the user's held-out items), HitRate@K and coverage@K.

    ``scores_fn(users_tensor) -> (len(users), n_items)`` scores; items in ``exclude``
    (e.g. training positives) are removed from each user's ranking.
    """
    truth = group_by_user(target)
    if not truth:
        return {f"recall@{k}": 0.0, f"ndcg@{k}": 0.0, f"hit@{k}": 0.0, f"coverage@{k}": 0.0, "users": 0}
    masks = defaultdict(list)
    for arr in exclude:
        for u, i in arr.tolist():
            masks[u].append(i)
    users = sorted(truth)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    recall = ndcg = hit = 0.0
    recommended: set[int] = set()
    for start in range(0, len(users), batch_users):
        batch = users[start : start + batch_users]
        scores = scores_fn(torch.as_tensor(batch, device=device)).float()
        rows, cols = [], []
        for r, u in enumerate(batch):
            cols.extend(masks[u])
            rows.extend([r] * len(masks[u]))
        if rows:
            scores[torch.as_tensor(rows, device=device), torch.as_tensor(cols, device=device)] = -torch.inf
        top = torch.topk(scores, k=min(k, n_items), dim=1).indices.cpu().numpy()
        for r, u in enumerate(batch):
            relevant = set(truth[u])
            gains = np.array([1.0 if i in relevant else 0.0 for i in top[r]])
            hits = gains.sum()
            recall += hits / len(relevant)
            idcg = discounts[: min(len(relevant), k)].sum()
            ndcg += float((gains * discounts[: len(gains)]).sum() / idcg)
            hit += float(hits > 0)
            recommended.update(top[r].tolist())
    n = len(users)
    return {
        f"recall@{k}": recall / n,
        f"ndcg@{k}": ndcg / n,
        f"hit@{k}": hit / n,
        f"coverage@{k}": len(recommended) / n_items,
        "users": n,
    }


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

    @classmethod
    def from_split(cls, split: Any, *, head_share: float = 0.2, few: int = 10) -> Slices:
        counts = np.bincount(split.train[:, 1], minlength=split.n_items)
        order = np.argsort(-counts, kind="stable")
        n_head = int(round(head_share * split.n_items))  # the short head: the top head_share of items
        tail = set(order[n_head:].tolist())
        user_counts = np.bincount(split.train[:, 0], minlength=split.n_users)
        few_users = {int(u) for u in np.nonzero(user_counts <= few)[0]}
        return cls(tail_items=tail, few_users=few_users, head_share=head_share, few=few)

    def evaluate(
        self, scores_fn: Any, split: Any, *, k: int, device: str = "cpu"
    ) -> dict[str, dict[str, float]]:
        exclude = [split.train, split.valid]
        test = split.test
        tail_rows = np.array([i in self.tail_items for i in test[:, 1].tolist()], dtype=bool)
        few_rows = np.array([u in self.few_users for u in test[:, 0].tolist()], dtype=bool)
        return {
            "long_tail": {
                **rank_metrics(
                    scores_fn, test[tail_rows], exclude, n_items=split.n_items, k=k, device=device
                ),
                "definition": f"test items outside the top {self.head_share:.0%} most-interacted items",  # type: ignore[dict-item]
            },
            "few_interactions": {
                **rank_metrics(scores_fn, test[few_rows], exclude, n_items=split.n_items, k=k, device=device),
                "definition": f"users with <= {self.few} training positives",  # type: ignore[dict-item]
            },
        }
