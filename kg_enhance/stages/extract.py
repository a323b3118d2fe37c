"""Extract: ask the LLM for facts about each catalog item (and, opt-in, each user).

Writes ``extract/facts.jsonl``, ``quarantine.jsonl``, ``dropped.json`` and
``extracted_ids.json`` in the run folder; the load stage reads them.

The endpoint is asked once what it serves (``GET /models``); that, with the endpoint,
keys the cache and names the facts' model, and is remembered in the cache so that a
dry run can count cache hits and a fully cached re-run still completes while the
server is down. Subjects quarantined before for the same key are not asked again
unless the run sets ``retry_quarantined`` (``kg-enhance run --retry-quarantined``).

``llm.mode: batch`` sends the same requests through the endpoint's Batch API
(:class:`~kg_enhance.extract.batch.BatchRunner`); ``kg-enhance extract --import-batch
FILE`` takes the answers from a Batch API output file instead (:func:`import_results`),
and :func:`export_batch` writes the requests for an offline runner. Every answer goes
through the same validation, repairs and cache.

Runs are incremental (:mod:`kg_enhance.extract.delta`): only new, changed and stale
subjects are asked (``run --full``: all of them); the others' outputs are carried over.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd
from pydantic import ConfigDict

from kg_enhance.config.models import JobSpec
from kg_enhance.errors import ServiceUnavailableError, StageError
from kg_enhance.extract import delta
from kg_enhance.extract.batch import BatchRunner, export_requests, import_results
from kg_enhance.extract.cache import ExtractionCache, default_cache_path
from kg_enhance.extract.client import OpenAICompatibleClient, ServerInfo
from kg_enhance.extract.delta import DeltaPlan
from kg_enhance.extract.engine import BatchCounts, ExtractionResult, ExtractionStats, Extractor, RateLimiter
from kg_enhance.extract.plan import ExtractionPlan, generation_settings
from kg_enhance.extract.quality import score_extraction
from kg_enhance.io.files import atomic_path, read_jsonl, write_json, write_jsonl
from kg_enhance.io.tables import InputIssues, catalog_facts, read_fact_file, read_items, read_users
from kg_enhance.ontology.models import Ontology
from kg_enhance.stages.base import Stage, StageContext, StageResult
from kg_enhance.types import Fact, Item

logger = logging.getLogger(__name__)


class ExtractionCounts(ExtractionStats):
    """Counts of one extraction pass (items or users) as reported: the engine's stats plus facts per relation."""

    model_config = ConfigDict(extra="forbid")

    facts_by_relation: dict[str, int] = {}
    #: ``llm.mode: batch`` and ``--import-batch``: batches, rounds, failed and unanswered lines
    batch: BatchCounts | None = None

    @classmethod
    def of(cls, result: ExtractionResult) -> ExtractionCounts:
        return cls(
            **result.stats.counts(),
            facts_by_relation=dict(Counter(f.relation for f in result.facts)),
            batch=result.batch,
        )


class ExtractResult(ExtractionCounts, StageResult):
    """The ``extract`` section of ``report.json``: item counts at the top, users nested."""

    enabled: bool = True
    catalog_items: int = 0
    structured_output: str | None = None
    #: the configured model name (``llm.model``)
    model: str | None = None
    #: the model the endpoint reported serving (cache key, facts' ``model``)
    served_model: str | None = None
    #: the endpoint, without credentials
    endpoint: str | None = None
    #: ``sync``, ``batch`` (llm.mode) or ``import`` (``extract --import-batch``)
    llm_mode: str = "sync"
    #: ``--import-batch``: the repairs and retries to run next, as a Batch API request file (None: nothing left to ask)
    followup_file: str | None = None
    users: ExtractionCounts | None = None
    cost: float = 0.0
    #: the LLM's item facts against each gold source (``graph.compare_sources``, default every
    #: ``source.facts`` file; ``catalog`` names the catalog's fact columns): precision, recall and F1
    #: overall, per relation and per entity type, and the type confusion
    #: (:func:`kg_enhance.extract.quality.score_extraction`)
    quality: dict[str, dict[str, Any]] = {}
    #: which items :attr:`quality` scores: every extracted item (a full run), or only the items asked in
    #: this run (an incremental run, like the counts above; the last full run's report scores them all)
    quality_scope: str | None = None
    #: ``full`` or ``incremental`` (:mod:`kg_enhance.extract.delta`; counts in the report's ``delta`` section)
    delta_mode: str | None = None


def _client(job: JobSpec) -> OpenAICompatibleClient:
    llm = job.llm
    return OpenAICompatibleClient(
        base_url=llm.base_url,
        model=llm.model,
        api_key_env=llm.api_key_env,
        temperature=llm.temperature,
        max_tokens=llm.max_tokens,
        seed=llm.seed,
        timeout_s=llm.timeout_s,
        max_retries=llm.max_retries,
        call_deadline_s=llm.call_deadline_s,
    )


def build_extractor(
    job: JobSpec,
    ontology: Ontology,
    plan: ExtractionPlan,
    *,
    client: OpenAICompatibleClient,
    mode: str,
    cache: ExtractionCache,
    progress: bool = True,
    budget_tokens: int | None = None,
    retry_quarantined: bool = False,
) -> Extractor:
    """The engine for one plan; call inside the event loop that will use the client."""
    llm = job.llm
    text_fields = [*job.source.items.text_fields, *(job.source.users.text_fields if job.source.users else [])]
    return Extractor(
        client,
        ontology,
        head=plan.head,
        template=plan.template,
        cache=cache,
        mode=mode,
        grounding=plan.grounding,
        max_repairs=llm.max_repairs,
        max_concurrency=llm.max_concurrency,
        generation=generation_settings(job),
        progress=progress,
        budget_tokens=budget_tokens,
        rate_limiter=RateLimiter(
            requests_per_minute=llm.requests_per_minute, tokens_per_minute=llm.tokens_per_minute
        ),
        reserved_words=text_fields,
        retry_quarantined=retry_quarantined,
    )


async def _server(
    client: OpenAICompatibleClient, cache: ExtractionCache, job: JobSpec, *, offline: bool = False
) -> ServerInfo:
    """What the endpoint serves, remembered in the cache; while it is unreachable, what it served last time.

    ``offline`` (batch files for another runner): an endpoint never reached is taken to
    serve ``llm.model`` with ``json_schema`` output (vLLM, OpenAI) unless
    ``llm.structured_output`` says otherwise.
    """
    try:
        info = await client.server_info()
    except ServiceUnavailableError as e:
        seen = cache.endpoint_record(endpoint=client.endpoint, model=job.llm.model)
        if seen is None and offline:
            logger.info(
                "extract: %s; the batch file is for llm.model %r as configured", e.one_line(), job.llm.model
            )
            info = ServerInfo(endpoint=client.endpoint, served_model=job.llm.model)
            client.adopt(info)
            return info
        if seen is None:
            raise
        logger.warning(
            "extract: %s; using the model it served on %s (%s), so cached answers still count (subjects not in the cache will fail)",
            e.one_line(),
            time.strftime("%Y-%m-%d %H:%M", time.localtime(seen.seen)),
            seen.served,
        )
        info = ServerInfo(endpoint=client.endpoint, served_model=seen.served, mode=seen.mode or "json_schema")
        client.adopt(info)
        return info
    cache.record_endpoint(
        endpoint=info.endpoint, model=job.llm.model, served=info.served_model, mode=info.mode
    )
    return info


def _plan(
    ctx: StageContext,
    plans: dict[str, ExtractionPlan],
    subjects: dict[str, list[Item]],
    *,
    mode: str,
    served_model: str,
    endpoint: str | None,
) -> tuple[DeltaPlan, dict[str, pd.DataFrame], pd.DataFrame | None]:
    """This run's delta plan against the committed subjects (:mod:`kg_enhance.extract.delta`)."""
    previous, state = delta.committed(ctx.run)
    if ctx.job.llm.enabled and not ctx.run.facts.exists():
        previous = None  # unchanged subjects' facts are carried over from facts.jsonl: without it, start over
    currents = delta.current_subjects(
        ctx.job, ctx.ontology, plans, subjects, mode=mode, served_model=served_model, endpoint=endpoint
    )
    plan = delta.make_plan(ctx.job, previous, state, currents, ontology=ctx.ontology, full=ctx.full)
    return plan, currents, previous


async def _extract(
    ctx: StageContext, plans: dict[str, ExtractionPlan], subjects: dict[str, list[Item]]
) -> tuple[
    dict[str, ExtractionResult], str, ServerInfo, DeltaPlan, dict[str, pd.DataFrame], pd.DataFrame | None
]:
    job, llm = ctx.job, ctx.job.llm
    client = _client(job)
    cache = ExtractionCache(default_cache_path())
    imported = ctx.import_batch
    try:
        server = await _server(client, cache, job, offline=imported is not None)
        mode: str = llm.structured_output
        if mode == "auto":
            mode = server.mode
        plan, currents, previous = _plan(
            ctx, plans, subjects, mode=mode, served_model=server.served_model, endpoint=server.endpoint
        )
        results: dict[str, ExtractionResult] = {}
        spent = 0
        followup = ctx.run.batch_followup
        with contextlib.ExitStack() as files:
            out: TextIO | None = None
            if imported is not None:  # the repairs and retries an import leaves to ask
                out = files.enter_context(
                    open(files.enter_context(atomic_path(followup)), "w", encoding="utf-8")
                )
            for kind, extraction in plans.items():
                if any(r.stats.budget_reached for r in results.values()):
                    break
                budget = None
                if llm.budget_tokens is not None:  # one budget for the whole stage
                    budget = max(1, llm.budget_tokens - spent)
                engine = build_extractor(
                    job,
                    ctx.ontology,
                    extraction,
                    client=client,
                    mode=mode,
                    cache=cache,
                    progress=ctx.progress,
                    budget_tokens=budget,
                    retry_quarantined=ctx.retry_quarantined,
                )
                by_id = {s.item_id: s for s in extraction.subjects}
                todo = [by_id[i] for i in plan.todo[kind] if i in by_id]
                if out is not None and imported is not None:
                    result = await import_results(
                        engine, client, todo, imported, out, max_line_retries=llm.batch.max_line_retries
                    )
                elif llm.mode == "batch":
                    # stale subjects (llm.refresh_after) are not re-asked through the Batch API yet: their
                    # cached answers count (see the README)
                    ctx.run.batch_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                    runner = BatchRunner(engine, client, llm.batch, ctx.run.batch_state(extraction.head))
                    result = await runner.run(todo)
                else:
                    result = await engine.run(todo, refresh=set(plan.refresh[kind]))
                results[kind] = result
                spent += result.stats.tokens
        if imported is not None and not followup.stat().st_size:
            followup.unlink()
        return results, mode, server, plan, currents, previous
    finally:
        await client.close()
        cache.close()


async def _export(
    job: JobSpec, ontology: Ontology, plans: list[ExtractionPlan], path: Path
) -> dict[str, int]:
    client = _client(job)
    cache = ExtractionCache(default_cache_path())
    counts = {"requests": 0, "cache_hits": 0, "quarantine_remembered": 0, "subjects": 0}
    try:
        server = await _server(client, cache, job, offline=True)
        mode = job.llm.structured_output if job.llm.structured_output != "auto" else server.mode
        with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as out:
            for plan in plans:
                engine = build_extractor(
                    job, ontology, plan, client=client, mode=mode, cache=cache, progress=False
                )
                written, result = await export_requests(engine, client, plan.subjects, out)
                counts["requests"] += written
                counts["subjects"] += result.stats.items
                counts["cache_hits"] += result.stats.cache_hits
                counts["quarantine_remembered"] += result.stats.quarantine_remembered
    finally:
        await client.close()
        cache.close()
    return counts


def export_batch(job: JobSpec, ontology: Ontology, path: Path) -> dict[str, int]:
    """Write the requests the extract stage would send as Batch API JSONL to ``path`` (for an offline runner).

    Subjects already cached or remembered as quarantined are left out; the counts
    (``requests``, ``subjects``, ``cache_hits``, ``quarantine_remembered``) are returned.
    """
    if not job.llm.enabled:
        raise StageError(
            "--export-batch: llm.enabled is false, so the extract stage asks nothing; turn it on"
        )
    items, _ = read_items(job)
    plans = [ExtractionPlan.for_items(job, items)]
    if job.llm.users.enabled:
        plans.append(ExtractionPlan.for_users(job, read_users(job)))
    path.parent.mkdir(parents=True, exist_ok=True)
    return asyncio.run(_export(job, ontology, plans, path))


def _carried(
    path: Path, drop: dict[str, set[str]], id_field: str, kind_of: Callable[[dict[str, Any]], str]
) -> list[dict[str, Any]]:
    """Rows of the last extract's output whose subject is not in ``drop`` (by kind): carried into this run's."""
    if not path.exists():
        return []
    return [row for row in read_jsonl(path) if str(row.get(id_field)) not in drop.get(kind_of(row), set())]


def _fact_kind(row: dict[str, Any]) -> str:
    return "user" if row.get("head_kind") == "User" else "item"


def _quarantine_kind(row: dict[str, Any]) -> str:
    return "user" if row.get("kind") == "user" else "item"


def _next_subjects(
    currents: dict[str, pd.DataFrame],
    previous: pd.DataFrame | None,
    plan: DeltaPlan,
    results: dict[str, ExtractionResult],
) -> pd.DataFrame:
    """The subjects table once this run's load commits: answered subjects with their new key, answer time
    and fact count; subjects left pending (token budget) keep their committed row, so the next run asks again."""
    now = time.time()
    frames = []
    for kind, current in currents.items():
        frame = current.copy()
        ids = frame["id"]
        if previous is not None:
            prev = previous[previous["kind"] == kind].set_index("id")
            frame["answered_at"] = ids.map(prev["answered_at"]).astype(float)
            frame["facts"] = ids.map(prev["facts"]).fillna(0).astype(np.int64)
            prev_key = ids.map(prev["key"])
        else:
            prev_key = pd.Series([None] * len(frame), index=frame.index, dtype=object)
        result = results.get(kind)
        if result is not None:
            answered = set(result.extracted_ids)
            quarantined = {q.item_id for q in result.quarantine}
            pending = set(plan.todo.get(kind, [])) - answered - quarantined
            counts = Counter(f.head_id for f in result.facts)
            got = ids.isin(answered)
            frame.loc[got, "answered_at"] = ids[got].map(result.answered_at).astype(float)
            frame.loc[got, "facts"] = ids[got].map(dict(counts)).fillna(0).astype(np.int64)
            quar = ids.isin(quarantined)
            frame.loc[quar, "answered_at"] = now
            frame.loc[quar, "facts"] = 0
            wait = ids.isin(pending)
            frame.loc[wait, "key"] = prev_key[wait]
        unasked = frame["key"].isna()  # a subject the LLM is not asked about has no LLM facts
        frame.loc[unasked, "answered_at"] = np.nan
        frame.loc[unasked, "facts"] = 0
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=delta.SUBJECT_COLUMNS)
    return pd.concat(frames, ignore_index=True)[delta.SUBJECT_COLUMNS]


def _replaced(
    plan: DeltaPlan, results: dict[str, ExtractionResult], currents: dict[str, pd.DataFrame]
) -> dict[str, list[str]]:
    """Per kind, the subjects whose LLM facts this run replaces: answered or quarantined now, or changed
    to not being asked about at all."""
    out: dict[str, list[str]] = {}
    for kind, d in plan.diffs.items():
        result = results.get(kind)
        done: set[str] = set()
        if result is not None:
            done = set(result.extracted_ids) | {q.item_id for q in result.quarantine}
        unasked = set(currents[kind].loc[currents[kind]["key"].isna(), "id"])
        out[kind] = sorted(done | (set(d.changed) & unasked))
    return out


def _dropped_gone(key: str, drop: dict[str, set[str]]) -> bool:
    if key.startswith("user:"):
        return key[5:] in drop.get("user", set())
    return key in drop.get("item", set())


def _merged_ids(old: list[str], drop: set[str], new: list[str]) -> list[str]:
    fresh = set(new)
    return [*(i for i in old if i not in drop and i not in fresh), *new]


class ExtractStage(Stage[ExtractResult]):
    name = "extract"
    section = "extract"

    def run(self, ctx: StageContext) -> ExtractResult:
        job, llm, run = ctx.job, ctx.job.llm, ctx.run
        # counted (and reported) by the load stage; read here too so --strict stops before any LLM call
        issues = InputIssues.collector(strict=ctx.strict, log=False)
        items, items_df = read_items(job, issues=issues)
        if ctx.import_batch is not None and not ctx.import_batch.is_file():
            raise StageError(
                f"--import-batch {ctx.import_batch}: file not found; give a Batch API output JSONL file"
            )
        if ctx.import_batch is not None and not llm.enabled:
            raise StageError(
                "--import-batch: llm.enabled is false, so the extract stage takes no answers; turn it on"
            )
        subjects: dict[str, list[Item]] = {"item": items}
        plans: dict[str, ExtractionPlan] = {}
        if llm.enabled:
            plans["item"] = ExtractionPlan.for_items(job, items)
            if llm.users.enabled:
                if not ctx.ontology.user_relations():
                    raise StageError(
                        f"llm.users.enabled: ontology {ctx.ontology.name!r} declares no relation with head User; "
                        "add one (e.g. PREFERS with head: User) or turn llm.users off"
                    )
                subjects["user"] = read_users(job, issues=issues)
                plans["user"] = ExtractionPlan.for_users(job, subjects["user"])
        if not llm.enabled:
            plan, currents, previous = _plan(ctx, plans, subjects, mode="", served_model="", endpoint=None)
            write_jsonl(run.facts, [])
            write_jsonl(run.quarantine, [])
            write_json(run.extracted_ids, {"items": [], "users": []}, indent=None)
            _write_delta(ctx, plan, currents, previous, {}, replaced={k: [] for k in plan.diffs})
            return ExtractResult(enabled=False, catalog_items=len(items), delta_mode=plan.mode)

        results, mode, server, plan, currents, previous = asyncio.run(_extract(ctx, plans, subjects))
        result = results.get("item") or ExtractionResult()
        user_result = results.get("user")
        if "user" in plans and user_result is None:
            user_result = ExtractionResult()  # the token budget ran out on the items
        mode_name = "import" if ctx.import_batch is not None else llm.mode
        followup = run.batch_followup if mode_name == "import" and run.batch_followup.is_file() else None
        if followup is not None:
            logger.warning(
                "extract: repairs and retries for %d subject(s) written to %s; run them and import the output "
                "with --import-batch",
                sum((r.batch.followup_requests if r and r.batch else 0) for r in (result, user_result)),
                run.batch_followup,
            )
        replaced = _replaced(plan, results, currents)
        drop = {k: set(replaced[k]) | set(d.removed) for k, d in plan.diffs.items()}
        if plan.incremental:  # carry the other subjects' outputs over from the last extract
            facts_rows = _carried(run.facts, drop, "head_id", _fact_kind)
            quarantine_rows = _carried(run.quarantine, drop, "item_id", _quarantine_kind)
            old_dropped = json.loads(run.dropped.read_text(encoding="utf-8")) if run.dropped.exists() else {}
            old_ids = (
                json.loads(run.extracted_ids.read_text(encoding="utf-8"))
                if run.extracted_ids.exists()
                else {}
            )
        else:
            facts_rows, quarantine_rows, old_dropped, old_ids = [], [], {}, {}
        facts: list[Fact] = list(result.facts)
        quarantine = list(result.quarantine)
        dropped = {k: v for k, v in old_dropped.items() if not _dropped_gone(k, drop)}
        dropped.update(result.dropped)
        if user_result is not None:
            facts += user_result.facts
            quarantine += user_result.quarantine
            dropped.update({f"user:{k}": v for k, v in user_result.dropped.items()})
        write_jsonl(run.facts, [*facts_rows, *(f.model_dump() for f in facts)])
        write_jsonl(run.quarantine, [*quarantine_rows, *(q.model_dump() for q in quarantine)])
        write_json(run.dropped, dropped, indent=1)
        extracted = {
            "items": _merged_ids(old_ids.get("items", []), drop["item"], result.extracted_ids),
            "users": _merged_ids(
                old_ids.get("users", []),
                drop.get("user", set()),
                user_result.extracted_ids if user_result else [],
            ),
        }
        write_json(run.extracted_ids, extracted, indent=None)
        _write_delta(ctx, plan, currents, previous, results, replaced=replaced)
        if result.stats.budget_reached:
            logger.warning(
                "extract: token budget %s reached; %d item(s) left pending (finished items are cached; re-run to continue)",
                llm.budget_tokens,
                result.stats.pending,
            )
        remembered = result.stats.quarantine_remembered + (
            user_result.stats.quarantine_remembered if user_result else 0
        )
        if remembered:
            logger.warning(
                "extract: %d subject(s) quarantined by earlier runs for the same prompt, model and input were not asked "
                "again (listed in %s); run with --retry-quarantined to ask them again",
                remembered,
                run.quarantine,
            )
        # a full run scores every item; an incremental one the items it asked, as it counts them (reading
        # and scoring every carried fact would cost a full run's scoring for a 1% refresh)
        if plan.incremental:
            scored_ids: Sequence[str] = result.extracted_ids
            quality_scope = f"the {len(scored_ids)} item(s) asked in this incremental run"
        else:
            scored_ids = extracted["items"]
            quality_scope = f"every extracted item ({len(scored_ids)})"
        return ExtractResult(
            **ExtractionCounts.of(result).counts(),
            catalog_items=len(items),
            structured_output=mode,
            model=llm.model,
            served_model=server.served_model,
            endpoint=server.endpoint,
            users=None if user_result is None else ExtractionCounts.of(user_result),
            llm_mode=mode_name,
            followup_file=None if followup is None else str(followup),
            cost=round(
                sum(
                    _cost(job, r.stats, batch=mode_name != "sync")
                    for r in (result, user_result)
                    if r is not None
                ),
                6,
            ),
            quality=gold_quality(job, ctx.ontology, items_df, result.facts, scored_ids),
            quality_scope=quality_scope,
            delta_mode=plan.mode,
        )


def _write_delta(
    ctx: StageContext,
    plan: DeltaPlan,
    currents: dict[str, pd.DataFrame],
    previous: pd.DataFrame | None,
    results: dict[str, ExtractionResult],
    *,
    replaced: dict[str, list[str]],
) -> None:
    """``delta/next_subjects.parquet`` and ``delta/plan.json``: what the load carries out and commits."""
    run = ctx.run
    delta.write_table(run.delta_next_subjects, _next_subjects(currents, previous, plan, results))
    subjects: dict[str, Any] = {}
    for kind, d in plan.diffs.items():
        r = results.get(kind)
        subjects[kind] = {
            **d.counts(),
            "asked": len(plan.todo.get(kind, [])) if kind in results else 0,
            "answered": len(r.extracted_ids) + len(r.quarantine) if r else 0,
            "pending": r.stats.pending if r else 0,
            "refreshed": len(set(plan.refresh.get(kind, [])) & set(r.extracted_ids)) if r else 0,
        }
    delta.write_plan(
        run,
        {
            "run_id": ctx.run_id,
            "mode": plan.mode,
            "reason": plan.reason,
            "subjects": subjects,
            "replaced": replaced,
            "removed": {k: d.removed for k, d in plan.diffs.items()},
            "staleness": {
                "refresh_after": ctx.job.llm.refresh_after,
                "facts_older_than_limit": sum(d.stale_facts for d in plan.diffs.values()),
                "subjects_older_than_limit": sum(len(d.stale) for d in plan.diffs.values()),
            },
            "llm": {
                "calls": sum(r.stats.llm_calls for r in results.values()),
                "tokens": sum(r.stats.tokens for r in results.values()),
            },
            "applied": False,
        },
    )


def gold_quality(
    job: JobSpec, ontology: Ontology, items_df: pd.DataFrame, facts: Sequence[Fact], extracted: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """:func:`score_extraction` of the LLM's item facts against each gold source of the job."""
    files = {spec.name: (n, spec) for n, spec in enumerate(job.source.facts)}
    scope = set(extracted)  # a refresh scores its few extracted subjects: read only their gold rows
    out: dict[str, dict[str, Any]] = {}
    for name in job.graph.compare_sources or list(files):
        if name == "catalog":
            gold = catalog_facts(job, ontology, items_df[items_df[job.source.items.id_column].isin(scope)])
        elif name in files:
            index, spec = files[name]
            gold, _ = read_fact_file(job, ontology, spec, index, heads=scope)
        else:
            continue
        out[name] = score_extraction(facts, gold, items=extracted)
    return out


def _cost(job: JobSpec, stats: ExtractionStats, *, batch: bool = False) -> float:
    """What the tokens cost at the job's prices (batch requests at ``llm.batch.price_factor`` of them)."""
    sync = (
        stats.prompt_tokens / 1e6 * job.llm.price_per_1m_input_tokens
        + stats.completion_tokens / 1e6 * job.llm.price_per_1m_output_tokens
    )
    return sync * job.llm.batch.price_factor if batch else sync
