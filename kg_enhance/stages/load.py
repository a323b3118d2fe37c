"""Load: resolve every fact's object to a canonical entity and MERGE it all into the graph.

Reads the catalog, interactions and fact files named by the job, plus the extract
stage's ``extract/facts.jsonl``; writes through a :class:`GraphStore`.

Bounded: rows go to the store as generators, so the store holds one batch of row dicts
at a time (interaction rows are built from the frame's columns, a chunk at a time);
names are resolved in batches; the statistics are histograms aggregated by the
database; the duplicate-candidate scan looks at ``graph.stats_max_entities`` entities at
most and is skipped when the load made no new entity. :func:`read_load_inputs` and
:func:`resolve_facts` are shared with ``kg-enhance graph bulk-load``
(:mod:`kg_enhance.graph.bulk`), which writes the same graph offline.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict

from kg_enhance.config.models import JobSpec
from kg_enhance.errors import StageError
from kg_enhance.graph.quality import compare_to_gold, degree_stats, duplicate_candidates
from kg_enhance.graph.resolve import EntityResolver, Resolution, ResolutionBackend, alias_rows
from kg_enhance.io.files import read_jsonl, write_text
from kg_enhance.io.tables import (
    Catalog,
    InputIssues,
    catalog_facts,
    read_catalog,
    read_fact_file,
    read_interactions,
)
from kg_enhance.ontology.models import Ontology
from kg_enhance.rundir import RunDir
from kg_enhance.stages.base import Stage, StageContext, StageResult
from kg_enhance.types import Fact, Item, QuarantineRecord

#: interaction rows converted from the frame's columns at a time
INTERACTION_CHUNK = 10_000


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


class DuplicateScanSummary(BaseModel):
    """What the duplicate-candidate scan of this load looked at (``graph.duplicate_scan``)."""

    model_config = ConfigDict(extra="forbid")

    #: ``full``: every entity of the entity namespace; ``sampled``: ``scanned`` of ``entities``, chosen by
    #: key hash (deterministic); ``skipped``: this load made no new entity, so no new duplicate
    status: Literal["full", "sampled", "skipped"]
    #: entities of the entity namespace (not counted when skipped)
    entities: int | None
    scanned: int
    #: ``graph.stats_max_entities``
    max_entities: int
    #: distinct entity keys this load created (resolution reason ``new``)
    new_entities: int


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
    #: same-type entity pairs with similar names among the scanned entities; null when the scan was skipped
    duplicate_candidates: int | None
    duplicate_candidates_top: list[dict[str, Any]]
    duplicate_scan: DuplicateScanSummary
    #: seconds per phase: read (input files), write (schema, rows, resolution, facts, stale facts),
    #: stats (counts, degrees, duplicate scan, LLM vs gold)
    phase_seconds: dict[str, float] = {}
    #: LLM facts against each gold source, per relation (:func:`kg_enhance.graph.quality.compare_to_gold`)
    llm_vs_gold: dict[str, dict[str, Any]]
    #: problems counted in the catalog, fact and interaction files (:class:`kg_enhance.io.tables.InputIssues`)
    input_issues: InputIssues


def item_rows(items: Sequence[Item]) -> Iterator[dict[str, Any]]:
    """Item node rows, one at a time: scalar catalog properties plus the title."""
    for item in items:
        props = {k: v for k, v in item.properties.items() if isinstance(v, (str, int, float, bool))}
        if item.title:
            props["title"] = item.title
        yield {"item_id": item.item_id, "props": props}


def _optional_number(value: Any, cast: type[float] | type[int]) -> float | int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return cast(value)


def interaction_rows(df: pd.DataFrame, *, chunk: int = INTERACTION_CHUNK) -> Iterator[dict[str, Any]]:
    """``INTERACTED`` rows (``user_id, item_id, rating, ts``; NaN as null) in frame order, built from the
    columns ``chunk`` rows at a time: the caller's store takes them a batch at a time, so no list of
    row dicts for every interaction ever exists."""
    for start in range(0, len(df), chunk):
        part = df.iloc[start : start + chunk]
        yield from (
            {
                "user_id": u,
                "item_id": i,
                "rating": _optional_number(r, float),
                "ts": _optional_number(t, int),
            }
            for u, i, r, t in zip(
                part["user_id"].tolist(),
                part["item_id"].tolist(),
                part["rating"].tolist(),
                part["ts"].tolist(),
                strict=True,
            )
        )


@dataclass
class LoadInputs:
    """Everything a load writes, read from the job's files and the extract stage's output."""

    items: list[Item]
    item_ids: set[str]
    #: catalog facts, then each fact file's, then the LLM's: the order names are resolved in
    facts: list[Fact]
    rejects: list[str]
    quarantine: list[QuarantineRecord]
    #: interactions of catalog items (``user_id, item_id, rating, ts``), or None when the job has none
    interactions: pd.DataFrame | None
    issues: InputIssues
    #: the sources this load states completely: their older facts of this job are stale
    loaded_sources: list[str]


def read_load_inputs(job: JobSpec, ontology: Ontology, run: RunDir, *, strict: bool = False) -> LoadInputs:
    """Read the catalog, fact files, LLM facts and interactions; write ``load/rejected_facts.txt``."""
    issues = InputIssues.collector(strict=strict)
    catalog: Catalog = read_catalog(job, issues=issues)
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
    interactions = None
    if job.source.interactions is not None:
        df = read_interactions(job, catalog=catalog, issues=issues)
        interactions = df[df["item_id"].isin(item_ids)]
    if rejects:
        write_text(run.rejected_facts, "\n".join(rejects) + "\n")
    loaded_sources = sorted(
        {"catalog", *(spec.name for spec in job.source.facts), *(["llm"] if job.llm.enabled else [])}
    )
    return LoadInputs(
        items=items,
        item_ids=item_ids,
        facts=facts,
        rejects=rejects,
        quarantine=quarantine,
        interactions=interactions,
        issues=issues,
        loaded_sources=loaded_sources,
    )


def resolve_facts(
    backend: ResolutionBackend, job: JobSpec, facts: Sequence[Fact]
) -> dict[tuple[str, str], Resolution]:
    """Every fact object's canonical entity, resolved in batches of ``neo4j.batch_size`` names."""
    resolver = EntityResolver(backend, job.graph.resolution, batch_size=job.neo4j.batch_size)
    return resolver.resolve((f.object_type, f.object) for f in facts)


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
        started = time.perf_counter()
        inputs = read_load_inputs(job, ontology, run, strict=ctx.strict)
        facts, quarantine = inputs.facts, inputs.quarantine

        store = ctx.store
        write_started = time.perf_counter()
        store.ensure_schema(ontology)
        if job.graph.resolution.seed_vocabulary:
            store.seed_vocabulary(ontology, run_id=ctx.run_id)
        store.write_items(item_rows(inputs.items), item_label=ontology.item.label)
        interactions = 0
        if inputs.interactions is not None:
            store.write_users(inputs.interactions["user_id"].drop_duplicates())
            interactions = store.write_interactions(interaction_rows(inputs.interactions))
        resolutions = resolve_facts(store, job, facts)
        written = store.write_facts(facts, ontology, job=job.name, run_id=ctx.run_id, resolutions=resolutions)
        aliases = alias_rows(resolutions.values())
        store.write_aliases(aliases, run_id=ctx.run_id)
        stale = store.delete_stale_facts(job=job.name, run_id=ctx.run_id, sources=inputs.loaded_sources)
        store.mark_quarantined(quarantine, run_id=ctx.run_id)
        stats_started = time.perf_counter()
        write_seconds = stats_started - write_started
        totals = store.totals()
        res_cfg = job.graph.resolution
        new_entities = len({r.key for r in resolutions.values() if r.reason == "new"})
        cap = job.graph.stats_max_entities
        if new_entities:
            scan = duplicate_candidates(
                store,
                threshold=res_cfg.duplicate_report_threshold,
                min_chars=res_cfg.min_chars,
                max_entities=cap,
            )
            duplicates: list[dict[str, Any]] | None = scan.pairs
            scan_summary = DuplicateScanSummary(
                status=scan.status,
                entities=scan.entities,
                scanned=scan.scanned,
                max_entities=cap,
                new_entities=new_entities,
            )
        else:
            duplicates = None
            scan_summary = DuplicateScanSummary(
                status="skipped", entities=None, scanned=0, max_entities=cap, new_entities=0
            )
        llm_vs_gold: dict[str, dict[str, Any]] = {}
        if job.llm.enabled and run.extracted_ids.exists():
            llm_items = set(json.loads(run.extracted_ids.read_text(encoding="utf-8"))["items"])
            gold_sources = job.graph.compare_sources or [spec.name for spec in job.source.facts]
            for source in gold_sources:
                llm_vs_gold[source] = compare_to_gold(
                    facts, gold_source=source, llm_items=llm_items, resolutions=resolutions
                )
        nodes_by_label = store.counts_by_label()
        edges_by_type = store.counts_by_type()
        degrees = degree_stats(store)
        done = time.perf_counter()
        return LoadResult(
            **totals,
            items_with_facts_share=round(totals["items_with_facts"] / max(1, totals["items"]), 4),
            nodes_by_label=nodes_by_label,
            edges_by_type=edges_by_type,
            facts_written=written,
            stale_facts_deleted=stale,
            facts_by_source=dict(Counter(f.source for f in facts)),
            facts_by_relation_source=_by_relation_source(facts),
            user_facts_written=sum(1 for f in facts if f.head_kind == "User"),
            interactions_written=interactions,
            rejected_facts=len(inputs.rejects),
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
            degrees=degrees,
            duplicate_candidates=None if duplicates is None else len(duplicates),
            duplicate_candidates_top=(duplicates or [])[:10],
            duplicate_scan=scan_summary,
            phase_seconds={
                "read": round(write_started - started, 3),
                "write": round(write_seconds, 3),
                "stats": round(done - stats_started, 3),
            },
            llm_vs_gold=llm_vs_gold,
            input_issues=inputs.issues,
        )
