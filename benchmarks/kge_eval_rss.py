"""Peak RSS and CPU seconds of the embed stage's KGE evaluation, with and without ``cpu_evaluation``.

The KG: ``kge_optimizer.labeled_triples(1)`` (HetRec directors, countries, tags as themes and the
catalog genres of the full ``ml-latest-small``, ../shared/data). Every variant runs in a fresh
Python process, so its peak RSS (VmHWM) is its own:

* ``--mode eval``: the embed stage's split (seed 42, 10%/10%), TransE 64-d trained ``--epochs``
  epochs (batch 512, as ``train_kge``), then one filtered test evaluation of ``--triples`` sampled
  test triples at the default 256 MiB plan. ``old``: PyKEEN's evaluator as ``train_kge`` called it
  before ``cpu_evaluation`` existed; ``scan``: PyKEEN's evaluator inside ``cpu_evaluation`` (one
  torch thread, 1 MiB mmap threshold), as ``link_prediction_metrics`` ran until the indexed
  evaluator (PyKEEN's broadcast scoring, known triples found by comparing with all of them);
  ``new``: ``link_prediction_metrics`` now (``kg_enhance.kge.ranking``: TransE scores as one
  ``torch.cdist`` per batch, known triples through a sorted index, one thread). ``--k`` copies
  the catalog's items k times (entities shared, as ``benchmarks/scale.py``). Printed: RSS before,
  peak (VmHWM reset just before the evaluation), rise, CPU and wall seconds of the evaluation,
  metrics.
* ``--mode stage``: ``train_kge`` with the defaults but ``--stage-epochs`` epochs and
  ``--eval-every``; ``old`` replaces ``cpu_evaluation`` by a no-op. Printed: the process's peak
  RSS, CPU seconds, the stage's eval_seconds, metrics.

    .venv/bin/python benchmarks/kge_eval_rss.py --mode eval --triples 1000 5000 [--variants old scan new] [--k 1 4]
    .venv/bin/python benchmarks/kge_eval_rss.py --mode stage --stage-epochs 4 --eval-every 2
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) // 1024
    return -1


def _split(k: int = 1) -> tuple[Any, Any, Any, int]:
    import numpy as np
    from kge_optimizer import labeled_triples
    from pykeen.triples import TriplesFactory

    unique = sorted({(h, r, t) for h, r, t in labeled_triples(k).tolist()})
    entities = sorted({h for h, _, _ in unique} | {t for _, _, t in unique})
    relations = sorted({r for _, r, _ in unique})
    tf = TriplesFactory.from_labeled_triples(
        np.array(unique, dtype=str),
        entity_to_id={e: i for i, e in enumerate(entities)},
        relation_to_id={r: i for i, r in enumerate(relations)},
    )
    training, validation, testing = tf.split([0.8, 0.1, 0.1], random_state=42)
    return training, validation, testing, len(unique)


def child_eval(variant: str, triples: int, epochs: int, k: int = 1) -> dict[str, Any]:
    import gc

    from pykeen.evaluation import RankBasedEvaluator

    from kg_enhance.config.models import KGEConfig
    from kg_enhance.kge import train as T

    T._quiet_pykeen()
    config = KGEConfig(model="TransE", dim=64, epochs=epochs, seed=42)
    training, validation, testing, n_unique = _split(k)
    model = T.build_model(config, training)
    loop = T._training_loop(config, model, training, False, sparse=False)
    loop.train(triples_factory=training, num_epochs=epochs, batch_size=config.batch_size, use_tqdm=False)
    # before the indexed evaluator, the plan budgeted PyKEEN's batch x known-triples filter masks
    plan = T.evaluation_batch_and_slice(
        model.num_entities,
        T.floats_per_entity(model),
        config.eval_memory_mb * 2**20,
        num_filter_triples=0 if variant == "new" else n_unique,
    )
    sample = T.sample_triples(testing.mapped_triples, triples, config.seed)
    known = [training.mapped_triples, validation.mapped_triples, testing.mapped_triples]
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = _status("VmRSS")
    cpu, wall = time.process_time(), time.perf_counter()
    if variant in ("old", "scan"):  # link_prediction_metrics as it was: PyKEEN's own evaluator
        T.IndexedRankBasedEvaluator = lambda **kw: RankBasedEvaluator(filtered=True, **kw)  # type: ignore[attr-defined,assignment]
    if variant == "old":  # ... and before cpu_evaluation existed
        T.cpu_evaluation = lambda device: contextlib.nullcontext()  # type: ignore[assignment,return-value]
    metrics = T.link_prediction_metrics(model, sample, known_triples=known, plan=plan)
    return {
        "mode": "eval",
        "variant": variant,
        "k": k,
        "train_epochs": epochs,
        "triples": int(sample.shape[0]),
        "entities": model.num_entities,
        "batch": plan.batch_size,
        "slice": plan.slice_size,
        "rss_before_mib": before,
        "peak_mib": _status("VmHWM"),
        "rise_mib": _status("VmHWM") - before,
        "eval_cpu_s": round(time.process_time() - cpu, 2),
        "eval_wall_s": round(time.perf_counter() - wall, 2),
        **{k: round(v, 6) for k, v in metrics.items()},
    }


def child_stage(variant: str, epochs: int, eval_every: int) -> dict[str, Any]:
    from kge_optimizer import labeled_triples

    from kg_enhance.config.models import KGEConfig
    from kg_enhance.kge import train as T

    if variant == "old":
        T.cpu_evaluation = lambda device: contextlib.nullcontext()  # type: ignore[assignment,return-value]
    triples = [(h, r, t) for h, r, t in labeled_triples(1).tolist()]
    cpu, wall = time.process_time(), time.perf_counter()
    e = T.train_kge(triples, KGEConfig(epochs=epochs, eval_every=eval_every), progress=False)
    m = e.metadata
    return {
        "mode": "stage",
        "variant": variant,
        "epochs": epochs,
        "eval_every": eval_every,
        "validation_evaluations": m["validation_evaluations"],
        "peak_rss_mib": _status("VmHWM"),
        "cpu_s": round(time.process_time() - cpu, 1),
        "wall_s": round(time.perf_counter() - wall, 1),
        "eval_seconds": m["eval_seconds"],
        "evaluation": m["evaluation"],
        **{k: round(v, 6) for k, v in m["metrics"].items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["eval", "stage"], default="eval")
    parser.add_argument("--variants", nargs="+", default=["old", "new"])
    parser.add_argument("--triples", type=int, nargs="+", default=[1000])
    parser.add_argument("--k", type=int, nargs="+", default=[1], help="catalog copies (eval mode)")
    parser.add_argument(
        "--epochs", type=int, default=1, help="training epochs before the evaluation (eval mode)"
    )
    parser.add_argument("--stage-epochs", type=int, default=4)
    parser.add_argument("--eval-every", type=int, default=2)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, variant, *rest = args.child
        if kind == "eval":
            out = child_eval(variant, int(rest[0]), int(rest[1]), int(rest[2]))
        else:
            out = child_stage(variant, int(rest[0]), int(rest[1]))
        print(json.dumps(out), flush=True)
        return
    import torch

    print(
        f"# {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC on {platform.node()}: {os.cpu_count()} CPUs, "
        f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}, torch {torch.__version__} "
        f"with {torch.get_num_threads()} threads",
        flush=True,
    )
    jobs = (
        [
            ["eval", v, str(n), str(args.epochs), str(k)]
            for k in args.k
            for n in args.triples
            for v in args.variants
        ]
        if args.mode == "eval"
        else [["stage", v, str(args.stage_epochs), str(args.eval_every)] for v in args.variants]
    )
    for job in jobs:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", *job], capture_output=True, text=True, check=False
        )
        lines = proc.stdout.strip().splitlines()
        if proc.returncode or not lines:
            print(
                json.dumps({"job": job, "error": (proc.stderr.strip().splitlines() or [""])[-1][:200]}),
                flush=True,
            )
        else:
            print(lines[-1], flush=True)


if __name__ == "__main__":
    main()
