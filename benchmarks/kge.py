"""The embed stage against calling ``pykeen.pipeline`` directly, on the same triples and settings.

Triples: the demo knowledge graph rebuilt from the bundled files (HetRec gold facts and
MovieLens catalog genres of the 300 demo movies), so the script needs no Neo4j and runs
on any machine, GPU boxes included. Settings: the demo job's ``kge`` section (TransE,
dim 64, 60 epochs max, early stopping on validation MRR), with ``--device``.

Rounds alternate ours and direct PyKEEN; medians are printed with training throughput
(training triples x epochs run / training seconds) and evaluation time.

    .venv/bin/python benchmarks/kge.py [--device cpu|cuda] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from kg_enhance.api import validate_job  # noqa: E402
from kg_enhance.datasets.movielens import DEMO_DIR  # noqa: E402
from kg_enhance.kge.train import _quiet_pykeen, train_kge  # noqa: E402
from kg_enhance.names import entity_key  # noqa: E402


def demo_triples() -> list[tuple[str, str, str]]:
    gold = pd.read_csv(DEMO_DIR / "gold_facts.tsv", sep="\t", dtype=str)
    movies = pd.read_csv(DEMO_DIR / "movies.csv", dtype=str)
    out = {
        (f"item:{i}", r, f"entity:{entity_key(t, o)}")
        for i, r, o, t in gold[["item_id", "relation", "object", "object_type"]].itertuples(index=False)
    }
    for mid, genres in movies[["movieId", "genres"]].itertuples(index=False):
        for g in genres.split("|"):
            if g and g != "(no genres listed)":
                out.add((f"item:{mid}", "HAS_GENRE", f"entity:{entity_key('Genre', g)}"))
    return sorted(out)


def direct(triples: list[tuple[str, str, str]], cfg, device: str) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """The same run written against PyKEEN's own API, as a user would without kg_enhance."""
    import torch
    from pykeen.pipeline import pipeline
    from pykeen.triples import TriplesFactory

    started = time.perf_counter()
    tf = TriplesFactory.from_labeled_triples(np.array(triples, dtype=str))
    training, validation, testing = tf.split(
        [1.0 - 2 * cfg.test_ratio, cfg.test_ratio, cfg.test_ratio], random_state=cfg.seed
    )
    torch.manual_seed(cfg.seed)
    result = pipeline(
        training=training,
        validation=validation,
        testing=testing,
        model=cfg.model,
        model_kwargs={"embedding_dim": cfg.dim},
        negative_sampler=cfg.negative_sampler,
        negative_sampler_kwargs={"num_negs_per_pos": cfg.num_negs_per_pos},
        optimizer="Adam",
        optimizer_kwargs={"lr": cfg.learning_rate},
        training_kwargs={"num_epochs": cfg.epochs, "batch_size": cfg.batch_size, "use_tqdm": False},
        stopper="early",
        # the cadence kg_enhance uses (kge.eval_every, kge.patience); PyKEEN keeps its own
        # evaluation batch search here, as a user of its pipeline would have it
        stopper_kwargs={
            "frequency": cfg.eval_every,
            "patience": cfg.patience,
            "metric": "inverse_harmonic_mean_rank",
            "relative_delta": 0.002,
        },
        evaluation_kwargs={"use_tqdm": False},
        random_seed=cfg.seed,
        device=device,
        use_tqdm=False,
    )
    vectors = result.model.entity_representations[0](indices=None).detach().cpu().numpy()
    wall = time.perf_counter() - started
    return {
        "wall": wall,
        "train": result.train_seconds,
        "eval": result.evaluate_seconds,
        "epochs": len(result.losses),
        "train_triples": training.num_triples,
        "mrr": float(result.metric_results.get_metric("both.realistic.inverse_harmonic_mean_rank")),
        "rows": vectors.shape[0],
    }


def ours(triples: list[tuple[str, str, str]], cfg) -> dict[str, float]:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = train_kge(triples, cfg, progress=False)
    wall = time.perf_counter() - started
    return {
        "wall": wall,
        "train": result.metadata["train_seconds"],
        "epochs": result.metadata["epochs_run"],
        "train_triples": result.metadata["train_triples"],
        "mrr": result.metrics["mrr"],
        "rows": result.entity_vectors.shape[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    _quiet_pykeen()
    import logging

    import torch

    logging.getLogger("pykeen").setLevel(logging.WARNING)

    job = validate_job(REPO / "examples" / "jobs" / "movielens-demo.yaml")
    cfg = job.kge.model_copy(update={"device": args.device, "split": "random"})  # the split PyKEEN draws
    triples = demo_triples()
    gpu = torch.cuda.get_device_name(0) if args.device == "cuda" else "none"
    print(
        f"machine: {platform.node()}, {os.cpu_count()} CPUs, torch {torch.__version__}, device {args.device} ({gpu})"
    )
    print(
        f"{len(triples)} triples; {cfg.model} dim {cfg.dim}, <= {cfg.epochs} epochs, batch {cfg.batch_size}, seed {cfg.seed}"
    )
    runs: dict[str, list[dict[str, float]]] = {"ours": [], "pykeen": []}
    direct(triples[:2000], cfg, args.device)  # warm-up: imports, CUDA context, kernels
    for _ in range(args.rounds):
        runs["ours"].append(ours(triples, cfg))
        runs["pykeen"].append(direct(triples, cfg, args.device))
    print(f"{'path':22s} {'wall s':>8s} {'train s':>8s} {'epochs':>7s} {'triples/s':>10s} {'MRR':>7s}")
    med = {}
    for name, rs in runs.items():
        wall = statistics.median(r["wall"] for r in rs)
        train = statistics.median(r["train"] for r in rs)
        epochs = rs[0]["epochs"]
        rate = rs[0]["train_triples"] * epochs / train
        med[name] = wall
        print(f"{name:22s} {wall:8.2f} {train:8.2f} {epochs:7.0f} {rate:10,.0f} {rs[0]['mrr']:7.4f}")
    evals = [r["eval"] for r in runs["pykeen"]]
    print(f"evaluation (filtered, both sides, batch 1024): median {statistics.median(evals):.2f}s")
    print(f"ours / pykeen.pipeline wall time: {med['ours'] / med['pykeen']:.3f} (target <= 1.10)")
    print(
        "same MRR both ways:",
        all(abs(a["mrr"] - b["mrr"]) < 1e-9 for a, b in zip(runs["ours"], runs["pykeen"], strict=True)),
    )


if __name__ == "__main__":
    main()
