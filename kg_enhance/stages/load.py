"""Load: resolve every fact's object to a canonical entity and MERGE it all into the graph.

Reads the catalog, interactions and fact files named by the job, plus the extract
stage's ``extract/facts.jsonl``; writes through a :class:`GraphStore`.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from typing import Any

from pydantic import BaseModel, ConfigDict

from kg_enhance.errors import StageError
from kg_enhance.graph.quality import compare_to_gold, degree_stats, duplicate_candidates
from kg_enhance.graph.resolve import EntityResolver, alias_rows
from kg_enhance.io.files import read_jsonl, write_text
from kg_enhance.io.tables import InputIssues, catalog_facts, read_catalog, read_fact_file, read_interactions
from kg_enhance.stages.base import Stage, StageContext, StageResult
from kg_enhance.types import Fact, Item, QuarantineRecord


class FuzzyMerge(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    into: str
    score: float | None


class ResolutionSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    names: int
    by_reason: dict[str, int]
    fuzzy_merges: list[FuzzyMerge]


class LoadResult(StageResult):
    """The ``graph`` section of ``report.json``."""

    nodes: int
    edges: int
    items: int
    items_with_facts: int
    items_with_facts_share: float
    nodes_by_label: dict[str, int]
    edges_by_type: dict[str, int]
    facts_written: int
    stale_facts_deleted: int
    facts_by_source: dict[str, int]
    #: facts read per relation, then per source (before resolution, like ``facts_by_source``)
    facts_by_relation_source: dict[str, dict[str, int]] = {}
    user_facts_written: int
    interactions_written: int
    rejected_facts: int
    quarantined_items: int
    write_seconds: float
    resolution: ResolutionSummary
    #: degree distributions (:func:`kg_enhance.graph.quality.degree_stats`)
    degrees: dict[str, Any]
    duplicate_candidates: int
    duplicate_candidates_top: list[dict[str, Any]]
    #: LLM facts against each gold source, per relation (:func:`kg_enhance.graph.quality.compare_to_gold`)
    llm_vs_gold: dict[str, dict[str, Any]]
    #: problems counted in the catalog, fact and interaction files (:class:`kg_enhance.io.tables.InputIssues`)
    input_issues: InputIssues


def item_rows(items: list[Item]) -> list[dict[str, Any]]:
    """Item node rows: scalar catalog properties plus the title."""
    rows = []
    for item in items:
        props = {k: v for k, v in item.properties.items() if isinstance(v, (str, int, float, bool))}
        if item.title:
            props["title"] = item.title
        rows.append({"item_id": item.item_id, "props": props})
    return rows


def _optional_number(value: Any, cast: type[float] | type[int]) -> float | int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return cast(value)


def _by_relation_source(facts: list[Fact]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for (relation, source), n in sorted(Counter((f.relation, f.source) for f in facts).items()):
        counts.setdefault(relation, {})[source] = n
    return counts


class LoadStage(Stage[LoadResult]):
    name = "load"
    section = "graph"

    def run(self, ctx: StageContext) -> LoadResult:
        job, ontology, run = ctx.job, ctx.ontology, ctx.run
        issues = InputIssues.collector(strict=ctx.strict)
        catalog = read_catalog(job, issues=issues)
        items, items_df = catalog.items, catalog.df
        item_ids = {i.item_id for i in items}
        facts: list[Fact] = catalog_facts(job, ontology, items_df)
        rejects: list[str] = []
        for n, spec in enumerate(job.source.facts):
            got, bad = read_fact_file(job, ontology, spec, n, catalog=catalog, issues=issues)
            facts.extend(got)
            rejects.extend(bad)
        quarantine: list[QuarantineRecord] = []
        if job.llm.enabled:
            if not run.facts.exists():
                raise StageError(
                    f"load: {run.facts} not found; run the extract stage first (`kg-enhance run JOB --until extract`)"
                )
            facts.extend(Fact(**row) for row in read_jsonl(run.facts))
            if run.quarantine.exists():
                quarantine = [QuarantineRecord(**row) for row in read_jsonl(run.quarantine)]
        outside = [f for f in facts if f.head_kind == "Item" and f.head_id not in item_ids]
        facts = [f for f in facts if f.head_kind != "Item" or f.head_id in item_ids]
        rejects.extend(f"fact about unknown item {f.head_id!r} ({f.source})" for f in outside[:1000])
        interactions_df = (
            read_interactions(job, catalog=catalog, issues=issues)
            if job.source.interactions is not None
            else None
        )
        if rejects:
            write_text(run.rejected_facts, "\n".join(rejects) + "\n")

        store = ctx.store
        started = time.perf_counter()
        store.ensure_schema(ontology)
        if job.graph.resolution.seed_vocabulary:
            store.seed_vocabulary(ontology, run_id=ctx.run_id)
        store.write_items(item_rows(items), item_label=ontology.item.label)
        interactions = 0
        if interactions_df is not None:
            df = interactions_df[interactions_df["item_id"].isin(item_ids)]
            store.write_users(df["user_id"].tolist())
            rows = [
                {
                    "user_id": u,
                    "item_id": i,
                    "rating": _optional_number(r, float),
                    "ts": _optional_number(t, int),
                }
                for u, i, r, t in df[["user_id", "item_id", "rating", "ts"]].itertuples(
                    index=False, name=None
                )
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
        llm_vs_gold: dict[str, dict[str, Any]] = {}
        if job.llm.enabled and run.extracted_ids.exists():
            llm_items = set(json.loads(run.extracted_ids.read_text(encoding="utf-8"))["items"])
            gold_sources = job.graph.compare_sources or [spec.name for spec in job.source.facts]
            for source in gold_sources:
                llm_vs_gold[source] = compare_to_gold(
                    facts, gold_source=source, llm_items=llm_items, resolutions=resolutions
                )
        return LoadResult(
            **totals,
            items_with_facts_share=round(totals["items_with_facts"] / max(1, totals["items"]), 4),
            nodes_by_label=store.counts_by_label(),
            edges_by_type=store.counts_by_type(),
            facts_written=written,
            stale_facts_deleted=stale,
            facts_by_source=dict(Counter(f.source for f in facts)),
            facts_by_relation_source=_by_relation_source(facts),
            user_facts_written=sum(1 for f in facts if f.head_kind == "User"),
            interactions_written=interactions,
            rejected_facts=len(rejects),
            quarantined_items=len(quarantine),
            write_seconds=round(write_seconds, 3),
            resolution=ResolutionSummary(
                names=len(resolutions),
                by_reason=dict(Counter(r.reason for r in resolutions.values())),
                fuzzy_merges=[
                    FuzzyMerge(
                        name=a["name"],
                        into=resolutions[(a["type"], a["name"])].canonical_name,
                        score=a["score"],
                    )
                    for a in aliases[:25]
                ],
            ),
            degrees=degree_stats(store),
            duplicate_candidates=len(duplicates),
            duplicate_candidates_top=duplicates[:10],
            llm_vs_gold=llm_vs_gold,
            input_issues=issues,
        )
