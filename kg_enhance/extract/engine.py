"""The extraction engine: items in, validated facts and quarantine records out.

Each item is looked up in the content-addressed cache first; misses go to the LLM
with bounded concurrency. Invalid answers are re-asked with the validation errors
(``max_repairs`` times); what still fails is quarantined with its raw output, so
every item ends up either extracted or quarantined. Completed items are cached as
soon as they finish, which is what makes an interrupted run resumable.

Quarantines are remembered in the cache under the same key: a later run does not ask
again about a subject whose answers stayed invalid for the same prompt, model and
input (it is reported as quarantined, with the remembered raw output and errors, and
counted in ``quarantine_remembered``), unless ``retry_quarantined`` is set.

The key and the facts' ``model`` name what actually answered: the endpoint (without
credentials) and the model the server reports serving (:meth:`LLMClient.server_info`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, computed_field

from kg_enhance.errors import ServiceUnavailableError
from kg_enhance.extract.cache import ExtractionCache, cache_key
from kg_enhance.extract.client import Completion, LLMClient, ServerInfo
from kg_enhance.extract.prompts import PromptTemplate, item_text, render_item_prompt
from kg_enhance.extract.validate import Checked, check_answer, drop_reason, recheck_cached
from kg_enhance.names import normalise_name
from kg_enhance.ontology.models import Ontology
from kg_enhance.ontology.output import build_fact_model, fact_json_schema
from kg_enhance.progress import Progress
from kg_enhance.types import Fact, Item, QuarantineRecord

logger = logging.getLogger(__name__)


class ExtractionStats(BaseModel):
    """Counts of one extraction pass; the extract stage reports them as they are (plus ``facts_by_relation``)."""

    items: int = 0
    llm_calls: int = 0
    cache_hits: int = 0
    extracted: int = 0
    quarantined: int = 0
    #: of ``quarantined``: subjects not asked again because the cache remembers their quarantine
    quarantine_remembered: int = 0
    retries: int = 0
    repairs: int = 0
    facts: int = 0
    dropped_facts: int = 0
    #: ``dropped_facts`` per reason (:data:`kg_enhance.extract.validate.DROP_REASONS`)
    dropped_by_reason: dict[str, int] = {}
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    pending: int = 0
    budget_reached: bool = False
    rate_limited_seconds: float = 0.0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @computed_field  # type: ignore[prop-decorator]
    @property
    def items_per_second(self) -> float | None:
        return round(self.items / self.seconds, 3) if self.seconds else None

    def counts(self) -> dict[str, Any]:
        """The stored counts (without the derived ``tokens`` and ``items_per_second``)."""
        return self.model_dump(exclude={"tokens", "items_per_second"})


class BatchCounts(BaseModel):
    """What the batch path did (``llm.mode: batch`` or ``--import-batch``), next to the :class:`ExtractionStats`."""

    #: batches submitted by this process, and their requests (repairs and resubmissions included)
    batches: int = 0
    requests: int = 0
    #: rounds of submissions (first requests, then repairs, retries and lines a batch did not run)
    rounds: int = 0
    #: batches of an earlier, killed process polled again instead of resubmitted
    resumed: int = 0
    #: batches that expired or were cancelled (their finished lines are kept)
    expired: int = 0
    #: requests a batch ended without answering (resubmitted) or, on import, open subjects the file had no line for
    unanswered: int = 0
    #: lines that came back as failed requests (resubmitted, then quarantined)
    failed_lines: int = 0
    #: import: lines about no open subject of this pass (the other head kind, cached already, or
    #: another prompt, model or data)
    skipped_lines: int = 0
    #: import: repairs and retries written to the follow-up request file
    followup_requests: int = 0


class _BudgetReached(Exception):
    """Internal: the token budget is spent; the item stays pending (neither extracted nor quarantined)."""


class RateLimiter:
    """Sliding one-minute window over requests and tokens, shared by all concurrent calls."""

    def __init__(
        self,
        *,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        window_s: float = 60.0,
    ) -> None:
        self.rpm = requests_per_minute
        self.tpm = tokens_per_minute
        self.window = window_s
        self._events: list[tuple[float, int]] = []
        self._lock = asyncio.Lock()
        self.waited_s = 0.0

    async def acquire(self, tokens: int) -> None:
        if self.rpm is None and self.tpm is None:
            return
        async with self._lock:
            while True:
                now = time.monotonic()
                self._events = [(t, n) for t, n in self._events if now - t < self.window]
                over_rpm = self.rpm is not None and len(self._events) >= self.rpm
                over_tpm = (
                    self.tpm is not None
                    and self._events
                    and sum(n for _, n in self._events) + tokens > self.tpm
                )
                if not (over_rpm or over_tpm):
                    self._events.append((now, tokens))
                    return
                sleep = max(0.01, self.window - (now - self._events[0][0]))
                self.waited_s += sleep
                await asyncio.sleep(sleep)


def subject_cache_key(
    *,
    endpoint: str,
    model: str,
    generation: dict[str, Any],
    mode: str,
    template_hash: str,
    ontology_fingerprint: str,
    grounding: str,
    head: str,
    item: Item,
) -> str:
    """The cache key of one item's (or user's) extraction: everything that determines the answer.

    ``endpoint`` is the normalised base URL without credentials and ``model`` the model
    the server reports serving (see :class:`~kg_enhance.extract.client.ServerInfo`).
    """
    return cache_key(
        endpoint=endpoint,
        model=model,
        generation=generation,
        mode=mode,
        template=template_hash,
        ontology=ontology_fingerprint,
        grounding=grounding,
        head=head,
        item_id=item.item_id,
        text=item_text(item),
    )


@dataclass
class ExtractionResult:
    facts: list[Fact] = field(default_factory=list)
    quarantine: list[QuarantineRecord] = field(default_factory=list)
    dropped: dict[str, list[str]] = field(default_factory=dict)
    #: ids of the subjects that were extracted (from the cache or the LLM), with or without facts
    extracted_ids: list[str] = field(default_factory=list)
    stats: ExtractionStats = field(default_factory=ExtractionStats)
    #: the batch path's counts; None for the synchronous path
    batch: BatchCounts | None = None
    #: when each extracted subject's answer was made (the cached answer's time, or now): its facts' age
    answered_at: dict[str, float] = field(default_factory=dict)


class Extractor:
    """Subject-anchored fact extraction against one LLM client.

    The subject is a catalog item (``head="Item"``, the default) or a user
    (``head="User"``: user-side preference facts from the user's own text; the
    :class:`Item` record then carries the user id and text). Only relations whose
    head is ``head`` are asked for and accepted.
    """

    def __init__(
        self,
        client: LLMClient,
        ontology: Ontology,
        *,
        template: PromptTemplate,
        cache: ExtractionCache,
        mode: str,
        grounding: str = "world",
        max_repairs: int = 2,
        max_concurrency: int = 2,
        generation: dict[str, Any] | None = None,
        progress: bool = True,
        budget_tokens: int | None = None,
        rate_limiter: RateLimiter | None = None,
        head: str = "Item",
        reserved_words: Sequence[str] = (),
        retry_quarantined: bool = False,
    ) -> None:
        self.head = head
        self.retry_quarantined = retry_quarantined
        self.server: ServerInfo | None = None
        self.budget_tokens = budget_tokens
        self.rate_limiter = rate_limiter or RateLimiter()
        self.client = client
        self.ontology = ontology
        self.template = template
        self.cache = cache
        self.mode = mode
        self.grounding = grounding
        self.max_repairs = max_repairs
        self.max_concurrency = max_concurrency
        self.generation = generation or {}
        self.progress = progress
        self.schema = fact_json_schema(ontology, head=head)
        self.model = build_fact_model(ontology, head=head)
        self.vocabularies = {n: e.vocabulary for n, e in ontology.entity_types.items() if e.vocabulary}
        self.allowed_types = {n: list(r.tail) for n, r in ontology.relations.items() if r.head == head}
        self._ontology_fp = ontology.fingerprint()
        # names that are field labels, not facts ("title: Heat" copied as a Person named "title")
        words = {
            ontology.item.label,
            "item",
            "name",
            "unknown",
            "none",
            "n/a",
            "user",
            *ontology.entity_types,
            *(f"{t}s" for t in ontology.entity_types),
            *ontology.relations,
            *reserved_words,
            *(f"{w}s" for w in reserved_words),
        }
        self.reserved_words = {normalise_name(w) for w in words}

    @property
    def served_model(self) -> str:
        """The model that answers (known once :meth:`run` has asked the server)."""
        return self.server.served_model if self.server is not None else self.client.model

    def key_for(self, item: Item, server: ServerInfo) -> str:
        return subject_cache_key(
            endpoint=server.endpoint,
            model=server.served_model,
            generation=self.generation,
            mode=self.mode,
            template_hash=self.template.hash,
            ontology_fingerprint=self._ontology_fp,
            grounding=self.grounding,
            head=self.head,
            item=item,
        )

    @property
    def _kind(self) -> str:
        return "user" if self.head == "User" else "item"

    def _to_facts(self, item: Item, raw_facts: list[dict[str, Any]]) -> list[Fact]:
        return [
            Fact(
                head_id=item.item_id,
                relation=f["relation"],
                object=f["object"],
                object_type=f["object_type"],
                head_kind=self.head,
                source="llm",
                source_field=",".join(item.text) or None,
                evidence=f.get("evidence"),
                confidence=f.get("confidence"),
                model=self.served_model,
                prompt_hash=self.template.hash,
            )
            for f in raw_facts
        ]

    def open_subjects(
        self,
        items: Sequence[Item],
        server: ServerInfo,
        result: ExtractionResult,
        *,
        refresh: Collection[str] = (),
    ) -> list[tuple[Item, str]]:
        """Count cache hits and remembered quarantines into ``result``; the subjects (with their keys) still to ask.

        The ids in ``refresh`` (facts past ``llm.refresh_after``) are asked again even when the
        cache has an answer (the new answer replaces it)."""
        stats = result.stats
        stats.items = len(items)
        keys = [self.key_for(item, server) for item in items]
        fresh_keys = [k for item, k in zip(items, keys, strict=True) if item.item_id not in refresh]
        cached = self.cache.get_many(fresh_keys)
        remembered = {} if self.retry_quarantined else self.cache.get_quarantined(fresh_keys)
        todo: list[tuple[Item, str]] = []
        for item, key in zip(items, keys, strict=True):
            hit = cached.get(key)
            if hit is None:
                known = remembered.get(key)
                if known is None:
                    todo.append((item, key))
                else:
                    stats.quarantined += 1
                    stats.quarantine_remembered += 1
                    result.quarantine.append(
                        QuarantineRecord(
                            item_id=item.item_id,
                            attempts=known["attempts"],
                            errors=known["errors"],
                            raw_output=known["raw"],
                            kind=self._kind,
                        )
                    )
                continue
            stats.cache_hits += 1
            stats.extracted += 1
            result.extracted_ids.append(item.item_id)
            result.answered_at[item.item_id] = float(hit.get("created") or time.time())
            kept, notes = recheck_cached(hit["facts"], item_text=item_text(item), grounding=self.grounding)
            result.facts.extend(self._to_facts(item, kept))
            if hit["dropped"] or notes:
                result.dropped[item.item_id] = [*(hit["dropped"] or []), *notes]
        return todo

    def finish(self, result: ExtractionResult) -> None:
        """Derived counts once a pass is over: pending subjects, facts, dropped facts."""
        stats = result.stats
        stats.pending = stats.items - stats.extracted - stats.quarantined
        stats.budget_reached = stats.budget_reached or (stats.pending > 0 and self.budget_tokens is not None)
        stats.facts = len(result.facts)
        reasons = Counter(drop_reason(note) for notes in result.dropped.values() for note in notes)
        reasons.pop(None, None)  # kept with a note (retyped, confidence ignored)
        stats.dropped_by_reason = {str(k): n for k, n in sorted(reasons.items(), key=lambda kv: str(kv[0]))}
        stats.dropped_facts = sum(reasons.values())

    async def run(self, items: Sequence[Item], *, refresh: Collection[str] = ()) -> ExtractionResult:
        """Extract ``items``; the ids in ``refresh`` are asked again even when cached (:meth:`open_subjects`)."""
        started = time.perf_counter()
        result = ExtractionResult()
        self.server = server = await self.client.server_info()
        todo = self.open_subjects(items, server, result, refresh=refresh)

        semaphore = asyncio.Semaphore(self.max_concurrency)
        bar: Progress[None] = Progress(
            total=len(todo),
            desc=f"extract {self._kind}s",
            unit=self._kind,
            enabled=self.progress and bool(todo),
        )

        async def one(item: Item, key: str) -> None:
            async with semaphore:
                await self._extract_one(item, key, result)
            bar.update(1)

        try:
            tasks = [asyncio.create_task(one(item, key)) for item, key in todo]
            if tasks:
                done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
                for task in pending:
                    task.cancel()
                if pending:
                    await asyncio.gather(*pending, return_exceptions=True)
                for task in done:
                    exc = task.exception()
                    if isinstance(exc, _BudgetReached):
                        continue
                    if exc is not None:
                        raise exc
        finally:
            bar.close()
            result.stats.seconds = time.perf_counter() - started
            result.stats.rate_limited_seconds = round(self.rate_limiter.waited_s, 3)
        self.finish(result)
        return result

    # -- the steps of one subject, shared with the batch path (kg_enhance.extract.batch) ---------------
    def first_messages(self, item: Item) -> list[dict[str, str]]:
        """The first request's messages for ``item``."""
        return render_item_prompt(
            self.template, self.ontology, item, grounding=self.grounding, head=self.head
        )

    @staticmethod
    def repair_messages(first: list[dict[str, str]], answer: str, errors: list[str]) -> list[dict[str, str]]:
        """The re-ask after an invalid ``answer``: the first prompt, the answer, and its validation errors."""
        return [
            *first[:2],
            {"role": "assistant", "content": (answer or "")[:2000]},
            {
                "role": "user",
                "content": "Your answer was invalid: "
                + "; ".join(errors)
                + '. Reply again with only the corrected JSON object {"facts": [...]}.',
            },
        ]

    def check(self, item: Item, completion: Completion) -> Checked:
        """Validate one answer about ``item`` (a cut-off answer with errors says so first)."""
        checked = check_answer(
            completion.text,
            self.model,
            item_title=item.title,
            item_text=item_text(item),
            grounding=self.grounding,
            vocabularies=self.vocabularies,
            allowed_types=self.allowed_types,
            reserved_words=self.reserved_words | {normalise_name(f) for f in item.text},
        )
        if completion.finish_reason == "length" and checked.errors:
            checked.errors.insert(0, "answer was cut off at max_tokens; give fewer facts")
        return checked

    def accept(
        self,
        item: Item,
        key: str,
        raw: str,
        checked: Checked,
        result: ExtractionResult,
        *,
        attempts: int,
        prompt_tokens: int,
        completion_tokens: int,
    ) -> None:
        """Cache a valid answer and count it into ``result``."""
        self.cache.put(  # a failed write is logged and skipped: the facts below still count
            key,
            item_id=item.item_id,
            model=self.served_model,
            raw=raw,
            facts=checked.facts,
            dropped=checked.dropped,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            attempts=attempts,
        )
        result.stats.extracted += 1
        result.extracted_ids.append(item.item_id)
        result.answered_at[item.item_id] = time.time()
        result.facts.extend(self._to_facts(item, checked.facts))
        if checked.dropped:
            result.dropped[item.item_id] = checked.dropped

    def quarantine(
        self,
        item: Item,
        key: str,
        result: ExtractionResult,
        *,
        attempts: int,
        errors: list[str],
        raw: str | None,
    ) -> None:
        """Quarantine ``item`` in ``result`` and remember it in the cache."""
        result.stats.quarantined += 1
        result.quarantine.append(
            QuarantineRecord(
                item_id=item.item_id, attempts=attempts, errors=errors, raw_output=raw, kind=self._kind
            )
        )
        self.cache.put_quarantine(
            key,
            item_id=item.item_id,
            kind=self._kind,
            model=self.served_model,
            raw=raw,
            errors=errors,
            attempts=attempts,
        )
        logger.info(
            "%s %s quarantined after %d attempts: %s",
            self.head.lower(),
            item.item_id,
            attempts,
            "; ".join(errors)[:200],
        )

    async def _extract_one(self, item: Item, key: str, result: ExtractionResult) -> None:
        stats = result.stats
        first = messages = self.first_messages(item)
        prompt_tokens = completion_tokens = 0
        last_raw: str | None = None
        errors: list[str] = []
        attempts = 0
        for attempt in range(1, self.max_repairs + 2):
            attempts = attempt
            if self.budget_tokens is not None and stats.tokens >= self.budget_tokens:
                stats.budget_reached = True
                raise _BudgetReached
            estimate = sum(len(m["content"]) for m in messages) // 4 + int(
                self.generation.get("max_tokens") or 0
            )
            await self.rate_limiter.acquire(estimate)
            try:
                completion = await self.client.complete(messages, schema=self.schema, mode=self.mode)
            except ServiceUnavailableError as e:  # say which subject was being asked
                raise ServiceUnavailableError(f"{self._kind} {item.item_id}: {e}") from e
            stats.llm_calls += 1
            stats.retries += completion.retries
            stats.prompt_tokens += completion.prompt_tokens
            stats.completion_tokens += completion.completion_tokens
            prompt_tokens += completion.prompt_tokens
            completion_tokens += completion.completion_tokens
            last_raw = completion.text
            checked = self.check(item, completion)
            if not checked.errors:
                self.accept(
                    item,
                    key,
                    completion.text,
                    checked,
                    result,
                    attempts=attempt,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                )
                return
            errors = checked.errors
            if attempt <= self.max_repairs:
                stats.repairs += 1
                messages = self.repair_messages(first, completion.text, errors)
        self.quarantine(item, key, result, attempts=attempts, errors=errors, raw=last_raw)
