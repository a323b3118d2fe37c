"""Do LLM text embeddings help the recommender? The text ablation rows over several seeds.

Runs ``kg-enhance ablate``'s rows (:func:`kg_enhance.ablation.run_ablation`) once per seed,
with ``recommender.seed`` and ``kge.seed`` set to it (a new split unless the job sets
``recommender.split_seed``, initialisation and KGE run each time), and prints mean +- std
over the seeds of every row's test metrics, plus each row's paired difference to ``no_kg``
(same split, same seed).

Rows: ``no_kg`` (lightgcn), ``text`` (lightgcn + LLM text vectors), ``gold`` (kg_lightgcn
on the catalog genres + HetRec facts), ``gold+text`` (both). The job's graph must be loaded
and its text embeddings computed first, e.g. for the demo with the local SmolLM2 server
(``kg-enhance llm serve``)::

    kg-enhance run examples/jobs/movielens-demo.yaml --until embed_text \\
        --set llm.enabled=false --set text_embeddings.enabled=true
    python benchmarks/text_embeddings_ablation.py examples/jobs/movielens-demo.yaml --seeds 1,2,3 \\
        --set llm.enabled=false --set text_embeddings.enabled=true --json out.json

Any other ``--set`` is passed to the job (e.g. ``recommender.epochs=30``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from typing import Any

from kg_enhance import api
from kg_enhance.ablation import run_ablation

METRICS = ("ndcg@20", "recall@20", "long_tail_ndcg@20", "few_interactions_ndcg@20")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("job")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--json", default=None, help="write the per-seed rows and the summary here")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    overrides = [
        "recommender.ablation.kg_variants=[gold]",
        "recommender.ablation.text=true",
        *args.overrides,
    ]
    base = api.load(args.job, overrides=overrides).job
    per_seed: list[dict[str, Any]] = []
    started = time.perf_counter()
    for seed in seeds:
        job = base.model_copy(
            update={
                "recommender": base.recommender.model_copy(update={"seed": seed}),
                "kge": base.kge.model_copy(update={"seed": seed}),
            }
        )
        t0 = time.perf_counter()
        result = run_ablation(job, progress=False)
        per_seed.append({"seed": seed, "seconds": round(time.perf_counter() - t0, 1), "rows": result["rows"]})
        print(
            f"seed {seed}: " + ", ".join(f"{r['variant']} {r.get('ndcg@20')}" for r in result["rows"]),
            flush=True,
        )

    variants = [r["variant"] for r in per_seed[0]["rows"] if "skipped" not in r]
    summary: dict[str, dict[str, Any]] = {}
    for variant in variants:
        summary[variant] = {}
        for metric in METRICS:
            values = [next(r[metric] for r in s["rows"] if r["variant"] == variant) for s in per_seed]
            baseline = [next(r[metric] for r in s["rows"] if r["variant"] == "no_kg") for s in per_seed]
            diffs = [v - b for v, b in zip(values, baseline, strict=True)]
            summary[variant][metric] = {
                "mean": statistics.fmean(values),
                "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "diff_vs_no_kg_mean": statistics.fmean(diffs),
                "diff_vs_no_kg_std": statistics.stdev(diffs) if len(diffs) > 1 else 0.0,
                "better_than_no_kg_in": sum(d > 0 for d in diffs),
            }
    meta = {
        "job": args.job,
        "overrides": overrides,
        "seeds": seeds,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} (shared with other processes)",
        "text_embeddings": base.text_embeddings.model_dump(mode="json"),
    }
    print(f"\n{len(seeds)} seeds ({', '.join(map(str, seeds))}); mean +- std (paired difference to no_kg):")
    print("| variant | " + " | ".join(METRICS) + " |")
    print("|---|" + "---|" * len(METRICS))
    for variant, by_metric in summary.items():
        cells = []
        for metric in METRICS:
            m = by_metric[metric]
            cell = f"{m['mean']:.4f} +- {m['std']:.4f}"
            if variant != "no_kg":
                cell += f" ({m['diff_vs_no_kg_mean']:+.4f} +- {m['diff_vs_no_kg_std']:.4f}, {m['better_than_no_kg_in']}/{len(seeds)})"
            cells.append(cell)
        print(f"| {variant} | " + " | ".join(cells) + " |")
    print(f"\n{meta['machine']}; {meta['seconds']} s in all")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"meta": meta, "summary": summary, "per_seed": per_seed}, fh, indent=1)


if __name__ == "__main__":
    main()
