"""Recommender training and evaluation per device, on the demo split, without Neo4j or an LLM.

The demo job's split (bundled MovieLens ratings, rating >= 4, user-random 80/10/10, seed 0)
and a KG rebuilt from the bundled files (HetRec gold + catalog genres, as in
``benchmarks/kge.py``), embedded with PyKEEN using the job's ``kge`` settings. Every
registered model is trained with the job's ``recommender`` settings on each device
given; prints training seconds, epochs, seconds per epoch and test NDCG@20 / Recall@20.

    .venv/bin/python benchmarks/rec_speed.py [--devices cpu,cuda]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import pandas as pd  # noqa: E402
import torch  # noqa: E402
from kge import demo_triples  # noqa: E402

from kg_enhance.api import validate_job  # noqa: E402
from kg_enhance.config.models import RecModelSpec  # noqa: E402
from kg_enhance.datasets.movielens import DEMO_DIR  # noqa: E402
from kg_enhance.kge.train import _quiet_pykeen, train_kge  # noqa: E402
from kg_enhance.rec.data import make_split, positives  # noqa: E402
from kg_enhance.rec.evaluate import Slices  # noqa: E402
from kg_enhance.rec.kg import build_kg_inputs  # noqa: E402
from kg_enhance.rec.models import model_keys  # noqa: E402
from kg_enhance.rec.train import train_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="cpu")
    args = parser.parse_args()
    _quiet_pykeen()
    job = validate_job(REPO / "examples" / "jobs" / "movielens-demo.yaml")
    df = pd.read_csv(DEMO_DIR / "ratings.csv", dtype=str).rename(
        columns={"userId": "user_id", "movieId": "item_id", "timestamp": "ts"}
    )
    df["rating"] = df["rating"].astype(float)
    df["ts"] = df["ts"].astype(int)
    movies = pd.read_csv(DEMO_DIR / "movies.csv", dtype=str)["movieId"].tolist()
    split = make_split(
        positives(df, 4.0), kind="user_random", seed=job.recommender.effective_split_seed, item_ids=movies
    )
    triples = demo_triples()
    emb = train_kge(triples, job.kge, progress=False)
    kg = build_kg_inputs(emb, split, triples)
    slices = Slices.from_split(split)
    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs, torch {torch.__version__}")
    print(
        f"split: {split.n_users} users, {split.n_items} items, train {len(split.train)}; KG {len(triples)} triples"
    )
    print(
        f"{'device':24s} {'model':12s} {'train s':>8s} {'epochs':>6s} {'s/epoch':>8s} {'NDCG@20':>8s} {'Recall@20':>9s} {'tail NDCG':>9s}"
    )
    for device in args.devices.split(","):
        name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
        cfg = job.recommender.model_copy(update={"device": device})
        for model in model_keys():
            t = train_model(RecModelSpec(type=model), split, cfg, kg=kg, progress=False, slices=slices)
            print(
                f"{device + ' (' + name[:14] + ')':24s} {model:12s} {t.seconds:8.2f} {t.epochs:6d} {t.seconds / t.epochs:8.3f} "
                f"{t.test['ndcg@20']:8.4f} {t.test['recall@20']:9.4f} {t.slices['long_tail']['ndcg@20']:9.4f}"
            )


if __name__ == "__main__":
    main()
