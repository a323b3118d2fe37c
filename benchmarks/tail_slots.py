"""What reserving tail slots costs in ranking: full-ranking top-K with and without ``tail_slots``.

For catalogs the size of k copies of ml-latest-small (610 k users, 9,742 k items; k = 1, 2,
4, 8), random 64-d user and item vectors and 165 excluded (seen) items per user (ml-latest-small's
mean), the script times :func:`kg_enhance.rec.evaluate.batched_top_k` for every user, K = 20,
plainly and with 5 of the 20 positions reserved for the 80% least-interacted items (the
long-tail share of the default ``head_share``), side by side in one process, best of
``--repeat`` runs each. It also checks that both runs agree on the first ``K - slots``
positions, and that the reserved ones hold tail items.

    .venv/bin/python benchmarks/tail_slots.py [--k 1,2,4,8] [--repeat 3] [--slots 5]

``--k`` counts catalog copies, as in ``scale.py``; the list length K is 20.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from kg_enhance.rec.evaluate import TailSlots, UserItems, batched_top_k  # noqa: E402


def rank(users: torch.Tensor, items: torch.Tensor, seen: UserItems, policy: TailSlots | None) -> np.ndarray:
    out = np.zeros((users.shape[0], 20), dtype=np.int64)
    for batch, top, _ in batched_top_k(
        users, items, np.arange(users.shape[0]), k=20, exclude=seen, tail_slots=policy
    ):
        out[batch] = top
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", default="1,2,4,8")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--slots", type=int, default=5)
    args = parser.parse_args()
    print(
        f"machine: {platform.node()}, python {platform.python_version()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; {time.strftime('%Y-%m-%d %H:%M')}"
    )
    print(f"{'k':>3s} {'users':>7s} {'items':>7s} {'plain s':>9s} {'tail_slots s':>13s} {'ratio':>6s}")
    for k in [int(x) for x in args.k.split(",")]:
        rng = np.random.default_rng(k)
        n_users, n_items = 610 * k, 9742 * k
        users = torch.from_numpy(rng.normal(size=(n_users, 64)).astype(np.float32))
        items = torch.from_numpy(rng.normal(size=(n_items, 64)).astype(np.float32))
        pairs = np.stack(
            [np.repeat(np.arange(n_users), 165), rng.integers(0, n_items, 165 * n_users)], axis=1
        )
        seen = UserItems.from_pairs(pairs, n_users)
        tail = np.zeros(n_items, dtype=bool)
        tail[rng.permutation(n_items)[: int(0.8 * n_items)]] = True
        policy = TailSlots.of(tail, args.slots)
        best: dict[str, float] = {}
        got: dict[str, np.ndarray] = {}
        for _ in range(args.repeat):
            for name, p in (("plain", None), ("tail_slots", policy)):
                started = time.perf_counter()
                got[name] = rank(users, items, seen, p)
                best[name] = min(best.get(name, float("inf")), time.perf_counter() - started)
        keep = 20 - args.slots
        assert np.array_equal(got["plain"][:, :keep], got["tail_slots"][:, :keep])
        assert tail[got["tail_slots"][:, keep:]].all()
        print(
            f"{k:3d} {n_users:7d} {n_items:7d} {best['plain']:9.2f} {best['tail_slots']:13.2f} "
            f"{best['tail_slots'] / best['plain']:6.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
