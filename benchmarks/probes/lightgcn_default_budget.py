"""Probe, not a benchmark: lightgcn (or ``--model``) alone at the package's default budget (60 epochs, validation
every epoch, patience 8) on ``scale.py``'s k-copy job, for a few settings.

Why: at the default learning rate (0.005) lightgcn is flagged on the larger catalogs of
``scale.py``: under-trained at k = 1 (best epoch = 60), stopped on its first plateau at k = 4
and k = 16 (best epoch 1). This runs extract, load and recommend (lightgcn only, the graph in
the in-memory store, CPU) and prints the best epoch, the epochs run, the flags and test NDCG@20
for each ``--set key=value`` variant of ``recommender``.

    .venv/bin/python benchmarks/probes/lightgcn_default_budget.py --k 1,4 --variant learning_rate=0.005 --variant learning_rate=0.02
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import scale  # noqa: E402

from kg_enhance.api import run_job, validate_job  # noqa: E402
from kg_enhance.graph.memory import InMemoryGraphStore  # noqa: E402

ALL_MODELS = "models: [{type: bpr_mf}, {type: lightgcn}, {type: kg_bpr}, {type: kg_lightgcn}]"


def run_one(k: int, variant: str, scratch: Path, model: str = "lightgcn") -> str:
    folder = scratch / f"k{k}"
    if not (folder / "ratings.csv").exists():
        scale.write_copies(folder, k)
    job = scale.write_job(folder, k, device="cpu", uri="bolt://127.0.0.1:1")  # never opened
    text = job.read_text(encoding="utf-8")
    assert ALL_MODELS in text, "scale.write_job changed: update this probe"
    text = text.replace(ALL_MODELS, f"models: [{{type: {model}}}]")
    assert "  k: 20\n" in text, "scale.write_job changed: update this probe"  # where settings go
    for setting in filter(None, variant.split(",")):
        key, value = setting.split("=", 1)
        text = text.replace("  k: 20\n", f"  k: 20\n  {key}: {value}\n")
    job.write_text(text, encoding="utf-8")
    return train_and_report(job, [], folder / "run", model, f"k={k}", variant)


def train_and_report(job: Path, overrides: list[str], run: Path, model: str, where: str, variant: str) -> str:
    """Run ``job``'s stages up to recommend on the in-memory store; one line on ``model``'s training."""
    spec = validate_job(job, overrides=overrides)
    run_job(
        job,
        overrides=overrides,
        progress=False,
        full=True,
        # the KG-joined models start from the KGE vectors: they need the embed stage too
        only=["extract", "load", "embed", "recommend"]
        if model.startswith("kg_")
        else ["extract", "load", "recommend"],
        store_factory=lambda: InMemoryGraphStore.for_job(spec),
    )
    rep = json.loads((run / "recommend" / "metrics.json").read_text(encoding="utf-8"))[model]
    flags = [f for f in ("under_trained", "stopped_too_early") if rep.get(f)]
    return (
        f"{model} {where} {variant or 'defaults':28s} best epoch {rep['best_epoch']:3d} of {rep['epochs']:3d}  "
        f"test NDCG@20 {rep['test']['ndcg@20']:.4f}  train {rep['train_seconds']:.1f} s"
        + (f"  FLAGGED {', '.join(flags)}" if flags else "")
    )


DEMO_JOB = REPO / "examples" / "jobs" / "movielens-demo.yaml"


def run_demo(variant: str, scratch: Path, model: str) -> str:
    """The demo job (300 movies, its own 60 epochs and patience), the LLM off: catalog genres and
    HetRec facts only. The settings of ``variant`` go to ``recommender`` as overrides."""
    out = scratch / "demo"
    overrides = [
        "llm.enabled=false",
        f"outputs.dir={out}",
        f"recommender.models=[{{type: {model}}}]",
        *(f"recommender.{s}" for s in filter(None, variant.split(","))),
    ]
    return train_and_report(DEMO_JOB, overrides, out, model, "demo", variant)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", default="1,4", help="scale.py's copies; 'demo' runs the demo job instead")
    ap.add_argument("--model", default="lightgcn", help="the recommender trained (registry key)")
    ap.add_argument("--variant", action="append", default=None, help="key=value[,key=value] of recommender")
    ap.add_argument(
        "--data", default=None, help="the movielens data folder (default: ../shared/data/movielens)"
    )
    ap.add_argument("--scratch", type=Path, default=Path("/tmp/kg-enhance-lightgcn-budget"))
    args = ap.parse_args()
    if args.data:
        scale.DATA = Path(args.data).resolve()
    for k in args.k.split(","):
        for variant in args.variant or [""]:
            if k == "demo":
                print(run_demo(variant, args.scratch, args.model), flush=True)
            else:
                print(run_one(int(k), variant, args.scratch, args.model), flush=True)


if __name__ == "__main__":
    main()
