"""The noise curve: how precise must facts be before they help a recommender?

``kg-enhance ablate JOB --fact-noise 0,0.25,0.5,0.75 [--seeds 0,1,2]`` reads the job's gold
facts from the graph (as :mod:`kg_enhance.ablation` does: ``catalog`` plus every
``source.facts`` name, or ``recommender.ablation.gold_sources``), and for each seed

* trains the no-KG model (``recommender.ablation.baseline``) once;
* for each noise share ``p``: replaces ``round(p * n)`` of the ``n`` gold facts with wrong
  entities of the same type (:func:`kg_enhance.graph.noise.corrupt_facts`), trains PyKEEN
  vectors on the noisy facts (the job's ``kge`` settings) and the KG model
  (``recommender.ablation.model``) on them; ``p = 0`` is the gold KG itself.

A seed sets ``recommender.seed`` (the recommender's training, and the split unless
``recommender.split_seed`` fixes it), ``kge.seed`` and the noise draw, so seeds are
independent repetitions; the no-KG and KG models of one
seed share a split, and ``delta`` is their paired difference. Test NDCG@K overall and on
the long-tail slice are reported as mean and sample std over seeds.

Outputs, in the run folder's ``ablation/``: ``noise.json`` (every run and the summary),
``noise.csv`` (the summary) and ``noise.png``; ``report.json`` gets ``ablation.noise``.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from kg_enhance.config.models import JobSpec
from kg_enhance.errors import ConfigError, SparseGraphError, StageError
from kg_enhance.graph.noise import corrupt_facts
from kg_enhance.graph.store import GraphStore, Neo4jStore, Triple
from kg_enhance.io.files import write_json, write_text, write_with
from kg_enhance.kge.artifacts import Embeddings
from kg_enhance.kge.train import train_kge
from kg_enhance.rec.evaluate import Slices
from kg_enhance.rec.kg import build_kg_inputs
from kg_enhance.rec.train import TrainedModel, bare_spec, train_model
from kg_enhance.rundir import RunDir
from kg_enhance.stages.recommend import recommend_split

NO_KG = "no_kg"


def parse_shares(text: str) -> list[float]:
    """``"0,0.25,0.5"`` -> ``[0.0, 0.25, 0.5]`` (sorted, distinct, each in [0, 1])."""
    try:
        shares = sorted({float(x) for x in text.split(",") if x.strip()})
    except ValueError as e:
        raise ConfigError(f"--fact-noise {text!r}: {e}; give shares like 0,0.25,0.5,0.75") from e
    if not shares or not all(0.0 <= s <= 1.0 for s in shares):
        raise ConfigError(f"--fact-noise {text!r}: give shares in [0, 1] like 0,0.25,0.5,0.75")
    return shares


def _embed(triples: list[Triple], job: JobSpec, seed: int) -> Embeddings:
    config = job.kge.model_copy(update={"seed": seed})
    try:
        return train_kge(triples, config, progress=False)
    except SparseGraphError:  # as the ablation: vectors without held-out KGE metrics
        return train_kge(triples, config.model_copy(update={"test_ratio": 0.0}), progress=False)


def _run_row(trained: TrainedModel, k: int, epochs: int, **extra: Any) -> dict[str, Any]:
    return {
        **extra,
        f"ndcg@{k}": round(trained.test[f"ndcg@{k}"], 5),
        f"long_tail_ndcg@{k}": round(float(trained.slices["long_tail"][f"ndcg@{k}"]), 5),
        f"recall@{k}": round(trained.test[f"recall@{k}"], 5),
        "best_epoch": trained.best_epoch,
        "learning_rate": trained.learning_rate,
        "under_trained": trained.best_epoch >= epochs,
        "train_seconds": round(trained.seconds, 2),
    }


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=float)
    return round(float(a.mean()), 5), round(float(a.std(ddof=1)) if len(a) > 1 else 0.0, 5)


def summarise(runs: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """Mean and sample std over seeds per (variant, noise); ``delta``: paired difference to no-KG."""
    metrics = [f"ndcg@{k}", f"long_tail_ndcg@{k}"]
    base = {r["seed"]: r for r in runs if r["variant"] == NO_KG}
    rows = []
    for variant, noise in sorted({(r["variant"], r["noise"]) for r in runs if r["variant"] != NO_KG}):
        group = [r for r in runs if r["variant"] == variant and r["noise"] == noise]
        row: dict[str, Any] = {"variant": variant, "noise": noise, "seeds": len(group)}
        std: dict[str, float] = {}
        delta: dict[str, float] = {}
        delta_std: dict[str, float] = {}
        for m in metrics:
            row[m], std[m] = _mean_std([r[m] for r in group])
            paired = [r[m] - base[r["seed"]][m] for r in group if r["seed"] in base]
            if paired:
                delta[m], delta_std[m] = _mean_std(paired)
        row.update(
            std=std,
            delta=delta,
            delta_std=delta_std,
            replaced=group[0]["replaced"],
            under_trained=sum(r["under_trained"] for r in group),
        )
        rows.append(row)
    if base:
        ref: dict[str, Any] = {"variant": NO_KG, "noise": None, "seeds": len(base)}
        ref_std: dict[str, float] = {}
        for m in metrics:
            ref[m], ref_std[m] = _mean_std([r[m] for r in base.values()])
        ref.update(std=ref_std, under_trained=sum(r["under_trained"] for r in base.values()))
        rows.insert(0, ref)
    return rows


def run_noise_curve(
    job: JobSpec,
    *,
    shares: Sequence[float],
    seeds: Sequence[int] | None = None,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
    store: GraphStore | None = None,
) -> dict[str, Any]:
    """Train no-KG once and the KG model on each noisy gold KG, per seed; write and return the curve.

    The gold facts come from ``store`` (default: the job's Neo4j)."""
    cfg, ab = job.recommender, job.recommender.ablation
    k = cfg.k
    seeds = list(seeds) if seeds else [cfg.seed, cfg.seed + 1, cfg.seed + 2]
    shares = sorted(set(shares))
    gold = ab.gold_sources or ["catalog", *(f.name for f in job.source.facts)]
    say = echo or (lambda _: None)
    started = time.perf_counter()
    runs: list[dict[str, Any]] = []
    result: dict[str, Any] = {}
    with ExitStack() as stack:
        if store is None:
            store = stack.enter_context(Neo4jStore.for_job(job))
        triples = store.item_fact_triples(gold)
        n = len(set(triples))
        if n < 20:
            raise StageError(
                f"ablate --fact-noise: only {n} gold facts from {', '.join(gold)} in the graph; "
                "load the job first (`kg-enhance run JOB --only load`)"
            )
        say(f"[noise] {n} gold facts from {', '.join(gold)}; shares {shares}; seeds {seeds}")
        for seed in seeds:
            rcfg = cfg.model_copy(update={"seed": seed})
            seeded = job.model_copy(update={"recommender": rcfg})
            split = recommend_split(seeded, store)
            slices = Slices.from_split(split, head_share=cfg.head_share, few=cfg.few_interactions)
            base = train_model(bare_spec(ab.baseline, rcfg), split, rcfg, progress=progress, slices=slices)
            runs.append(
                _run_row(
                    base, k, cfg.epochs, variant=NO_KG, model=ab.baseline, seed=seed, noise=None, replaced=0
                )
            )
            say(f"[noise] seed {seed} no_kg ({ab.baseline}): NDCG@{k} {runs[-1][f'ndcg@{k}']:.4f}")
            for share in shares:
                noisy = corrupt_facts(triples, share, seed=seed)
                emb = _embed(noisy.triples, job, seed)
                kg = build_kg_inputs(emb, split, noisy.triples)
                trained = train_model(
                    bare_spec(ab.model, rcfg), split, rcfg, kg=kg, progress=progress, slices=slices
                )
                mrr = emb.metrics.get("mrr")
                runs.append(
                    _run_row(
                        trained,
                        k,
                        cfg.epochs,
                        variant=ab.model,
                        model=ab.model,
                        seed=seed,
                        noise=share,
                        replaced=noisy.n_replaced,
                        kge_mrr=None if mrr is None else round(mrr, 4),
                        kg_item_coverage=round(kg.coverage, 4),
                    )
                )
                say(
                    f"[noise] seed {seed} noise {share:.2f} ({noisy.n_replaced} of {n} replaced): "
                    f"NDCG@{k} {runs[-1][f'ndcg@{k}']:.4f}, long tail {runs[-1][f'long_tail_ndcg@{k}']:.4f}"
                )
            # written after every seed, so a long curve stopped early keeps the seeds it finished
            result = _write(job, runs, shares=shares, gold=gold, n=n, seconds=time.perf_counter() - started)
    return result


def _write(
    job: JobSpec, runs: list[dict[str, Any]], *, shares: list[float], gold: list[str], n: int, seconds: float
) -> dict[str, Any]:
    """The curve of the seeds finished so far: ``noise.json``, ``noise.csv``, ``noise.png``, ``report.json``."""
    cfg, ab = job.recommender, job.recommender.ablation
    k = cfg.k
    result: dict[str, Any] = {
        "k": k,
        "shares": shares,
        "seeds": list(dict.fromkeys(r["seed"] for r in runs)),
        "gold_sources": gold,
        "gold_facts": n,
        "model": ab.model,
        "baseline": ab.baseline,
        "epochs": {"kge": job.kge.epochs, "recommender": cfg.epochs},
        "seed_sets": "recommender.seed (training; the split too unless split_seed is set), kge.seed and the noise draw",
        "split_seed": cfg.split_seed,
        "rows": summarise(runs, k),
        "runs": runs,
        "seconds": round(seconds, 2),
    }
    run = RunDir.for_job(job)
    folder = run.ablation_dir
    result["table"] = str(write_json(folder / "noise.json", result))
    result["csv"] = str(write_text(folder / "noise.csv", to_csv(result["rows"], k)))
    result["plot"] = str(plot(result, folder / "noise.png"))
    report = run.read_report()
    previous = report.get("ablation")
    ablation: dict[str, Any] = previous if isinstance(previous, dict) else {}
    report["ablation"] = {**ablation, "noise": {**result, "rows": curve_rows(result), "runs": len(runs)}}
    run.write_report(report)
    return result


def curve_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The summary as one row per line and share (no-KG repeated at each share), as the report plots it."""
    k = result["k"]
    keys = [f"ndcg@{k}", f"long_tail_ndcg@{k}"]
    rows = [r for r in result["rows"] if r["variant"] != NO_KG]
    ref = [r for r in result["rows"] if r["variant"] == NO_KG]
    out = [
        {"variant": r["variant"], "noise": r["noise"], **{m: r[m] for m in keys}, "std": r["std"]}
        for r in rows
    ]
    for r in ref:
        out += [
            {"variant": NO_KG, "noise": s, **{m: r[m] for m in keys}, "std": r["std"]}
            for s in result["shares"]
        ]
    return out


def to_csv(rows: list[dict[str, Any]], k: int) -> str:
    metrics = [f"ndcg@{k}", f"long_tail_ndcg@{k}"]
    header = ["variant", "noise", "seeds", "replaced"]
    for m in metrics:
        header += [f"{m}_mean", f"{m}_std", f"{m}_delta_mean", f"{m}_delta_std"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for r in rows:
        line = [r["variant"], "" if r["noise"] is None else r["noise"], r["seeds"], r.get("replaced", "")]
        for m in metrics:
            line += [r[m], r["std"][m], r.get("delta", {}).get(m, ""), r.get("delta_std", {}).get(m, "")]
        writer.writerow(line)
    return buf.getvalue()


def format_table(result: dict[str, Any]) -> list[str]:
    """The summary as text lines (the CLI prints them)."""
    k = result["k"]
    nd, tail = f"ndcg@{k}", f"long_tail_ndcg@{k}"
    lines = [
        f"{'variant':14s} {'noise':>5s} {'replaced':>8s} {'NDCG@' + str(k) + ' (mean +- std)':>24s} "
        f"{'vs no KG':>18s} {'long-tail NDCG@' + str(k):>24s} {'vs no KG':>18s}"
    ]
    for r in result["rows"]:
        noise = "-" if r["noise"] is None else f"{r['noise']:.2f}"
        cells = []
        for m in (nd, tail):
            cells.append(f"{r[m]:.4f} +- {r['std'][m]:.4f}")
            d, s = r.get("delta", {}).get(m), r.get("delta_std", {}).get(m)
            cells.append("" if d is None else f"{d:+.4f} +- {s:.4f}")
        lines.append(
            f"{r['variant']:14s} {noise:>5s} {r.get('replaced', 0):>8d} {cells[0]:>24s} {cells[1]:>18s} "
            f"{cells[2]:>24s} {cells[3]:>18s}"
        )
    lines.append(
        f"{len(result['seeds'])} seeds {result['seeds']}; {result['gold_facts']} gold facts; "
        f"epochs: kge {result['epochs']['kge']}, recommender {result['epochs']['recommender']} (early stopping)"
    )
    return lines


def plot(result: dict[str, Any], path: Path) -> Path:
    """Two panels (NDCG@K, long-tail NDCG@K) against the noise share: the KG model's mean +- std
    over seeds, and the no-KG reference as a band."""
    k = result["k"]
    rows = [r for r in result["rows"] if r["variant"] != NO_KG]
    ref = next((r for r in result["rows"] if r["variant"] == NO_KG), None)
    fig = Figure(figsize=(9.0, 3.6))
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, [f"ndcg@{k}", f"long_tail_ndcg@{k}"], strict=True):
        xs = [r["noise"] for r in rows]
        ax.errorbar(
            xs,
            [r[metric] for r in rows],
            yerr=[r["std"][metric] for r in rows],
            marker="o",
            markersize=4,
            capsize=3,
            color="#1f77b4",
            label=f"{result['model']} on noisy gold KG",
        )
        if ref is not None:
            lo, hi = ref[metric] - ref["std"][metric], ref[metric] + ref["std"][metric]
            ax.axhline(ref[metric], color="#7f7f7f", linestyle="--", label=f"no KG ({result['baseline']})")
            ax.axhspan(lo, hi, color="#7f7f7f", alpha=0.15, linewidth=0)
        ax.set_xlabel("share of gold facts replaced")
        ax.set_title(f"test {metric}", fontsize=10)
        ax.spines["top"].set_visible(False)
        ax.spines["right"].set_visible(False)
        ax.grid(axis="both", alpha=0.25)
    axes[0].legend(fontsize=8)
    fig.suptitle(
        f"{result['gold_facts']} gold facts, a share replaced by wrong entities of the same type; "
        f"mean ± std over {len(result['seeds'])} seed{'s' if len(result['seeds']) != 1 else ''}",
        fontsize=10,
    )
    fig.tight_layout()
    write_with(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    return path
