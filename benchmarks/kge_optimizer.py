"""Dense Adam vs sparse gradients + SparseAdam for PyKEEN training, on k copies of the full MovieLens KG.

The KG: every HetRec director, country and tag (as a theme) and the catalog genres of the
full ``ml-latest-small`` (``../shared/data``), built as in ``benchmarks/scale.py``; copy
r > 0 gets suffixed item ids, entities are shared. Two measurements:

* ``--mode epoch``: CPU seconds per training epoch of PyKEEN's SLCWA loop (TransE 64-d,
  batch 512, 4 negatives, one torch thread) with dense Adam and with sparse embedding
  tables + ``torch.optim.SparseAdam``, for each k: how the step cost grows with the graph.
* ``--mode quality``: kg_enhance's ``train_kge`` (the embed stage's trainer: early stopping,
  bounded evaluation) with ``kge.optimizer`` adam and sparse_adam, test MRR and Hits@10.

    .venv/bin/python benchmarks/kge_optimizer.py --mode epoch --k 1,4,8
    .venv/bin/python benchmarks/kge_optimizer.py --mode quality --k 1 --seeds 42
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from scale import DATA, gold_facts  # noqa: E402


def labeled_triples(k: int) -> np.ndarray:
    movies = pd.read_csv(DATA / "ml-latest-small" / "movies.csv", dtype=str)
    gold = gold_facts()
    gold = gold[gold.item_id.isin(set(movies.movieId))]
    genres = movies.assign(genres=movies.genres.str.split("|")).explode("genres")
    rows = []
    for r in range(k):
        sfx = f"~{r}" if r else ""
        rows.append(
            np.stack(
                [
                    "item:" + gold.item_id + sfx,
                    gold.relation,
                    "entity:" + gold.object_type + ":" + gold.object,
                ],
                1,
            )
        )
        rows.append(
            np.stack(
                [
                    "item:" + genres.movieId + sfx,
                    np.full(len(genres), "HAS_GENRE"),
                    "entity:Genre:" + genres.genres,
                ],
                1,
            )
        )
    return np.unique(np.concatenate(rows).astype(str), axis=0)


def epoch_cost(k: int, sparse: bool, epochs: int = 2) -> dict[str, object]:
    from pykeen.models import TransE
    from pykeen.training import SLCWATrainingLoop
    from pykeen.triples import TriplesFactory

    torch.set_num_threads(1)
    tf = TriplesFactory.from_labeled_triples(labeled_triples(k))
    model = TransE(triples_factory=tf, embedding_dim=64, random_seed=1)
    if sparse:
        for m in model.modules():
            if isinstance(m, torch.nn.Embedding):
                m.sparse = True
    loop = SLCWATrainingLoop(
        model=model,
        triples_factory=tf,
        optimizer="SparseAdam" if sparse else "Adam",
        optimizer_kwargs={"lr": 0.01},
        negative_sampler_kwargs={"num_negs_per_pos": 4},
    )
    cpu = time.process_time()
    losses = loop.train(triples_factory=tf, num_epochs=epochs, batch_size=512, use_tqdm=False)
    return {
        "k": k,
        "optimizer": "SparseAdam" if sparse else "Adam",
        "triples": tf.num_triples,
        "entities": tf.num_entities,
        "cpu_s_per_epoch": round((time.process_time() - cpu) / epochs, 2),
        "losses": [round(x, 4) for x in losses or []],
    }


def quality(k: int, optimizer: str, seed: int) -> dict[str, object]:
    from kg_enhance.config.models import KGEConfig
    from kg_enhance.kge.train import train_kge

    triples = [(h, r, t) for h, r, t in labeled_triples(k).tolist()]
    cpu, wall = time.process_time(), time.perf_counter()
    e = train_kge(
        triples, KGEConfig(model="TransE", dim=64, epochs=60, optimizer=optimizer, seed=seed), progress=False
    )
    m = e.metadata
    return {
        "k": k,
        "optimizer": m["optimizer"],
        "seed": seed,
        "cpu_s": round(time.process_time() - cpu, 1),
        "wall_s": round(time.perf_counter() - wall, 1),
        "epochs_run": m["epochs_run"],
        "best_epoch": m["best_epoch"],
        "under_trained": m["under_trained"],
        "mrr": round(m["metrics"]["mrr"], 4),
        "hits@10": round(m["metrics"]["hits@10"], 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["epoch", "quality"], default="epoch")
    parser.add_argument("--k", default="1,4,8")
    parser.add_argument("--seeds", default="42")
    args = parser.parse_args()
    for k in (int(x) for x in args.k.split(",")):
        if args.mode == "epoch":
            for sparse in (False, True):
                print(json.dumps(epoch_cost(k, sparse)), flush=True)
        else:
            for seed in (int(s) for s in args.seeds.split(",")):
                for optimizer in ("adam", "sparse_adam"):
                    print(json.dumps(quality(k, optimizer, seed)), flush=True)


if __name__ == "__main__":
    main()
