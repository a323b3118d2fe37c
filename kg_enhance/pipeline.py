"""The pipeline: extract -> load -> embed -> recommend -> export.

Each stage reads what it needs from the run directory or the graph store and writes
its own section of ``<outputs.dir>/report.json``, so any stage can be re-run alone
(``--only``) and the report always reflects the latest run of every stage.

Run directory layout (documented in README.md, "Outputs"):

    report.json                 timings, counts and metrics per stage
    extract/facts.jsonl         validated LLM facts (one JSON object per line)
    extract/quarantine.jsonl    items whose answers stayed invalid, with raw output and errors
    extract/dropped.json        single facts removed by semantic checks, per item
    load/rejected_facts.txt     rows of fact files that did not fit the ontology
    embeddings/                 entity_vectors.npy, relation_vectors.npy, *_to_id.json, metadata.json
    recommend/metrics.json      per-model metrics; recommend/<model>.pt weights
    recommend/topk.parquet      precomputed top-K of the best model
    export/                     item_vectors.npy + item_ids.json (catalog order), entities.parquet
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kg_enhance.config.job import ontology_path
from kg_enhance.config.models import STAGES, JobSpec
from kg_enhance.errors import StageError
from kg_enhance.ontology.models import Ontology, load_ontology
from kg_enhance.paths import state_dir
from kg_enhance.types import Fact, QuarantineRecord

logger = logging.getLogger(__name__)


@dataclass
class RunContext:
    job: JobSpec
    ontology: Ontology
    out_dir: Path
    run_id: str
    progress: bool = True
    report: dict[str, Any] = field(default_factory=dict)
    _store: Any = None

    @property
    def store(self) -> Any:
        if self._store is None:
            from kg_enhance.graph.store import Neo4jStore

            self._store = Neo4jStore(self.job.neo4j)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def outputs_dir(job: JobSpec) -> Path:
    """The run directory: absolute, or relative to the current working directory."""
    return Path(job.outputs.dir).expanduser().resolve()


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


# --------------------------------------------------------------------------------------------
# extract
# --------------------------------------------------------------------------------------------
async def build_extractor(
    ctx: RunContext, *, head: str = "Item", client: Any = None, mode: str | None = None
) -> tuple[Any, Any, str]:
    """Client, mode and engine for the job; call inside the event loop that will use them.

    ``head="User"`` builds the user-side engine (``llm.users``: its template and grounding).
    Pass ``client`` and ``mode`` to share an open client and its detected mode.
    """
    from kg_enhance.extract.cache import ExtractionCache
    from kg_enhance.extract.client import OpenAICompatibleClient
    from kg_enhance.extract.engine import Extractor, RateLimiter
    from kg_enhance.extract.prompts import load_template

    llm = ctx.job.llm
    if client is None:
        client = OpenAICompatibleClient(
            base_url=llm.base_url,
            model=llm.model,
            api_key_env=llm.api_key_env,
            temperature=llm.temperature,
            max_tokens=llm.max_tokens,
            seed=llm.seed,
            timeout_s=llm.timeout_s,
            max_retries=llm.max_retries,
        )
    if mode is None:
        mode = llm.structured_output
        if mode == "auto":
            mode = await client.detect_mode()
    users = head == "User"
    extractor = Extractor(
        client,
        ctx.ontology,
        head=head,
        template=load_template(llm.users.prompt_template if users else llm.prompt_template),
        cache=ExtractionCache(state_dir() / "cache" / "extract.sqlite"),
        mode=mode,
        grounding=llm.users.grounding if users else llm.grounding,
        max_repairs=llm.max_repairs,
        max_concurrency=llm.max_concurrency,
        generation={"temperature": llm.temperature, "max_tokens": llm.max_tokens, "seed": llm.seed},
        progress=ctx.progress,
        budget_tokens=llm.budget_tokens,
        rate_limiter=RateLimiter(
            requests_per_minute=llm.requests_per_minute, tokens_per_minute=llm.tokens_per_minute
        ),
    )
    return extractor, client, mode


def stage_extract(ctx: RunContext) -> dict[str, Any]:
    from kg_enhance.datasets.tables import read_items

    items, _ = read_items(ctx.job)
    llm = ctx.job.llm
    selected = items[: llm.item_limit] if llm.item_limit else items
    out = ctx.out_dir / "extract"
    if not llm.enabled:
        _write_jsonl(out / "facts.jsonl", [])
        _write_jsonl(out / "quarantine.jsonl", [])
        (out / "extracted_ids.json").write_text(json.dumps({"items": [], "users": []}))
        return {"items": 0, "llm_calls": 0, "cache_hits": 0, "quarantined": 0, "tokens": 0, "enabled": False}

    users: list[Any] = []
    if llm.users.enabled:
        from kg_enhance.datasets.tables import read_users

        if not ctx.ontology.user_relations():
            raise StageError(
                f"llm.users.enabled: ontology {ctx.ontology.name!r} declares no relation with head User; "
                "add one (e.g. PREFERS with head: User) or turn llm.users off"
            )
        all_users = read_users(ctx.job)
        users = all_users[: llm.users.limit] if llm.users.limit else all_users

    async def go() -> tuple[Any, Any, str]:
        extractor, client, mode = await build_extractor(ctx)
        try:
            items_result = await extractor.run(selected)
            users_result = None
            if users and not items_result.stats.budget_reached:
                user_extractor, _, _ = await build_extractor(ctx, head="User", client=client, mode=mode)
                if llm.budget_tokens is not None:  # one budget for the whole stage
                    user_extractor.budget_tokens = max(1, llm.budget_tokens - items_result.stats.tokens)
                try:
                    users_result = await user_extractor.run(users)
                finally:
                    user_extractor.cache.close()
            return items_result, users_result, mode
        finally:
            await client.close()
            extractor.cache.close()

    result, user_result, mode = asyncio.run(go())
    facts = list(result.facts)
    quarantine = list(result.quarantine)
    dropped = dict(result.dropped)
    if user_result is not None:
        facts += user_result.facts
        quarantine += user_result.quarantine
        dropped.update({f"user:{k}": v for k, v in user_result.dropped.items()})
    _write_jsonl(out / "facts.jsonl", [f.model_dump() for f in facts])
    _write_jsonl(out / "quarantine.jsonl", [q.model_dump() for q in quarantine])
    (out / "dropped.json").write_text(json.dumps(dropped, indent=1, ensure_ascii=False))
    (out / "extracted_ids.json").write_text(
        json.dumps(
            {"items": result.extracted_ids, "users": user_result.extracted_ids if user_result else []},
            ensure_ascii=False,
        )
    )
    stats = result.stats.as_dict()
    stats.update(
        {
            "catalog_items": len(items),
            "structured_output": mode,
            "model": llm.model,
            "facts_by_relation": dict(Counter(f.relation for f in result.facts)),
            "users": None
            if user_result is None
            else {
                **user_result.stats.as_dict(),
                "facts_by_relation": dict(Counter(f.relation for f in user_result.facts)),
            },
            "cost": round(
                sum(
                    r.stats.prompt_tokens / 1e6 * llm.price_per_1m_input_tokens
                    + r.stats.completion_tokens / 1e6 * llm.price_per_1m_output_tokens
                    for r in (result, user_result)
                    if r is not None
                ),
                6,
            ),
        }
    )
    if result.stats.budget_reached:
        logger.warning(
            "extract: token budget %s reached; %d item(s) left pending (finished items are cached; re-run to continue)",
            llm.budget_tokens,
            result.stats.pending,
        )
    return stats


# --------------------------------------------------------------------------------------------
# load
# --------------------------------------------------------------------------------------------
def _item_rows(items: list[Any]) -> list[dict[str, Any]]:
    rows = []
    for item in items:
        props = {k: v for k, v in item.properties.items() if isinstance(v, (str, int, float, bool))}
        if item.title:
            props["title"] = item.title
        rows.append({"item_id": item.item_id, "props": props})
    return rows


def stage_load(ctx: RunContext) -> dict[str, Any]:
    from kg_enhance.datasets.tables import catalog_facts, read_fact_file, read_interactions, read_items
    from kg_enhance.graph.quality import compare_to_gold, degree_stats, duplicate_candidates
    from kg_enhance.graph.resolve import EntityResolver, alias_rows

    job, ontology = ctx.job, ctx.ontology
    items, items_df = read_items(job)
    item_ids = {i.item_id for i in items}
    facts: list[Fact] = catalog_facts(job, ontology, items_df)
    rejects: list[str] = []
    for n, spec in enumerate(job.source.facts):
        got, bad = read_fact_file(job, ontology, spec, n)
        facts.extend(got)
        rejects.extend(bad)
    quarantine: list[QuarantineRecord] = []
    facts_path = ctx.out_dir / "extract" / "facts.jsonl"
    if job.llm.enabled:
        if not facts_path.exists():
            raise StageError(
                f"load: {facts_path} not found; run the extract stage first (`kg-enhance run JOB --until extract`)"
            )
        facts.extend(Fact(**row) for row in _read_jsonl(facts_path))
        qpath = ctx.out_dir / "extract" / "quarantine.jsonl"
        if qpath.exists():
            quarantine = [QuarantineRecord(**row) for row in _read_jsonl(qpath)]
    outside = [f for f in facts if f.head_kind == "Item" and f.head_id not in item_ids]
    facts = [f for f in facts if f.head_kind != "Item" or f.head_id in item_ids]
    rejects.extend(f"fact about unknown item {f.head_id!r} ({f.source})" for f in outside[:1000])
    if rejects:
        path = ctx.out_dir / "load" / "rejected_facts.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(rejects) + "\n", encoding="utf-8")

    store = ctx.store
    started = time.perf_counter()
    store.ensure_schema(ontology)
    if job.graph.resolution.seed_vocabulary:
        store.seed_vocabulary(ontology, run_id=ctx.run_id)
    store.write_items(_item_rows(items), item_label=ontology.item.label)
    interactions = 0
    if job.source.interactions is not None:
        df = read_interactions(job)
        df = df[df["item_id"].isin(item_ids)]
        store.write_users(df["user_id"].tolist())
        rows = [
            {
                "user_id": u,
                "item_id": i,
                "rating": None if r != r else float(r),
                "ts": None if t != t else int(t),
            }
            for u, i, r, t in df[["user_id", "item_id", "rating", "ts"]].itertuples(index=False, name=None)
        ]
        interactions = store.write_interactions(rows)
    resolutions = EntityResolver(store, job.graph.resolution).resolve(
        (f.object_type, f.object) for f in facts
    )
    written = store.write_facts(facts, ontology, job=job.name, run_id=ctx.run_id, resolutions=resolutions)
    aliases = alias_rows(resolutions.values())
    store.write_aliases(aliases, run_id=ctx.run_id)
    loaded_sources = sorted(
        {"catalog", *(spec.name for spec in job.source.facts), *(["llm"] if job.llm.enabled else [])}
    )
    stale = store.delete_stale_facts(job=job.name, run_id=ctx.run_id, sources=loaded_sources)
    store.mark_quarantined(quarantine, run_id=ctx.run_id)
    write_seconds = time.perf_counter() - started
    totals = store.totals()
    res_cfg = job.graph.resolution
    duplicates = duplicate_candidates(
        store, threshold=res_cfg.duplicate_report_threshold, min_chars=res_cfg.min_chars
    )
    llm_vs_gold: dict[str, Any] = {}
    ids_path = ctx.out_dir / "extract" / "extracted_ids.json"
    if job.llm.enabled and ids_path.exists():
        llm_items = set(json.loads(ids_path.read_text())["items"])
        gold_sources = job.graph.compare_sources or [spec.name for spec in job.source.facts]
        for source in gold_sources:
            llm_vs_gold[source] = compare_to_gold(
                facts, gold_source=source, llm_items=llm_items, resolutions=resolutions
            )
    return {
        **totals,
        "items_with_facts_share": round(totals["items_with_facts"] / max(1, totals["items"]), 4),
        "nodes_by_label": store.counts_by_label(),
        "edges_by_type": store.counts_by_type(),
        "facts_written": written,
        "stale_facts_deleted": stale,
        "facts_by_source": dict(Counter(f.source for f in facts)),
        "user_facts_written": sum(1 for f in facts if f.head_kind == "User"),
        "interactions_written": interactions,
        "rejected_facts": len(rejects),
        "quarantined_items": len(quarantine),
        "write_seconds": round(write_seconds, 3),
        "resolution": {
            "names": len(resolutions),
            "by_reason": dict(Counter(r.reason for r in resolutions.values())),
            "fuzzy_merges": [
                {
                    "name": a["name"],
                    "into": resolutions[(a["type"], a["name"])].canonical_name,
                    "score": a["score"],
                }
                for a in aliases[:25]
            ],
        },
        "degrees": degree_stats(store),
        "duplicate_candidates": len(duplicates),
        "duplicate_candidates_top": duplicates[:10],
        "llm_vs_gold": llm_vs_gold,
    }


# --------------------------------------------------------------------------------------------
# embed
# --------------------------------------------------------------------------------------------
def stage_embed(ctx: RunContext) -> dict[str, Any]:
    from kg_enhance.graph.fingerprint import graph_fingerprint
    from kg_enhance.kge.train import save_embeddings, train_kge

    cfg = ctx.job.kge
    store = ctx.store
    fingerprint = graph_fingerprint(store).hash
    triples = store.item_fact_triples(cfg.sources)
    if cfg.relations == "collaborative":
        threshold = ctx.job.source.interactions.positive_threshold if ctx.job.source.interactions else None
        triples += store.interaction_triples(threshold)
        triples += store.user_fact_triples(cfg.sources)
    result = train_kge(triples, cfg, progress=ctx.progress, graph_fingerprint=fingerprint)
    result.metadata["run_id"] = ctx.run_id
    folder = save_embeddings(result, ctx.out_dir / "embeddings", version=ctx.run_id)

    started = time.perf_counter()
    written = {"item": 0, "entity": 0}
    rows: dict[str, list[dict[str, Any]]] = {"item": [], "entity": []}
    for label, idx in result.entity_to_id.items():
        kind, _, anchor = label.partition(":")
        if kind in rows:
            rows[kind].append({"id": anchor, "vector": result.entity_vectors[idx].tolist()})
    for kind, kind_rows in rows.items():
        written[kind] = store.write_embeddings(kind, kind_rows, model=cfg.model, run_id=ctx.run_id)
    store.finish_embeddings(dimensions=int(result.entity_vectors.shape[1]), run_id=ctx.run_id)
    return {
        "metrics": result.metrics,
        **{k: v for k, v in result.metadata.items() if k != "metrics"},
        "artifact": str(folder),
        "written_back": {**written, "seconds": round(time.perf_counter() - started, 3)},
        "vector_indexes": ["item_embedding", "entity_embedding"],
    }


# --------------------------------------------------------------------------------------------
# recommend
# --------------------------------------------------------------------------------------------
def recommend_split(job: JobSpec, store: Any = None) -> Any:
    """The job's implicit-feedback split (deterministic by ``recommender.seed``).

    Interactions come from the job's files, or with ``recommender.interactions: neo4j``
    from the graph's ``INTERACTED`` edges (``store`` then is the job's graph store).
    """
    import pandas as pd

    from kg_enhance.datasets.tables import read_interactions, read_items
    from kg_enhance.rec.data import make_split, positives

    cfg = job.recommender
    items, _ = read_items(job)
    catalog = [i.item_id for i in items]
    if cfg.interactions == "neo4j":
        if store is None:
            from kg_enhance.graph.store import Neo4jStore

            with Neo4jStore(job.neo4j) as own:
                rows = own.run_statement("read/interactions")
        else:
            rows = store.run_statement("read/interactions")
        if not rows:
            raise StageError(
                "recommend: no INTERACTED edges in the graph; run the load stage or use interactions: files"
            )
        df = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "ts"])
        df["rating"] = pd.to_numeric(df["rating"], errors="coerce")
        df["ts"] = pd.to_numeric(df["ts"], errors="coerce")
    else:
        df = read_interactions(job)
    df = df[df["item_id"].isin(set(catalog))]
    pos = positives(df, job.source.interactions.positive_threshold if job.source.interactions else None)
    return make_split(pos, kind=cfg.split, seed=cfg.seed, item_ids=catalog)


def stage_recommend(ctx: RunContext) -> dict[str, Any]:
    import pandas as pd
    import torch

    from kg_enhance.kge.artifacts import load_embeddings_dir
    from kg_enhance.rec.evaluate import Slices
    from kg_enhance.rec.kg import build_kg_inputs
    from kg_enhance.rec.serve import PathExplainer, topk_rows
    from kg_enhance.rec.train import top_k, train_model

    job, cfg = ctx.job, ctx.job.recommender
    split = recommend_split(job, ctx.store)
    slices = Slices.from_split(split, head_share=cfg.head_share, few=cfg.few_interactions)
    triples = ctx.store.item_fact_triples(job.kge.sources)

    kg = None
    if any(_needs_kg(m.type) for m in cfg.models):
        emb = load_embeddings_dir(ctx.out_dir)
        kg = build_kg_inputs(emb, split, triples)

    out = ctx.out_dir / "recommend"
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "split": {
            "kind": cfg.split,
            "seed": cfg.seed,
            "users": split.n_users,
            "items": split.n_items,
            "train": int(len(split.train)),
            "valid": int(len(split.valid)),
            "test": int(len(split.test)),
            "long_tail_items": len(slices.tail_items),
            "few_interaction_users": len(slices.few_users),
        },
        "positive_threshold": job.source.interactions.positive_threshold if job.source.interactions else None,
        "kg_item_coverage": kg.coverage if kg else None,
        "kg_entities": len(kg.entity_keys) if kg else None,
        "k": cfg.k,
        "device": cfg.device,
    }
    best_name, best_score, best_model = None, -1.0, None
    for spec in cfg.models:
        trained = train_model(spec, split, cfg, kg=kg, progress=ctx.progress, slices=slices)
        report[spec.key] = trained.report()
        torch.save(trained.model.state_dict(), out / f"{spec.key}.pt")
        score = trained.valid[f"ndcg@{cfg.k}"]
        if score > best_score:
            best_name, best_score, best_model = spec.key, score, trained.model
    report["best_model"] = best_name
    if best_model is not None and best_name is not None:
        device = next(best_model.parameters()).device.type
        top_idx, top_scores = top_k(best_model, split, k=cfg.k, device=device)
        rows = topk_rows(
            split, top_idx, top_scores, PathExplainer(triples), model=best_name, run_id=ctx.run_id
        )
        pd.DataFrame(rows).to_parquet(out / "topk.parquet", index=False)
        started = time.perf_counter()
        written = ctx.store.write_recommendations(rows, job=job.name, run_id=ctx.run_id)
        report["serving"] = {
            "topk_rows": len(rows),
            "recommended_edges": written,
            "explained_share": round(sum(1 for r in rows if r["via_items"]) / max(1, len(rows)), 4),
            "write_seconds": round(time.perf_counter() - started, 3),
            "table": str(out / "topk.parquet"),
        }
    (out / "metrics.json").write_text(json.dumps(report, indent=2))
    return report


def _needs_kg(type_name: str) -> bool:
    from kg_enhance.rec.models import rec_model_resolver

    return bool(rec_model_resolver.lookup(type_name).needs_kg)


# --------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------
def stage_export(ctx: RunContext) -> dict[str, Any]:
    import numpy as np

    from kg_enhance.datasets.tables import read_items
    from kg_enhance.kge.artifacts import load_embeddings_dir

    emb = load_embeddings_dir(ctx.out_dir)
    items, _ = read_items(ctx.job)
    out = ctx.out_dir / "export"
    out.mkdir(parents=True, exist_ok=True)
    dim = emb.entity_vectors.shape[1]
    ids = [i.item_id for i in items]
    matrix = np.zeros((len(ids), dim), dtype=np.float32)
    present = 0
    for row, item_id in enumerate(ids):
        idx = emb.entity_to_id.get(f"item:{item_id}")
        if idx is not None:
            matrix[row] = emb.entity_vectors[idx]
            present += 1
    np.save(out / "item_vectors.npy", matrix)
    (out / "item_ids.json").write_text(json.dumps(ids, ensure_ascii=False))
    emb.to_pandas().to_parquet(out / "entities.parquet")
    return {"items": len(ids), "items_with_vectors": present, "dim": dim, "dir": str(out)}


STAGE_FUNCS: dict[str, Callable[[RunContext], dict[str, Any]]] = {
    "extract": stage_extract,
    "load": stage_load,
    "embed": stage_embed,
    "recommend": stage_recommend,
    "export": stage_export,
}
REPORT_SECTION = {
    "extract": "extract",
    "load": "graph",
    "embed": "kge",
    "recommend": "recommend",
    "export": "export",
}


def select_stages(
    *, until: str | None = None, only: list[str] | None = None, job: JobSpec | None = None
) -> list[str]:
    if only:
        unknown = [s for s in only if s not in STAGES]
        if unknown:
            raise StageError(f"--only {','.join(unknown)}: unknown stage; stages are {', '.join(STAGES)}")
        return [s for s in STAGES if s in only]
    if until is not None and until not in STAGES:
        raise StageError(f"--until {until}: unknown stage; stages are {', '.join(STAGES)}")
    stages = list(STAGES[: STAGES.index(until) + 1]) if until else list(STAGES)
    if job is not None:
        if not job.kge.enabled:
            stages = [s for s in stages if s not in ("embed", "export")]
        if not job.recommender.enabled:
            stages = [s for s in stages if s != "recommend"]
    return stages


def load_report(out_dir: Path) -> dict[str, Any]:
    path = out_dir / "report.json"
    if path.exists():
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            path.rename(path.with_suffix(".json.corrupt"))
    return {}


def save_report(out_dir: Path, report: dict[str, Any]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    tmp.replace(path)
    return path


def run_pipeline(
    job: JobSpec, *, stages: list[str], progress: bool = True, echo: Callable[[str], None] | None = None
) -> dict[str, Any]:
    ontology = load_ontology(ontology_path(job))
    out_dir = outputs_dir(job)
    out_dir.mkdir(parents=True, exist_ok=True)
    run_id = new_run_id()
    report = load_report(out_dir)
    report.update({"job": job.name, "run_id": run_id, "ontology": ontology.name, "outputs_dir": str(out_dir)})
    report.setdefault("stages", {})
    ctx = RunContext(
        job=job, ontology=ontology, out_dir=out_dir, run_id=run_id, progress=progress, report=report
    )
    try:
        for stage in stages:
            if echo:
                echo(f"[{stage}] running")
            started = time.perf_counter()
            try:
                section = STAGE_FUNCS[stage](ctx)
            except BaseException:
                report["stages"][stage] = {
                    "seconds": round(time.perf_counter() - started, 3),
                    "status": "failed",
                    "run_id": run_id,
                }
                save_report(out_dir, report)
                raise
            seconds = round(time.perf_counter() - started, 3)
            report["stages"][stage] = {"seconds": seconds, "status": "ok", "run_id": run_id}
            report[REPORT_SECTION[stage]] = section
            save_report(out_dir, report)
            if echo:
                echo(f"[{stage}] done in {seconds:.1f}s")
    finally:
        ctx.close()
    return report
