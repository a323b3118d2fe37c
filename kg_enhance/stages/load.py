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
import os
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict

from kg_enhance.config.job import resolve_job_path
from kg_enhance.config.models import JobSpec
from kg_enhance.errors import StageError
from kg_enhance.extract import delta
from kg_enhance.extract.delta import InteractionDiff
from kg_enhance.graph.quality import compare_to_gold, degree_stats, duplicate_candidates
from kg_enhance.graph.resolve import EntityResolver, Resolution, ResolutionBackend, alias_rows
from kg_enhance.graph.store import GraphStore
from kg_enhance.io.files import read_jsonl, write_json, write_text
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
    #: key hash (deterministic); ``new``: an incremental load looked up only the entities it created
    #: (against every entity); ``skipped``: this load made no new entity, so no new duplicate
    status: Literal["full", "sampled", "new", "skipped"]
    #: entities of the entity namespace (not counted when skipped)
    entities: int | None
    scanned: int
    #: ``graph.stats_max_entities``
    max_entities: int
    #: distinct entity keys this load created (resolution reason ``new``)
    new_entities: int


class LoadRefresh(BaseModel):
    """What an incremental load wrote and removed (``graph.refresh`` of ``report.json``)."""

    model_config = ConfigDict(extra="forbid")

    reason: str
    #: item nodes written: new and changed ones (incremental) or every catalog item (full)
    items_written: int
    #: items gone from the catalog, deleted with their edges
    items_retired: int
    interactions_removed: int
    #: interaction pairs against the committed state: new, changed, unchanged, removed
    interactions: dict[str, int] = {}
    #: per kind, subjects whose LLM facts were replaced
    facts_replaced_subjects: dict[str, int] = {}
    #: fact sources written in full (every source on a full load; incrementally, a changed fact file
    #: with no per-subject record of the last load)
    fact_files_rewritten: list[str] = []
    #: per changed fact file, the subjects whose facts from it were rewritten or deleted (the others'
    #: facts from that file were unchanged and left as they were)
    fact_file_subjects_rewritten: dict[str, int] = {}
    orphan_entities_deleted: int = 0
    orphan_users_deleted: int = 0


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
    #: ``incremental``: only what changed since the last committed load was written (see ``refresh``)
    mode: str = "full"
    refresh: LoadRefresh | None = None


def item_rows(items: Sequence[Item]) -> Iterator[dict[str, Any]]:
    """Item node rows, one at a time: scalar catalog properties plus the title."""
    for item in items:
        yield {"item_id": item.item_id, "props": delta.item_props(item)}


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
        refresh = _refresh_plan(ctx, inputs, ctx.store)

        store = ctx.store
        write_started = time.perf_counter()
        store.ensure_schema(ontology)
        if job.graph.resolution.seed_vocabulary:
            store.seed_vocabulary(ontology, run_id=ctx.run_id)
        items = inputs.items
        if refresh.incremental:
            items = [i for i in inputs.items if i.item_id in refresh.write_items]
        store.write_items(item_rows(items), item_label=ontology.item.label)
        retired, orphan_keys, touched_users = store.retire_items(refresh.removed_items)
        interactions = removed_interactions = 0
        if inputs.interactions is not None:
            frame = inputs.interactions
            if refresh.incremental and refresh.interactions is not None:
                frame = _rows_of(frame, refresh.interactions.write)
            store.write_users(frame["user_id"].drop_duplicates())
            interactions = store.write_interactions(interaction_rows(frame))
            if refresh.interactions is not None and len(refresh.interactions.removed):
                gone = refresh.interactions.removed
                removed_interactions = store.delete_interactions(gone.to_dict("records"))
                touched_users |= set(gone["user_id"])
        to_write = refresh.facts_to_write(facts) if refresh.incremental else facts
        resolutions = resolve_facts(store, job, to_write)
        written = store.write_facts(
            to_write, ontology, job=job.name, run_id=ctx.run_id, resolutions=resolutions
        )
        aliases = alias_rows(resolutions.values())
        store.write_aliases(aliases, run_id=ctx.run_id)
        if refresh.incremental:
            stale = 0
            for head_kind, ids, sources in refresh.fact_deletions():
                deleted, keys = store.delete_subject_facts(
                    head_kind, ids, job=job.name, run_id=ctx.run_id, sources=sources
                )
                stale += deleted
                orphan_keys |= keys
            if refresh.whole_files:
                stale += store.delete_stale_facts(
                    job=job.name, run_id=ctx.run_id, sources=refresh.whole_files
                )
        else:
            stale = store.delete_stale_facts(job=job.name, run_id=ctx.run_id, sources=inputs.loaded_sources)
        orphans = store.delete_orphans(orphan_keys, touched_users)
        store.mark_quarantined(quarantine, run_id=ctx.run_id)
        totals = store.totals()
        edges_by_type = store.counts_by_type()
        refresh.commit(run, ctx.run_id, graph=_graph_check(totals, edges_by_type))
        stats_started = time.perf_counter()
        write_seconds = stats_started - write_started
        res_cfg = job.graph.resolution
        new_entities = len({r.key for r in resolutions.values() if r.reason == "new"})
        cap = job.graph.stats_max_entities
        if new_entities:
            scan = duplicate_candidates(
                store,
                threshold=res_cfg.duplicate_report_threshold,
                min_chars=res_cfg.min_chars,
                max_entities=cap,
                only={r.key for r in resolutions.values() if r.reason == "new"}
                if refresh.incremental
                else None,
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
        if job.llm.enabled and run.extracted_ids.exists() and not refresh.incremental:
            llm_items = set(json.loads(run.extracted_ids.read_text(encoding="utf-8"))["items"])
            gold_sources = job.graph.compare_sources or [spec.name for spec in job.source.facts]
            for source in gold_sources:
                llm_vs_gold[source] = compare_to_gold(
                    facts, gold_source=source, llm_items=llm_items, resolutions=resolutions
                )
        nodes_by_label = store.counts_by_label()
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
            user_facts_written=sum(1 for f in to_write if f.head_kind == "User"),
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
            mode="incremental" if refresh.incremental else "full",
            refresh=LoadRefresh(
                reason=refresh.reason,
                items_written=len(items),
                items_retired=retired,
                interactions_removed=removed_interactions,
                interactions=refresh.interactions.counts() if refresh.interactions is not None else {},
                facts_replaced_subjects={k: len(v) for k, v in refresh.replaced.items()},
                fact_files_rewritten=refresh.whole_files if refresh.incremental else inputs.loaded_sources,
                fact_file_subjects_rewritten={
                    source: sum(len(ids) for ids in kinds.values())
                    for source, kinds in refresh.fact_subjects.items()
                }
                if refresh.incremental
                else {},
                orphan_entities_deleted=orphans[0],
                orphan_users_deleted=orphans[1],
            ),
        )


def _rows_of(frame: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``frame`` whose ``(user_id, item_id)`` is in ``pairs``, in frame order."""
    if pairs.empty:
        return frame.iloc[0:0]
    keys = pd.MultiIndex.from_frame(frame[["user_id", "item_id"]].astype(str))
    wanted = pd.MultiIndex.from_frame(pairs[["user_id", "item_id"]].astype(str))
    return frame[keys.isin(wanted)]


@dataclass
class _Refresh:
    """The load's side of an incremental refresh (:mod:`kg_enhance.extract.delta`)."""

    incremental: bool
    reason: str
    write_items: set[str]
    row_changed: list[str]
    removed_items: list[str]
    #: per kind (``item``, ``user``): subjects whose LLM facts are replaced, from the extract's plan
    replaced: dict[str, list[str]]
    removed_subjects: dict[str, list[str]]
    changed_files: list[str]
    interactions: InteractionDiff | None
    interaction_table: pd.DataFrame | None
    file_hashes: dict[str, str]
    settings: str
    #: changed fact files compared subject by subject: per file and head kind (``Item``, ``User``), the
    #: subjects whose facts from that file are new, changed or gone (only their facts are rewritten)
    fact_subjects: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    #: changed fact files rewritten in full (no per-subject record of the last load to compare with)
    whole_files: list[str] = field(default_factory=list)
    #: :func:`kg_enhance.extract.delta.fact_groups` of this load, committed for the next one
    fact_group_table: pd.DataFrame | None = None

    def facts_to_write(self, facts: list[Fact]) -> list[Fact]:
        """LLM facts of replaced subjects, catalog facts of new and changed items, the facts of the
        changed subjects of changed files (every fact of a file rewritten in full)."""
        llm = {delta.KINDS[k]: set(v) for k, v in self.replaced.items()}
        whole = set(self.whole_files)
        subjects = {
            source: {kind: set(ids) for kind, ids in kinds.items()}
            for source, kinds in self.fact_subjects.items()
        }
        return [
            f
            for f in facts
            if (f.source == "llm" and f.head_id in llm.get(f.head_kind, set()))
            or (f.source == "catalog" and f.head_id in self.write_items)
            or f.source in whole
            or f.head_id in subjects.get(f.source, {}).get(f.head_kind, ())
        ]

    def fact_deletions(self) -> Iterator[tuple[str, list[str], list[str]]]:
        """``(head kind, ids, sources)`` whose older facts an incremental load removes."""
        for kind, ids in self.replaced.items():
            gone = sorted(set(ids) | set(self.removed_subjects.get(kind, [])))
            if gone:
                yield delta.KINDS[kind], gone, ["llm"]
        if self.row_changed:
            yield "Item", self.row_changed, ["catalog"]
        for source, kinds in sorted(self.fact_subjects.items()):
            for kind, ids in sorted(kinds.items()):
                if ids:
                    yield kind, ids, [source]

    def commit(self, run: RunDir, run_id: str, *, graph: dict[str, Any]) -> None:
        """Record what the graph now holds: the subjects table, interactions, state; mark the plan applied."""
        subjects = delta.read_table(run.delta_next_subjects, delta.SUBJECT_COLUMNS)
        if self.fact_group_table is not None:
            delta.write_table(run.delta_fact_groups, self.fact_group_table)
        else:
            run.delta_fact_groups.unlink(missing_ok=True)
        if self.interaction_table is not None:
            delta.write_table(run.delta_interactions, self.interaction_table)
        else:
            run.delta_interactions.unlink(missing_ok=True)
        if subjects is not None:
            os.replace(run.delta_next_subjects, run.delta_subjects)
        plan = delta.read_plan(run)
        if plan:
            delta.write_plan(run, {**plan, "applied": True, "applied_by": run_id})
        write_json(
            run.delta_state,
            {
                "format": delta.FORMAT,
                "settings": self.settings,
                "files": self.file_hashes,
                "run_id": run_id,
                "mode": "incremental" if self.incremental else "full",
                "committed_at": time.time(),
                "graph": graph,
            },
        )


def _graph_check(totals: dict[str, int], edges_by_type: dict[str, int]) -> dict[str, Any]:
    """Counts that a committed state expects of the graph: a graph cleared or changed outside this job's
    loads no longer has them, and the next load is then a full one. Later stages' RECOMMENDED edges are
    left out (vectors are properties and do not count)."""
    return {
        "nodes": totals.get("nodes"),
        "items": totals.get("items"),
        "items_with_facts": totals.get("items_with_facts"),
        "edges": {t: n for t, n in sorted(edges_by_type.items()) if t != "RECOMMENDED"},
    }


def _refresh_plan(ctx: StageContext, inputs: LoadInputs, store: GraphStore) -> _Refresh:
    job, run = ctx.job, ctx.run
    previous, state = delta.committed(run)
    plan = delta.read_plan(run)
    settings = delta.settings_hash(job, ctx.ontology)
    file_hashes = {
        spec.name: delta.file_hash(path)
        for spec in job.source.facts
        if (path := resolve_job_path(job, spec.path)).is_file()
    }
    if ctx.full:
        incremental, reason = False, "run --full"
    elif previous is None:
        incremental, reason = False, "no committed delta state (first load)"
    elif state.get("settings") != settings:
        incremental, reason = False, "the ontology, sources, graph or LLM subject settings changed"
    elif state.get("graph") != _graph_check(store.totals(), store.counts_by_type()):
        incremental, reason = (
            False,
            "the graph no longer matches the last committed load (cleared or changed outside)",
        )
    elif job.llm.enabled and plan.get("mode") != "incremental":
        incremental, reason = False, str(plan.get("reason") or "the extract stage made no incremental plan")
    else:
        incremental, reason = True, "inputs compared by content with the last committed load"
    items = delta.subjects_frame(
        "item",
        [i.item_id for i in inputs.items],
        [None] * len(inputs.items),
        delta.row_hashes(inputs.items),
    )
    diff = delta.diff_subjects(previous, items, kind="item")
    table = None if inputs.interactions is None else delta.interaction_table(inputs.interactions)
    inter = None
    if table is not None and previous is not None:
        inter = delta.diff_interactions(
            delta.read_table(run.delta_interactions, delta.INTERACTION_COLUMNS), table
        )
    applied = bool(plan.get("applied"))
    replaced = (
        {} if applied or not job.llm.enabled else {k: list(v) for k, v in plan.get("replaced", {}).items()}
    )
    removed_subjects = {} if applied else {k: list(v) for k, v in plan.get("removed", {}).items()}
    old_files = state.get("files") or {}
    changed_files = sorted(n for n, h in file_hashes.items() if old_files.get(n) != h)
    file_sources = {spec.name for spec in job.source.facts}
    groups = delta.fact_groups(inputs.facts, file_sources)
    groups_before = delta.read_table(run.delta_fact_groups, delta.FACT_GROUP_COLUMNS)
    fact_subjects: dict[str, dict[str, list[str]]] = {}
    whole_files = changed_files
    if groups_before is not None and changed_files:
        # a file compared subject by subject: only the subjects whose facts changed are rewritten
        fact_subjects = delta.changed_fact_subjects(groups_before, groups, changed_files)
        whole_files = []
    return _Refresh(
        incremental=incremental,
        reason=reason,
        write_items=set(diff.new) | set(diff.row_changed),
        row_changed=diff.row_changed,
        removed_items=diff.removed,
        replaced=replaced,
        removed_subjects=removed_subjects,
        changed_files=changed_files,
        interactions=inter,
        interaction_table=table,
        file_hashes=file_hashes,
        settings=settings,
        fact_subjects=fact_subjects,
        whole_files=whole_files,
        fact_group_table=groups,
    )
