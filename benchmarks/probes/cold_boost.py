"""Probe, not a benchmark: can a cold-aware weight on kg_hybrid's knowledge channel bring the
long tail into the lists without costing overall accuracy?

Dataset: ``lift.py``'s full ml-latest-small (ratings >= 4 as positives, every HetRec fact plus
catalog genres, TransE at the demo job's settings). lightgcn and kg_hybrid train under the lift
protocol's budget (up to 500 epochs, validation every 5, patience 10 evaluations); their final
vectors are cached (``CACHE/reps_<seed>_<model>.npz``, the dataset as ``CACHE/ds.pkl``), so a
second call only re-scores.

For validation and test it prints overall NDCG@20 and long-tail NDCG@20 (test items outside the
20% most-interacted) of:

* ``plain``: the model's own lists (and, with ``slots5``, its lists with the last 5 positions
  reserved for tail items in its own score order, as ``recommender.tail_slots: 5`` does);
* ``boost b``: kg_hybrid scored ``c_u.c_i + (1 + b / (1 + n_i)) q_u.k_i`` (``n_i``: the item's
  training interactions), over the whole list;
* ``slots5, tail by ...``: the first 15 positions the plain ones, only the 5 tail slots ordered
  by the boosted score (kg_hybrid) or by ``score + g x score std / (1 + n_i)`` (any model);

* ``slots5, tail by knowledge`` / ``by cf + w kn`` (kg_hybrid): the 5 tail slots ordered by its
  knowledge channel ``q_u.k_i`` alone, or with that channel weighted ``w`` times, which scores
  cold and warm tail items alike;

and the long-tail test positives by their item's training interactions (cold items have none:
no collaborative model can rank them). Over all seeds it then picks kg_hybrid's tail-slot
variant with the best mean validation long-tail NDCG@20 and compares it with lightgcn's
``plain slots5`` on test, paired over (seed, user) pairs (t-test), as the scale issue's tail
target asks (the KG-joined model above the no-KG ones).

    .venv/bin/python benchmarks/probes/cold_boost.py [--seeds 0] [--threads 2] [--cache DIR]
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import lift  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from kg_enhance.config.models import RecModelSpec  # noqa: E402
from kg_enhance.rec.evaluate import long_tail_mask  # noqa: E402
from kg_enhance.rec.train import train_model  # noqa: E402

K = 20
SLOTS = 5
BINS = [(0, 0), (1, 1), (2, 2), (3, 5), (6, 10**9)]


def ndcg(top: np.ndarray, target: np.ndarray, n_items: int) -> float:
    """Mean NDCG@K over the users of ``target`` rows (user, item), from full top-K rows per user."""
    return float(ndcg_per_user(top, target, n_items).mean())


def ndcg_per_user(top: np.ndarray, target: np.ndarray, n_items: int) -> np.ndarray:
    """NDCG@K of each user of ``target`` rows (user, item), in user order, from full top-K rows per user."""
    users = np.unique(target[:, 0])
    rel = np.zeros((top.shape[0], n_items), dtype=bool)
    rel[target[:, 0], target[:, 1]] = True
    hits = np.take_along_axis(rel, top, 1)[users]
    disc = 1 / np.log2(np.arange(2, K + 2))
    idcg = np.cumsum(disc)[np.minimum(rel[users].sum(1), K) - 1]
    return (hits * disc).sum(1) / idcg


def ranked(
    head_scores: np.ndarray, tail_scores: np.ndarray, exclude: list[np.ndarray], tail: np.ndarray, slots: int
) -> np.ndarray:
    """Top-K rows: the first K - slots by ``head_scores``, the last ``slots`` tail items by ``tail_scores``."""
    s, t = head_scores.copy(), tail_scores.copy()
    for ex in exclude:
        s[ex[:, 0], ex[:, 1]] = -np.inf
        t[ex[:, 0], ex[:, 1]] = -np.inf
    first = np.argsort(-s, 1)[:, : K - slots]
    if not slots:
        return first
    t[:, ~tail] = -np.inf
    np.put_along_axis(t, first, -np.inf, 1)
    return np.concatenate([first, np.argsort(-t, 1)[:, :slots]], 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=REPO / ".kg-enhance" / "probes")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.cache.mkdir(parents=True, exist_ok=True)
    job = lift.validate_job(lift.JOB)
    if (args.cache / "ds.pkl").exists():
        ds = pickle.loads((args.cache / "ds.pkl").read_bytes())
    else:
        ds = lift.DATASETS["ml-latest-small"](job)
        (args.cache / "ds.pkl").write_bytes(pickle.dumps(ds))
    sp = ds.split
    tail = long_tail_mask(sp.train, sp.n_items, 0.2)
    deg = np.bincount(sp.train[:, 1], minlength=sp.n_items)
    rare = 1.0 / (1.0 + deg)

    def by_degree(items: np.ndarray) -> dict[str, int]:
        d = deg[items]
        return {f"{a}-{b}" if b < 10**9 else f"{a}+": int(((d >= a) & (d <= b)).sum()) for a, b in BINS}

    print(f"{sp.n_users} users, {sp.n_items} items; tail items {int(tail.sum())}")
    print("tail items by training interactions:", by_degree(np.nonzero(tail)[0]))
    print("tail test positives by training interactions:", by_degree(sp.test[tail[sp.test[:, 1]], 1]))
    base = job.recommender.model_copy(
        update={"epochs": 500, "eval_every": 5, "patience": 10, "tail_slots": 0}
    )
    per_user: dict[tuple[str, str, str], list[np.ndarray]] = defaultdict(list)
    for seed in [int(s) for s in args.seeds.split(",")]:
        for model in ("lightgcn", "kg_hybrid"):
            path = args.cache / f"reps_{seed}_{model}.npz"
            if not path.exists():
                t0 = time.time()
                cfg = base.model_copy(update={"seed": seed})
                trained = train_model(RecModelSpec(type=model), sp, cfg, kg=ds.kg, progress=False)
                print(f"seed {seed} {model}: best epoch {trained.best_epoch}, {time.time() - t0:.0f}s")
                with torch.no_grad():
                    u_t, i_t = trained.model.representations()
                np.savez(path, u=u_t.numpy(), i=i_t.numpy())
            z = np.load(path)
            u, i = z["u"], z["i"]
            full = u @ i.T
            variants: dict[str, tuple[np.ndarray, np.ndarray, int]] = {
                "plain": (full, full, 0),
                "plain slots5": (full, full, SLOTS),
            }
            for g in (0.5, 1.0, 2.0):
                variants[f"slots5, tail by score + {g} std/(1+n)"] = (
                    full,
                    full + g * full.std() * rare[None, :],
                    SLOTS,
                )
            if model == "kg_hybrid":
                d = u.shape[1] // 2
                cf, kn = u[:, :d] @ i[:, :d].T, u[:, d:] @ i[:, d:].T
                for b in (0.5, 1.0, 2.0, 3.0):
                    boosted = cf + kn * (1 + b * rare)[None, :]
                    variants[f"boost {b}"] = (boosted, boosted, 0)
                    variants[f"slots5, tail by boost {b}"] = (full, boosted, SLOTS)
                variants["slots5, tail by knowledge"] = (full, kn, SLOTS)
                for w in (2.0, 4.0):
                    variants[f"slots5, tail by cf + {w} kn"] = (full, cf + w * kn, SLOTS)
            for split, target, exclude in (
                ("valid", sp.valid, [sp.train]),
                ("test", sp.test, [sp.train, sp.valid]),
            ):
                target_tail = target[tail[target[:, 1]]]
                for name, (head_s, tail_s, slots) in variants.items():
                    top = ranked(head_s, tail_s, exclude, tail, slots)
                    per_user[(model, name, split)].append(ndcg_per_user(top, target_tail, sp.n_items))
                    rel = np.zeros((sp.n_users, sp.n_items), dtype=bool)
                    rel[target_tail[:, 0], target_tail[:, 1]] = True
                    tail_hits = top[np.take_along_axis(rel, top, 1)]
                    print(
                        f"seed {seed} {model:9s} {split:5s} {name:38s} NDCG@20 {ndcg(top, target, sp.n_items):.4f}"
                        f"  long-tail {ndcg(top, target_tail, sp.n_items):.4f}  tail hits by n {by_degree(tail_hits)}",
                        flush=True,
                    )

    compare(per_user)


def compare(per_user: dict[tuple[str, str, str], list[np.ndarray]]) -> None:
    """kg_hybrid's tail-slot variant chosen on validation against lightgcn's plain slots, on test."""
    from scipy import stats

    def pooled(model: str, name: str, split: str) -> np.ndarray:
        return np.concatenate(per_user[(model, name, split)])

    base = pooled("lightgcn", "plain slots5", "test")
    choices = [n for (m, n, sp_) in per_user if m == "kg_hybrid" and sp_ == "valid" and "slots5" in n]
    best = max(choices, key=lambda n: pooled("kg_hybrid", n, "valid").mean())
    print(
        f"\nover {len(per_user[('lightgcn', 'plain slots5', 'test')])} seeds, test long-tail NDCG@20, paired over (seed, user):"
    )
    for name in dict.fromkeys(["plain slots5", best]):
        ours = pooled("kg_hybrid", name, "test")
        diff = ours - base
        t = stats.ttest_rel(ours, base)
        print(
            f"  kg_hybrid {name:32s} {ours.mean():.4f} vs lightgcn plain slots5 {base.mean():.4f}: "
            f"{diff.mean():+.4f} (p = {t.pvalue:.3f}, {len(diff)} pairs)"
            + ("  <- chosen on validation" if name == best else "")
        )


if __name__ == "__main__":
    main()
