"""Extract: ask the LLM for facts about each catalog item (and, opt-in, each user).

Writes ``extract/facts.jsonl``, ``quarantine.jsonl``, ``dropped.json`` and
``extracted_ids.json`` in the run folder; the load stage reads them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

from pydantic import BaseModel, ConfigDict

from kg_enhance.config.models import JobSpec
from kg_enhance.errors import StageError
from kg_enhance.extract.cache import ExtractionCache, default_cache_path
from kg_enhance.extract.client import OpenAICompatibleClient
from kg_enhance.extract.engine import ExtractionResult, ExtractionStats, Extractor, RateLimiter
from kg_enhance.extract.plan import ExtractionPlan, generation_settings
from kg_enhance.io.files import write_json, write_jsonl
from kg_enhance.io.tables import read_items, read_users
from kg_enhance.ontology.models import Ontology
from kg_enhance.stages.base import Stage, StageContext, StageResult
from kg_enhance.types import Fact

logger = logging.getLogger(__name__)


class ExtractionCounts(BaseModel):
    """Counts of one extraction pass (items or users), as :class:`ExtractionStats` reports them."""

    model_config = ConfigDict(extra="forbid")

    items: int = 0
    llm_calls: int = 0
    cache_hits: int = 0
    extracted: int = 0
    quarantined: int = 0
    retries: int = 0
    repairs: int = 0
    facts: int = 0
    dropped_facts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    pending: int = 0
    budget_reached: bool = False
    rate_limited_seconds: float = 0.0
    tokens: int = 0
    items_per_second: float | None = None
    facts_by_relation: dict[str, int] = {}

    @classmethod
    def of(cls, result: ExtractionResult) -> ExtractionCounts:
        return cls(
            **result.stats.as_dict(),
            facts_by_relation=dict(Counter(f.relation for f in result.facts)),
        )


class ExtractResult(ExtractionCounts, StageResult):
    """The ``extract`` section of ``report.json``: item counts at the top, users nested."""

    enabled: bool = True
    catalog_items: int = 0
    structured_output: str | None = None
    model: str | None = None
    users: ExtractionCounts | None = None
    cost: float = 0.0


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
    )


async def _extract(
    ctx: StageContext, items: ExtractionPlan, users: ExtractionPlan | None
) -> tuple[ExtractionResult, ExtractionResult | None, str]:
    job, llm = ctx.job, ctx.job.llm
    client = _client(job)
    cache = ExtractionCache(default_cache_path())
    try:
        mode: str = llm.structured_output
        if mode == "auto":
            mode = await client.detect_mode()
        engine = build_extractor(
            job,
            ctx.ontology,
            items,
            client=client,
            mode=mode,
            cache=cache,
            progress=ctx.progress,
            budget_tokens=llm.budget_tokens,
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
            )
            users_result = await user_engine.run(users.subjects)
        return items_result, users_result, mode
    finally:
        await client.close()
        cache.close()


class ExtractStage(Stage[ExtractResult]):
    name = "extract"
    section = "extract"

    def run(self, ctx: StageContext) -> ExtractResult:
        job, llm, run = ctx.job, ctx.job.llm, ctx.run
        items, _ = read_items(job)
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
            users = ExtractionPlan.for_users(job, read_users(job))
        result, user_result, mode = asyncio.run(_extract(ctx, ExtractionPlan.for_items(job, items), users))

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
        return ExtractResult(
            **ExtractionCounts.of(result).model_dump(),
            catalog_items=len(items),
            structured_output=mode,
            model=llm.model,
            users=None if user_result is None else ExtractionCounts.of(user_result),
            cost=round(sum(_cost(job, r.stats) for r in (result, user_result) if r is not None), 6),
        )


def _cost(job: JobSpec, stats: ExtractionStats) -> float:
    return (
        stats.prompt_tokens / 1e6 * job.llm.price_per_1m_input_tokens
        + stats.completion_tokens / 1e6 * job.llm.price_per_1m_output_tokens
    )
