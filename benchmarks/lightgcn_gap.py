"""Why RecBole's LightGCN beat ours on the same split (issue 16): one training setting at a time.

Trains our ``lightgcn`` / ``kg_lightgcn`` on lift.py's exact split (``--dataset demo`` or
``ml100k``) under the lift protocol (validation NDCG@20 every 5 epochs, patience 10
evaluations, up to 500 epochs), for each ``--variant`` and seed, and appends one line per
run to ``--log`` (setting, seed, valid/test NDCG@20, best epoch, seconds) plus a mean ± std
line per variant. A variant is ``name:key=value,key=value``; keys of ``RecommenderConfig``
set the config, any other key goes to the model's params (``layers``, ``init``...), e.g.

    .venv/bin/python benchmarks/lightgcn_gap.py --variant "recbole:dim=64,learning_rate=0.001,layers=2,init=xavier"

The dataset (and the demo's PyKEEN vectors) is built once and cached under .kg-enhance/lift/.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import torch  # noqa: E402

from kg_enhance.api import validate_job  # noqa: E402
from kg_enhance.config.models import RecModelSpec, RecommenderConfig  # noqa: E402
from kg_enhance.rec.protocol import mean_std  # noqa: E402
from kg_enhance.rec.train import train_model  # noqa: E402

CACHE = REPO / ".kg-enhance" / "lift"


def ml100k_split(job: Any) -> Any:
    """lift.py's ml100k split alone (no PyKEEN training): enough for the models without a KG."""
    import rec_vs_recbole

    return SimpleNamespace(split=rec_vs_recbole.ml100k_split(job), kg=None)


def dataset(name: str, job: Any, *, kg: bool) -> Any:
    light = name == "ml100k" and not kg  # the demo's KG inputs are cheap: always built
    path = CACHE / f"gap_{name}{'_nokg' if light else ''}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    import lift

    ds = ml100k_split(job) if light else lift.DATASETS[name](job)
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(ds))
    return ds


def parse(variant: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    name, _, body = variant.partition(":")
    config: dict[str, Any] = {}
    params: dict[str, Any] = {}
    for item in filter(None, body.split(",")):
        key, _, raw = item.partition("=")
        value = json.loads(raw) if raw not in ("xavier", "normal") else raw
        (config if key in RecommenderConfig.model_fields else params)[key] = value
    return name, config, params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="demo", choices=["demo", "ml100k", "ml-latest-small"])
    parser.add_argument("--model", default="lightgcn")
    parser.add_argument("--variant", action="append", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument(
        "--log", type=Path, default=REPO / "benchmarks" / "results" / "lightgcn_gap_2026-11-30.txt"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    job = validate_job(REPO / "examples" / "jobs" / "movielens-demo.yaml")
    ds = dataset(args.dataset, job, kg=args.model not in ("lightgcn", "bpr_mf"))
    base = job.recommender.model_copy(
        update={"epochs": args.epochs, "eval_every": 5, "patience": 10, "k": 20}
    )
    for variant in args.variant:
        name, config, params = parse(variant)
        spec = RecModelSpec(type=args.model, params=params)
        valid, test = [], []
        for seed in args.seeds:
            cfg = base.model_copy(update={**config, "seed": seed})
            t = train_model(spec, ds.split, cfg, kg=ds.kg, progress=False)
            valid.append(t.valid["ndcg@20"])
            test.append(t.test["ndcg@20"])
            line = (
                f"{args.dataset} {args.model} {name} [{variant.partition(':')[2]}] seed {seed}: "
                f"valid {valid[-1]:.4f} test {test[-1]:.4f} best_epoch {t.best_epoch} stopped {t.epochs} "
                f"({t.seconds:.0f}s)"
            )
            print(line, flush=True)
            with args.log.open("a") as fh:
                fh.write(line + "\n")
        v, t_ = mean_std(valid), mean_std(test)
        summary = (
            f"== {args.dataset} {args.model} {name}: valid {v.mean:.4f} ± {v.std:.4f} "
            f"test {t_.mean:.4f} ± {t_.std:.4f} (seeds {args.seeds}, sample std; {time.strftime('%H:%M')} UTC)"
        )
        print(summary, flush=True)
        with args.log.open("a") as fh:
            fh.write(summary + "\n")


if __name__ == "__main__":
    main()
