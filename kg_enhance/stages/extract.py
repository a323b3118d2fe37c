"""Extract: ask the LLM for facts about each catalog item (and, opt-in, each user).

Writes ``extract/facts.jsonl``, ``quarantine.jsonl``, ``dropped.json`` and
``extracted_ids.json`` in the run folder; the load stage reads them.

The endpoint is asked once what it serves (``GET /models``); that, with the endpoint,
keys the cache and names the facts' model, and is remembered in the cache so that a
dry run can count cache hits and a fully cached re-run still completes while the
server is down. Subjects quarantined before for the same key are not asked again
unless the run sets ``retry_quarantined`` (``kg-enhance run --retry-quarantined``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pandas as pd
from pydantic import ConfigDict

from kg_enhance.config.models import JobSpec
from kg_enhance.errors import ServiceUnavailableError, StageError
from kg_enhance.extract.cache import ExtractionCache, default_cache_path
from kg_enhance.extract.client import OpenAICompatibleClient, ServerInfo
from kg_enhance.extract.engine import ExtractionResult, ExtractionStats, Extractor, RateLimiter
from kg_enhance.extract.plan import ExtractionPlan, generation_settings
from kg_enhance.extract.quality import score_extraction
from kg_enhance.io.files import write_json, write_jsonl
from kg_enhance.io.tables import InputIssues, catalog_facts, read_fact_file, read_items, read_users
from kg_enhance.ontology.models import Ontology
from kg_enhance.stages.base import Stage, StageContext, StageResult
from kg_enhance.types import Fact

logger = logging.getLogger(__name__)


class ExtractionCounts(ExtractionStats):
    """Counts of one extraction pass (items or users) as reported: the engine's stats plus facts per relation."""

    model_config = ConfigDict(extra="forbid")

    facts_by_relation: dict[str, int] = {}

    @classmethod
    def of(cls, result: ExtractionResult) -> ExtractionCounts:
        return cls(
            **result.stats.counts(),
            facts_by_relation=dict(Counter(f.relation for f in result.facts)),
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


async def _server(client: OpenAICompatibleClient, cache: ExtractionCache, job: JobSpec) -> ServerInfo:
    """What the endpoint serves, remembered in the cache; while it is unreachable, what it served last time."""
    try:
        info = await client.server_info()
    except ServiceUnavailableError as e:
        seen = cache.endpoint_record(endpoint=client.endpoint, model=job.llm.model)
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
    try:
        server = await _server(client, cache, job)
        mode: str = llm.structured_output
        if mode == "auto":
            mode = server.mode
        engine = build_extractor(
            job,
            ctx.ontology,
            items,
            client=client,
            mode=mode,
            cache=cache,
            progress=ctx.progress,
            budget_tokens=llm.budget_tokens,
            retry_quarantined=ctx.retry_quarantined,
        )
        items_result = await engine.run(items.subjects)
        users_result = None
        if users is not None and not items_result.stats.budget_reached:
            budget = None
            if llm.budget_tokens is not None:  # one budget for the whole stage
                budget = max(1, llm.budget_tokens - items_result.stats.tokens)
            user_engine = build_extractor(
                job,
                ctx.ontology,
                users,
                client=client,
                mode=mode,
                cache=cache,
                progress=ctx.progress,
                budget_tokens=budget,
                retry_quarantined=ctx.retry_quarantined,
            )
            users_result = await user_engine.run(users.subjects)
        return items_result, users_result, mode, server
    finally:
        await client.close()
        cache.close()


class ExtractStage(Stage[ExtractResult]):
    name = "extract"
    section = "extract"

    def run(self, ctx: StageContext) -> ExtractResult:
        job, llm, run = ctx.job, ctx.job.llm, ctx.run
        # counted (and reported) by the load stage; read here too so --strict stops before any LLM call
        issues = InputIssues.collector(strict=ctx.strict, log=False)
        items, items_df = read_items(job, issues=issues)
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
            users=None if user_result is None else ExtractionCounts.of(user_result),
            cost=round(sum(_cost(job, r.stats) for r in (result, user_result) if r is not None), 6),
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


def _cost(job: JobSpec, stats: ExtractionStats) -> float:
    return (
        stats.prompt_tokens / 1e6 * job.llm.price_per_1m_input_tokens
        + stats.completion_tokens / 1e6 * job.llm.price_per_1m_output_tokens
    )
