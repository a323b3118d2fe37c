"""How the neighbourhood terms of ``lightgcn_knn`` / ``kg_knn`` grow with the catalog.

k-fold copies of the full ml-latest-small (ratings >= 4 as training pairs) with every HetRec fact
plus the catalog's genres, as ``scale.py`` builds them: copy r > 0 gets suffixed item and user
ids, entities are shared (so a director or a genre has k times the items). For each k, in a child
process of its own (so its peak RSS is its own), it times:

* ``item_knn`` of the collaborative features (items x users, 100 neighbours) and of the knowledge
  features (items x (relation, entity), idf, features of more than 1,000 items left out);
* ``term_spread`` of both terms (each user's spread over the catalog);
* one top-20 ranking of every user over every item with random 64-d vectors: the dot product
  alone, and with both neighbour terms (``batched_top_k(..., extra=...)``), side by side;

and prints the seconds, the peak RSS and the growth exponents (log-log slope from the first to
the last k) of each.

    .venv/bin/python benchmarks/knn_scale.py [--ks 1,2,4,8] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

SHARED = REPO.parent / "shared" / "data" / "movielens"


def child(k: int, threads: int) -> dict[str, float]:
    import numpy as np
    import pandas as pd
    import scale
    import torch

    from kg_enhance.rec.evaluate import UserItems, batched_top_k
    from kg_enhance.rec.neighbours import (
        NeighbourScores,
        collaborative_features,
        item_knn,
        knowledge_features,
        term_spread,
        user_profiles,
    )

    torch.set_num_threads(threads)
    scale.DATA = SHARED
    ml = SHARED / "ml-latest-small"
    ratings = pd.read_csv(ml / "ratings.csv", dtype=str)
    ratings = ratings[ratings["rating"].astype(float) >= 4.0]
    movies = pd.read_csv(ml / "movies.csv", dtype=str)
    genres = movies.assign(g=movies["genres"].str.split("|")).explode("g")
    genres = genres[genres["g"] != "(no genres listed)"]
    facts = pd.concat(
        [
            scale.gold_facts()[["item_id", "relation", "object"]],
            pd.DataFrame({"item_id": genres["movieId"], "relation": "HAS_GENRE", "object": genres["g"]}),
        ],
        ignore_index=True,
    )
    users, items, fact_items, fact_keys = [], [], [], []
    for r in range(k):
        suffix = "" if r == 0 else f"~{r}"
        users.append(ratings["userId"] + suffix)
        items.append(ratings["movieId"] + suffix)
        fact_items.append(facts["item_id"] + suffix)
        fact_keys.append(facts["relation"] + "|" + facts["object"])
    user_codes, _ = pd.factorize(pd.concat(users, ignore_index=True))
    all_items = pd.concat([*items, *fact_items], ignore_index=True)
    item_codes, item_ids = pd.factorize(all_items)
    n_pairs = sum(len(x) for x in items)
    pair_items, fact_rows = item_codes[:n_pairs], item_codes[n_pairs:]
    entity_codes, _ = pd.factorize(pd.concat(fact_keys, ignore_index=True))
    n_users, n_items = int(user_codes.max()) + 1, len(item_ids)
    pairs = np.unique(np.stack([user_codes, pair_items], 1), axis=0)
    facts_arr = np.stack([fact_rows, entity_codes, np.zeros(len(fact_rows), np.int64)], 1)
    out: dict[str, float] = {"users": n_users, "items": n_items, "pairs": len(pairs), "facts": len(facts_arr)}

    def timed(name: str, fn):  # type: ignore[no-untyped-def]
        t0, c0 = time.perf_counter(), time.process_time()
        value = fn()
        out[f"{name}_s"] = time.perf_counter() - t0
        out[f"{name}_cpu"] = time.process_time() - c0
        return value

    profiles = user_profiles(pairs, n_users, n_items)
    cf = timed("knn_cf", lambda: item_knn(collaborative_features(pairs, n_users, n_items), k=100, idf=False))
    kg = timed(
        "knn_kg",
        lambda: item_knn(knowledge_features(facts_arr, n_items), k=100, idf=True, max_feature_items=1000),
    )
    out["sim_nnz"] = cf.nnz + kg.nnz
    spreads = timed("spread", lambda: [term_spread(profiles, cf), term_spread(profiles, kg)])
    gen = torch.Generator().manual_seed(0)
    u = torch.randn(n_users, 64, generator=gen)
    i = torch.randn(n_items, 64, generator=gen)
    seen = UserItems.from_pairs(pairs, n_users)
    everyone = np.arange(n_users)

    def rank(extra: NeighbourScores | None) -> None:
        for _ in batched_top_k(u, i, everyone, k=20, exclude=seen, extra=extra):
            pass

    timed("rank_dot", lambda: rank(None))
    timed("rank_blend", lambda: rank(NeighbourScores(profiles, [cf, kg], [0.3, 0.2], spreads)))
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def exponent(ks: list[int], values: list[float]) -> float | None:
    if len(ks) < 2 or values[0] <= 0 or values[-1] <= 0:
        return None
    return math.log(values[-1] / values[0]) / math.log(ks[-1] / ks[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", default="1,2,4,8")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.threads)))
        return
    ks = [int(x) for x in args.ks.split(",")]
    rows = []
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; torch threads {args.threads}")
    for k in ks:
        got = subprocess.run(
            [sys.executable, __file__, "--child", str(k), "--threads", str(args.threads)],
            check=True,
            capture_output=True,
            text=True,
        )
        row = json.loads(got.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(
            f"k={k}: {row['users']:.0f} users, {row['items']:.0f} items, {row['pairs']:.0f} pairs, "
            f"{row['facts']:.0f} facts; kNN cf {row['knn_cf_s']:.2f}s kg {row['knn_kg_s']:.2f}s "
            f"(similarity non-zeros {row['sim_nnz']:.0f}); spreads {row['spread_s']:.2f}s; "
            f"top-20 for every user: dot {row['rank_dot_s']:.2f}s, dot + 2 terms {row['rank_blend_s']:.2f}s "
            f"({row['rank_blend_s'] / row['rank_dot_s']:.1f}x); peak RSS {row['peak_rss_mb']:.0f} MB",
            flush=True,
        )
    names = ["knn_cf_cpu", "knn_kg_cpu", "spread_cpu", "rank_dot_cpu", "rank_blend_cpu", "peak_rss_mb"]
    print(
        f"growth exponents k = {ks[0]}..{ks[-1]} (CPU seconds; pairs grow as k^1): "
        + ", ".join(f"{n} {exponent(ks, [r[n] for r in rows]) or float('nan'):.2f}" for n in names)
    )


if __name__ == "__main__":
    main()
