"""Probe, not a benchmark: which facts carry ``kg_knn``'s lift on one of lift.py's datasets?

``--dataset`` is lift.py's full ml-latest-small (the default), ``ml100k`` (RecBole's Freebase KG) or
``demo``. For each seed it trains our ``lightgcn`` once (lift.py's split and budget: up to 500 epochs,
validation every 5, patience 10 evaluations, the demo job's settings), then builds ``kg_knn`` around
those same weights for each relation subset (``kg_relations``) and lets it choose its weights on
validation as training does (:meth:`~kg_enhance.rec.models.LightGCNKNN.choose_blend`). The
reference is the same with the knowledge weight held at 0 (``lightgcn_knn``'s ranking). It prints,
per subset, mean test NDCG@20 and long-tail NDCG@20 over seeds, and the difference from the
reference paired over (seed, test user), with its t-test p-value. Last, it picks the subset
with the best mean *validation* NDCG@20 over seeds (a choice test never sees) and prints that
subset's test difference: what a search over ``kg_relations`` on validation would have given.
With ``--cache DIR`` each seed's trained LightGCN is kept (``DIR/lightgcn_<seed>.pt``) and
reused by the next call. ``--show N`` prints the N most-trained items' nearest items by the facts
and by the users, with titles, and nothing else.

    .venv/bin/python benchmarks/probes/knn_relations.py [--dataset ml100k] [--seeds 0,1,2,3,4]
        [--threads 1] [--cache DIR] [--kg-weights 0,0.02,0.05,0.1] [--show 8]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import lightgcn_gap  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy import stats  # noqa: E402

from kg_enhance.api import validate_job  # noqa: E402
from kg_enhance.config.models import RecModelSpec  # noqa: E402
from kg_enhance.rec.evaluate import RankingEvaluator, long_tail_mask  # noqa: E402
from kg_enhance.rec.models import KGKNN, KNN_WEIGHTS  # noqa: E402
from kg_enhance.rec.train import train_model  # noqa: E402

K = 20


def titles(dataset: str) -> dict[str, str]:
    """Item id -> title, from the dataset's own item file."""
    import pandas as pd

    if dataset == "ml100k":
        import rec_vs_recbole

        items = pd.read_csv(rec_vs_recbole.ml100k_source() / "ml-100k.item", sep="\t", dtype=str)
        items.columns = [c.split(":")[0] for c in items.columns]
        return dict(zip(items["item_id"], items["movie_title"], strict=True))
    movies = pd.read_csv(
        REPO.parent / "shared" / "data" / "movielens" / "ml-latest-small" / "movies.csv", dtype=str
    )
    return dict(zip(movies["movieId"], movies["title"], strict=True))


def show_neighbours(dataset: str, sp: object, kg: object, n: int) -> None:
    """The ``n`` most-trained items' 5 nearest items by kg_knn's facts and by lightgcn_knn's users."""
    from kg_enhance.rec.neighbours import collaborative_features, item_knn, knowledge_features

    name = titles(dataset)
    ids = [str(i) for i in sp.item_ids]  # type: ignore[attr-defined]
    train = sp.train  # type: ignore[attr-defined]
    n_items = sp.n_items  # type: ignore[attr-defined]
    by = {
        "facts": item_knn(
            knowledge_features(kg.item_entity_relations, n_items),  # type: ignore[attr-defined]
            k=5,
            max_feature_items=1000,
        ),
        "users": item_knn(collaborative_features(train, sp.n_users, n_items), k=5, max_feature_items=5000),  # type: ignore[attr-defined]
    }
    for item in np.argsort(-np.bincount(train[:, 1], minlength=n_items), kind="stable")[:n]:
        print(f"{name.get(ids[item], ids[item])}:")
        for label, knn in by.items():
            row = knn[item]
            order = np.argsort(-row.data, kind="stable")
            near = ", ".join(f"{name.get(ids[row.indices[j]], '?')} ({row.data[j]:.2f})" for j in order)
            print(f"  by {label}: {near or '-'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dataset", default="ml-latest-small", choices=["ml-latest-small", "ml100k", "demo"])
    ap.add_argument(
        "--kg-weights",
        default=",".join(map(str, KNN_WEIGHTS)),
        help="the knowledge weights validation chooses from (default kg_knn's own grid)",
    )
    ap.add_argument(
        "--show",
        type=int,
        default=0,
        help="print the N most-trained items' 5 nearest items by the facts and by the users, then stop",
    )
    ap.add_argument("--cache", type=Path, default=None, help="keep each seed's trained LightGCN here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    kg_weights = [float(w) for w in args.kg_weights.split(",")]
    job = validate_job(REPO / "examples" / "jobs" / "movielens-demo.yaml")
    ds = lightgcn_gap.dataset(args.dataset, job, kg=True)
    sp, kg = ds.split, ds.kg
    relations = list(kg.relation_keys)
    subsets: dict[str, list[str] | None] = {"all facts": None}
    subsets.update({f"only {r}": [r] for r in relations})
    subsets.update({f"all but {r}": [x for x in relations if x != r] for r in relations})
    base = job.recommender.model_copy(update={"epochs": 500, "eval_every": 5, "patience": 10, "k": K})
    valid_eval = RankingEvaluator(sp.valid, [sp.train], n_users=sp.n_users, n_items=sp.n_items, k=K)
    test_eval = RankingEvaluator(sp.test, [sp.train, sp.valid], n_users=sp.n_users, n_items=sp.n_items, k=K)
    tail = long_tail_mask(sp.train, sp.n_items, 0.2)
    tail_eval = RankingEvaluator(
        sp.test[tail[sp.test[:, 1]]], [sp.train, sp.valid], n_users=sp.n_users, n_items=sp.n_items, k=K
    )
    if args.show:
        show_neighbours(args.dataset, sp, kg, args.show)
        return
    print(f"{args.dataset}: {sp.n_users} users, {sp.n_items} items; relations {relations}", flush=True)
    per: dict[tuple[str, str], list[np.ndarray]] = {}
    valid: dict[str, list[float]] = {}
    for seed in [int(s) for s in args.seeds.split(",")]:
        t0 = time.time()
        cached = args.cache / f"lightgcn_{seed}.pt" if args.cache else None
        if cached is not None and cached.exists():
            state = torch.load(cached)
            print(f"seed {seed}: lightgcn from {cached}", flush=True)
        else:
            trained = train_model(
                RecModelSpec(type="lightgcn"), sp, base.model_copy(update={"seed": seed}), progress=False
            )
            state = trained.model.state_dict()
            print(
                f"seed {seed}: lightgcn best epoch {trained.best_epoch} ({time.time() - t0:.0f}s)", flush=True
            )
            if cached is not None:
                cached.parent.mkdir(parents=True, exist_ok=True)
                torch.save(state, cached)
        for name, subset in {"reference (knowledge weight 0)": None, **subsets}.items():
            model = KGKNN(
                sp.n_users,
                sp.n_items,
                base.dim,
                train_pairs=sp.train,
                kg_relations=subset,
                kg_weights=[0.0] if name.startswith("reference") else kg_weights,
                **kg.model_kwargs(),  # type: ignore[arg-type]
            )
            got = model.load_state_dict(state, strict=False)
            if got.unexpected_keys or set(got.missing_keys) != {"blend_weights"}:
                raise SystemExit(f"the trained LightGCN does not fit kg_knn: {got}")
            model.eval()
            with torch.no_grad():
                reps = model.representations()
                blend = model.choose_blend(
                    lambda m=model, r=reps: valid_eval.evaluate(*r, extra=m.extra_scores())[f"ndcg@{K}"]
                )
                extra = model.extra_scores()
                test = test_eval.per_user(*reps, extra=extra)["ndcg"]
                tail_ndcg = tail_eval.per_user(*reps, extra=extra)["ndcg"]
            valid.setdefault(name, []).append(float(blend["valid"]))
            per.setdefault((name, "test"), []).append(test)
            per.setdefault((name, "tail"), []).append(tail_ndcg)
            print(
                f"  {name:36s} weights {blend['chosen']} valid {blend['valid']:.4f} test {test.mean():.4f} "
                f"tail {tail_ndcg.mean():.4f}",
                flush=True,
            )
    print("\nover seeds, paired over (seed, test user) against the reference:")
    ref = "reference (knowledge weight 0)"
    for name in subsets:
        line = f"  {name:36s}"
        for part in ("test", "tail"):
            a, b = np.concatenate(per[(name, part)]), np.concatenate(per[(ref, part)])
            p = stats.ttest_rel(a, b).pvalue if np.any(a != b) else 1.0
            line += f"  {part} {a.mean():.4f} ({a.mean() - b.mean():+.4f}, p = {p:.2g})"
        print(line, flush=True)
    chosen = max(subsets, key=lambda n: float(np.mean(valid[n])))
    a, b = np.concatenate(per[(chosen, "test")]), np.concatenate(per[(ref, "test")])
    p = stats.ttest_rel(a, b).pvalue if np.any(a != b) else 1.0
    ta, tb = np.concatenate(per[(chosen, "tail")]), np.concatenate(per[(ref, "tail")])
    print(
        f"\nchosen on validation: {chosen} (mean valid {np.mean(valid[chosen]):.4f}, reference "
        f"{np.mean(valid[ref]):.4f}): test {a.mean():.4f} ({a.mean() - b.mean():+.4f}, p = {p:.2g}), "
        f"tail {ta.mean() - tb.mean():+.4f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
