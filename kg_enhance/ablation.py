"""Ablation in one command: does the knowledge help, and which knowledge?

On the job's split, ``kg-enhance ablate JOB`` trains

* ``no_kg``: the baseline (``recommender.ablation.baseline``, default ``lightgcn``);
* ``gold``: the KG model (``recommender.ablation.model``, default ``kg_lightgcn``) on PyKEEN
  vectors trained from the gold facts only (``catalog`` plus every ``source.facts`` file,
  e.g. HetRec);
* ``llm``: the same, from the LLM's facts only;
* ``gold+llm``: the same, from both;

and, with LLM text embeddings (``text_embeddings.enabled``, or ``recommender.ablation.text``):

* ``text``: the baseline with each item's LLM text vector fused in (``text: true``, see
  :mod:`kg_enhance.rec.models`): the survey's "LLM as embedder" branch, no KG;
* ``<kg>+text``: the KG model on the first KG variant (``gold`` by default) with the text
  vectors fused in as well.

``recommender.ablation.kg_variants`` picks the KG rows (all three by default). The text
vectors are the run's ``text_embeddings/`` artifact when the embed_text stage ran, else
they are computed here through the text-embedding cache (nothing is written to the graph).

Each KG variant gets its own PyKEEN run (the job's ``kge`` settings) on exactly the
facts of its sources, read from the graph. A variant with too few facts to embed is
reported as skipped, with the count. The table goes to ``report.json`` (``ablation``)
and ``ablation/ablation.json``; ``ablation/ablation.png`` plots it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from kg_enhance.config.models import JobSpec
from kg_enhance.errors import SparseGraphError, StageError
from kg_enhance.graph.store import Neo4jStore
from kg_enhance.io.files import write_json, write_with
from kg_enhance.kge.artifacts import TextEmbeddings, load_text_embeddings
from kg_enhance.kge.train import train_kge
from kg_enhance.rec.evaluate import Slices
from kg_enhance.rec.kg import KGInputs, build_kg_inputs
from kg_enhance.rec.text import TextInputs, build_text_inputs
from kg_enhance.rec.train import TrainedModel, bare_spec, train_model
from kg_enhance.rundir import RunDir
from kg_enhance.stages.embed_text import compute_text_embeddings
from kg_enhance.stages.recommend import recommend_split

matplotlib.use("Agg")  # files only, never a window


def _row(name: str, sources: list[str] | None, trained: TrainedModel, k: int, **extra: Any) -> dict[str, Any]:
    test, sl = trained.test, trained.slices
    return {
        "variant": name,
        "sources": sources,
        f"ndcg@{k}": round(test[f"ndcg@{k}"], 4),
        f"recall@{k}": round(test[f"recall@{k}"], 4),
        f"hit@{k}": round(test[f"hit@{k}"], 4),
        f"coverage@{k}": round(test[f"coverage@{k}"], 4),
        f"long_tail_ndcg@{k}": round(float(sl["long_tail"][f"ndcg@{k}"]), 4),
        f"long_tail_recall@{k}": round(float(sl["long_tail"][f"recall@{k}"]), 4),
        f"few_interactions_ndcg@{k}": round(float(sl["few_interactions"][f"ndcg@{k}"]), 4),
        "train_seconds": round(trained.seconds, 2),
        "best_epoch": trained.best_epoch,
        "learning_rate": trained.learning_rate,
        # the best validation epoch was the last allowed one: more epochs would likely help
        "under_trained": trained.best_epoch >= trained.epochs
        and trained.history[-1]["epoch"] == trained.epochs
        if trained.history
        else False,
        **extra,
    }


def run_ablation(
    job: JobSpec, *, progress: bool = True, echo: Callable[[str], None] | None = None
) -> dict[str, Any]:
    cfg, ab = job.recommender, job.recommender.ablation
    k = cfg.k
    split = recommend_split(job)
    slices = Slices.from_split(split, head_share=cfg.head_share, few=cfg.few_interactions)
    gold = ab.gold_sources or ["catalog", *(f.name for f in job.source.facts)]
    every = {
        "gold": gold,
        "llm": ab.llm_sources,
        "gold+llm": [*gold, *ab.llm_sources],
    }
    variants: dict[str, list[str]] = {name: every[name] for name in ab.kg_variants}
    use_text = job.text_embeddings.enabled if ab.text is None else ab.text
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    say = echo or (lambda _: None)
    text: TextInputs | None = None
    if use_text:
        text = build_text_inputs(_text_embeddings(job, progress=progress), split)
        say(f"[ablate] text: {text.dim}-dimensional LLM text vectors for {text.coverage:.0%} of the items")

    say(f"[ablate] no_kg: {ab.baseline}")
    base = train_model(bare_spec(ab.baseline, cfg), split, cfg, progress=progress, slices=slices)
    rows.append(_row("no_kg", None, base, k, model=ab.baseline, kg_triples=0, kg_item_coverage=0.0))
    if text is not None:
        say(f"[ablate] text: {ab.baseline} + LLM text embeddings")
        trained = train_model(
            bare_spec(ab.baseline, cfg, text=True), split, cfg, text=text, progress=progress, slices=slices
        )
        rows.append(
            _row(
                "text",
                None,
                trained,
                k,
                model=f"{ab.baseline}+text",
                kg_triples=0,
                kg_item_coverage=0.0,
                text_item_coverage=round(text.coverage, 4),
            )
        )
    first_kg: tuple[str, list[str], int, KGInputs] | None = None
    with Neo4jStore.for_job(job) as store:
        for name, sources in variants.items():
            triples = store.item_fact_triples(sources)
            n = len(set(triples))
            say(f"[ablate] {name}: {n} KG triples from {', '.join(sources)}")
            try:
                emb = train_kge(triples, job.kge, progress=False)
            except SparseGraphError:
                # a sparse KG still gives vectors; only its held-out KGE metrics are unavailable
                emb = train_kge(triples, job.kge.model_copy(update={"test_ratio": 0.0}), progress=False)
            except StageError as e:
                rows.append({"variant": name, "sources": sources, "kg_triples": n, "skipped": str(e)})
                continue
            kg = build_kg_inputs(emb, split, triples)
            if first_kg is None:
                first_kg = (name, sources, n, kg)
            trained = train_model(
                bare_spec(ab.model, cfg), split, cfg, kg=kg, progress=progress, slices=slices
            )
            rows.append(
                _row(
                    name,
                    sources,
                    trained,
                    k,
                    model=ab.model,
                    kg_triples=n,
                    kg_item_coverage=round(kg.coverage, 4),
                    kge_mrr=None if (mrr := emb.metrics.get("mrr")) is None else round(mrr, 4),
                )
            )
    if text is not None and first_kg is not None:
        kg_name, sources, n, kg = first_kg
        say(f"[ablate] {kg_name}+text: {ab.model} + LLM text embeddings")
        trained = train_model(
            bare_spec(ab.model, cfg, text=True),
            split,
            cfg,
            kg=kg,
            text=text,
            progress=progress,
            slices=slices,
        )
        rows.append(
            _row(
                f"{kg_name}+text",
                sources,
                trained,
                k,
                model=f"{ab.model}+text",
                kg_triples=n,
                kg_item_coverage=round(kg.coverage, 4),
                text_item_coverage=round(text.coverage, 4),
            )
        )
    result = {
        "k": k,
        "split": {
            "kind": cfg.split,
            "seed": cfg.effective_split_seed,
            "training_seed": cfg.seed,
            "users": split.n_users,
            "items": split.n_items,
        },
        "slices": {
            "long_tail": f"test items outside the top {cfg.head_share:.0%} most-interacted items",
            "few_interactions": f"users with <= {cfg.few_interactions} training positives",
        },
        "rows": rows,
        "seconds": round(time.perf_counter() - started, 2),
    }
    run = RunDir.for_job(job)
    write_json(run.ablation_table, result)
    result["plot"] = str(plot(result, run.ablation_plot))
    report = run.read_report()
    report["ablation"] = result
    run.write_report(report)
    return result


def _text_embeddings(job: JobSpec, *, progress: bool) -> TextEmbeddings:
    """The run's text vectors when the embed_text stage wrote them, else computed through the cache."""
    run = RunDir.for_job(job)
    if (run.text_embeddings / "metadata.json").exists():
        return load_text_embeddings(run.root)
    text, _ = compute_text_embeddings(job, progress=progress)
    return text


def plot(result: dict[str, Any], path: Path) -> Path:
    k = result["k"]
    rows = [r for r in result["rows"] if "skipped" not in r]
    names = [r["variant"] for r in rows]
    metrics = [f"ndcg@{k}", f"recall@{k}", f"long_tail_ndcg@{k}", f"few_interactions_ndcg@{k}"]
    x = np.arange(len(metrics))
    width = 0.8 / max(1, len(rows))
    fig, ax = plt.subplots(figsize=(8, 4))
    for n, row in enumerate(rows):
        ax.bar(x + n * width, [row[m] for m in metrics], width, label=f"{names[n]} ({row.get('model')})")
    ax.set_xticks(x + width * (len(rows) - 1) / 2, metrics)
    ax.set_ylabel("test score")
    skipped = [r["variant"] for r in result["rows"] if "skipped" in r]
    title = f"KG ablation, {result['split']['users']} users x {result['split']['items']} items"
    ax.set_title(title + (f" (skipped: {', '.join(skipped)})" if skipped else ""))
    ax.legend(fontsize=8)
    fig.tight_layout()
    write_with(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)
    return path
