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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import pandas as pd
from pydantic import ConfigDict

from kg_enhance.config.models import JobSpec
from kg_enhance.errors import ServiceUnavailableError, StageError
from kg_enhance.extract.batch import BatchRunner, export_requests, import_results
from kg_enhance.extract.cache import ExtractionCache, default_cache_path
from kg_enhance.extract.client import OpenAICompatibleClient, ServerInfo
from kg_enhance.extract.engine import BatchCounts, ExtractionResult, ExtractionStats, Extractor, RateLimiter
from kg_enhance.extract.plan import ExtractionPlan, generation_settings
from kg_enhance.extract.quality import score_extraction
from kg_enhance.io.files import atomic_path, write_json, write_jsonl
from kg_enhance.io.tables import InputIssues, catalog_facts, read_fact_file, read_items, read_users
from kg_enhance.ontology.models import Ontology
from kg_enhance.stages.base import Stage, StageContext, StageResult
from kg_enhance.types import Fact

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


async def _extract(
    ctx: StageContext, items: ExtractionPlan, users: ExtractionPlan | None
) -> tuple[ExtractionResult, ExtractionResult | None, str, ServerInfo]:
    job, llm = ctx.job, ctx.job.llm
    client = _client(job)
    cache = ExtractionCache(default_cache_path())
    imported = ctx.import_batch
    try:
        server = await _server(client, cache, job, offline=imported is not None)
        mode: str = llm.structured_output
        if mode == "auto":
            mode = server.mode
        followup = ctx.run.batch_followup
        with contextlib.ExitStack() as files:
            out: TextIO | None = None
            if imported is not None:  # the repairs and retries an import leaves to ask
                out = files.enter_context(
                    open(files.enter_context(atomic_path(followup)), "w", encoding="utf-8")
                )
            results: list[ExtractionResult] = []
            budget = llm.budget_tokens
            for plan in (items, users):
                if plan is None or (results and results[0].stats.budget_reached):
                    continue
                if budget is not None and results:  # one budget for the whole stage
                    budget = max(1, budget - results[0].stats.tokens)
                engine = build_extractor(
                    job,
                    ctx.ontology,
                    plan,
                    client=client,
                    mode=mode,
                    cache=cache,
                    progress=ctx.progress,
                    budget_tokens=budget,
                    retry_quarantined=ctx.retry_quarantined,
                )
                if out is not None and imported is not None:
                    result = await import_results(
                        engine,
                        client,
                        plan.subjects,
                        imported,
                        out,
                        max_line_retries=llm.batch.max_line_retries,
                    )
                elif llm.mode == "batch":
                    ctx.run.batch_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                    runner = BatchRunner(engine, client, llm.batch, ctx.run.batch_state(plan.head))
                    result = await runner.run(plan.subjects)
                else:
                    result = await engine.run(plan.subjects)
                results.append(result)
        if imported is not None and not followup.stat().st_size:
            followup.unlink()
        return results[0], (results[1] if len(results) > 1 else None), mode, server
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
        if not llm.enabled:
            write_jsonl(run.facts, [])
            write_jsonl(run.quarantine, [])
            write_json(run.extracted_ids, {"items": [], "users": []}, indent=None)
            return ExtractResult(enabled=False, catalog_items=len(items))

        users = None
        if llm.users.enabled:
            if not ctx.ontology.user_relations():
                raise StageError(
                    f"llm.users.enabled: ontology {ctx.ontology.name!r} declares no relation with head User; "
                    "add one (e.g. PREFERS with head: User) or turn llm.users off"
                )
            users = ExtractionPlan.for_users(job, read_users(job, issues=issues))
        result, user_result, mode, server = asyncio.run(
            _extract(ctx, ExtractionPlan.for_items(job, items), users)
        )

        mode_name = "import" if ctx.import_batch is not None else llm.mode
        followup = run.batch_followup if mode_name == "import" and run.batch_followup.is_file() else None
        if followup is not None:
            logger.warning(
                "extract: repairs and retries for %d subject(s) written to %s; run them and import the output "
                "with --import-batch",
                sum((r.batch.followup_requests if r and r.batch else 0) for r in (result, user_result)),
                run.batch_followup,
            )
        facts: list[Fact] = list(result.facts)
        quarantine = list(result.quarantine)
        dropped = dict(result.dropped)
        if user_result is not None:
            facts += user_result.facts
            quarantine += user_result.quarantine
            dropped.update({f"user:{k}": v for k, v in user_result.dropped.items()})
        write_jsonl(run.facts, (f.model_dump() for f in facts))
        write_jsonl(run.quarantine, (q.model_dump() for q in quarantine))
        write_json(run.dropped, dropped, indent=1)
        write_json(
            run.extracted_ids,
            {"items": result.extracted_ids, "users": user_result.extracted_ids if user_result else []},
            indent=None,
        )
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
        return ExtractResult(
            **ExtractionCounts.of(result).counts(),
            catalog_items=len(items),
            structured_output=mode,
            model=llm.model,
            served_model=server.served_model,
            endpoint=server.endpoint,
            llm_mode=mode_name,
            followup_file=None if followup is None else str(followup),
            users=None if user_result is None else ExtractionCounts.of(user_result),
            cost=round(
                sum(
                    _cost(job, r.stats, batch=mode_name != "sync")
                    for r in (result, user_result)
                    if r is not None
                ),
                6,
            ),
            quality=gold_quality(job, ctx.ontology, items_df, result.facts, result.extracted_ids),
        )


def gold_quality(
    job: JobSpec, ontology: Ontology, items_df: pd.DataFrame, facts: Sequence[Fact], extracted: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """:func:`score_extraction` of the LLM's item facts against each gold source of the job."""
    files = {spec.name: (n, spec) for n, spec in enumerate(job.source.facts)}
    out: dict[str, dict[str, Any]] = {}
    for name in job.graph.compare_sources or list(files):
        if name == "catalog":
            gold = catalog_facts(job, ontology, items_df)
        elif name in files:
            index, spec = files[name]
            gold, _ = read_fact_file(job, ontology, spec, index)
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
