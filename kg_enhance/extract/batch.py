"""Batch extraction: the synchronous engine's requests, validation, repairs and cache, through a Batch API or files.

Every request is exactly what :meth:`OpenAICompatibleClient.complete` would send
(:meth:`~kg_enhance.extract.client.OpenAICompatibleClient.request_body`), written as one
line of OpenAI Batch API JSONL::

    {"custom_id": "<cache key, 32 hex>-<attempt>-<failed tries>", "method": "POST",
     "url": "/v1/chat/completions", "body": {...}}

The custom id starts with the subject's cache key, so every answer maps back to its
subject and key; subjects already cached (or remembered as quarantined) are never
submitted. Each answer goes through :meth:`Extractor.check`, then :meth:`Extractor.accept`
(cached at once) or a repair, or :meth:`Extractor.quarantine`, as in the synchronous path.

:class:`BatchRunner` (``llm.mode: batch``) works in rounds. A round uploads the open
subjects' requests (Files endpoint, ``purpose="batch"``), creates a batch (Batches
endpoint) and records the batch id, its input file id and its custom ids in a state
file in the run folder, atomically, before it polls (with a doubling wait). A killed
process finds the batch there and polls it again instead of submitting anew; a batch
whose id was not recorded yet is looked up by the submission token in its metadata.
When a batch ends, its output and error files are read: valid answers are cached,
invalid ones are repaired in the next round's batch (``llm.max_repairs`` times, then
quarantined), failed lines are resubmitted ``llm.batch.max_line_retries`` times, then
quarantined, and lines an expired or cancelled batch never ran are resubmitted. After
``llm.batch.max_rounds`` rounds what is still open stays pending (a re-run continues).

:func:`export_requests` and :func:`import_results` do the same with files, for ``vllm
run-batch`` or any offline runner: an import caches valid answers, quarantines what has
no attempts left, and writes the repairs and retries as a follow-up request file.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from kg_enhance.config.models import BatchConfig
from kg_enhance.errors import DataError, LLMConfigurationError
from kg_enhance.extract.client import Completion, OpenAICompatibleClient, completion_from_body
from kg_enhance.extract.engine import BatchCounts, ExtractionResult, Extractor
from kg_enhance.io.files import atomic_path, write_json
from kg_enhance.progress import Progress
from kg_enhance.types import Item

logger = logging.getLogger(__name__)

#: hex characters of the cache key at the start of a custom id
KEY_CHARS = 32
#: metadata key holding a submission's token (finds a batch whose id a killed run did not record)
SUBMISSION_KEY = "kg_enhance_submission"
#: batch statuses after which nothing changes any more
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
STATE_VERSION = 1


def custom_id(key: str, attempt: int, failures: int) -> str:
    """``<cache key prefix>-<attempt>-<failed tries>``: maps an answer back to its subject and where it stands."""
    return f"{key[:KEY_CHARS]}-{attempt}-{failures}"


def parse_custom_id(value: object) -> tuple[str, int, int] | None:
    """``(key prefix, attempt, failed tries)`` of a custom id made by :func:`custom_id`; ``None`` for any other."""
    if not isinstance(value, str):
        return None
    parts = value.split("-")
    if len(parts) != 3 or len(parts[0]) != KEY_CHARS or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    return parts[0], int(parts[1]), int(parts[2])


@dataclass
class OpenSubject:
    """A subject still being asked: which attempt its next request is, and what the last one got."""

    item: Item
    key: str
    attempt: int = 1
    failures: int = 0
    #: the last invalid answer and its errors (the next request is a repair), else None
    answer: str | None = None
    errors: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def custom_id(self) -> str:
        return custom_id(self.key, self.attempt, self.failures)

    def to_state(self) -> dict[str, Any]:
        return {
            "attempt": self.attempt,
            "failures": self.failures,
            "answer": self.answer,
            "errors": self.errors,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }

    @classmethod
    def from_state(cls, item: Item, key: str, saved: dict[str, Any]) -> OpenSubject:
        return cls(
            item=item,
            key=key,
            attempt=int(saved.get("attempt", 1)),
            failures=int(saved.get("failures", 0)),
            answer=saved.get("answer"),
            errors=list(saved.get("errors") or []),
            prompt_tokens=int(saved.get("prompt_tokens", 0)),
            completion_tokens=int(saved.get("completion_tokens", 0)),
        )


def request_line(
    extractor: Extractor, client: OpenAICompatibleClient, subject: OpenSubject
) -> dict[str, Any]:
    """One Batch API input line: the request the synchronous path would send for ``subject``'s next attempt."""
    first = extractor.first_messages(subject.item)
    messages = (
        first if subject.answer is None else extractor.repair_messages(first, subject.answer, subject.errors)
    )
    return {
        "custom_id": subject.custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": client.request_body(messages, schema=extractor.schema, mode=extractor.mode),
    }


def line_outcome(line: dict[str, Any]) -> Completion | str:
    """A Batch API output or error line: the answer (HTTP 200), else why the request failed."""
    response = line.get("response")
    if isinstance(response, dict):
        body = response.get("body")
        status = response.get("status_code")
        if status == 200 and isinstance(body, dict):
            return completion_from_body(body)
        error = body.get("error") if isinstance(body, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        return f"HTTP {status}: {message or 'no message'}"
    error = line.get("error")
    if isinstance(error, dict):
        return f"{error.get('code') or 'error'}: {error.get('message') or 'no message'}"
    return "the line has neither a response nor an error"


def iter_jsonl(data: bytes | Iterable[str], *, where: str) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSONL file's lines; a line that is not one is a :class:`DataError` naming it."""
    lines = data.decode("utf-8").splitlines() if isinstance(data, bytes) else data
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(
                f"{where} line {number}: not JSON ({e.msg}); expected Batch API output lines"
            ) from e
        if not isinstance(value, dict):
            raise DataError(f"{where} line {number}: not a JSON object; expected Batch API output lines")
        yield value


class _Outcomes:
    """What happens to a subject when its line comes back: the same steps as the synchronous engine."""

    def __init__(self, extractor: Extractor, result: ExtractionResult, max_line_retries: int) -> None:
        self.ex = extractor
        self.result = result
        self.max_line_retries = max_line_retries

    def answered(self, subject: OpenSubject, completion: Completion) -> bool:
        """Validate an answer; cached, or quarantined with no repairs left (True), or to be repaired (False)."""
        stats = self.result.stats
        stats.llm_calls += 1
        stats.prompt_tokens += completion.prompt_tokens
        stats.completion_tokens += completion.completion_tokens
        subject.prompt_tokens += completion.prompt_tokens
        subject.completion_tokens += completion.completion_tokens
        checked = self.ex.check(subject.item, completion)
        if not checked.errors:
            self.ex.accept(
                subject.item,
                subject.key,
                completion.text,
                checked,
                self.result,
                attempts=subject.attempt,
                prompt_tokens=subject.prompt_tokens,
                completion_tokens=subject.completion_tokens,
            )
            return True
        if subject.attempt <= self.ex.max_repairs:
            stats.repairs += 1
            subject.attempt += 1
            subject.failures = 0
            subject.answer = completion.text
            subject.errors = checked.errors
            return False
        self.ex.quarantine(
            subject.item,
            subject.key,
            self.result,
            attempts=subject.attempt,
            errors=checked.errors,
            raw=completion.text,
        )
        return True

    def failed(self, subject: OpenSubject, why: str, counts: BatchCounts) -> bool:
        """A failed line: resubmitted (False) until ``max_line_retries``, then quarantined (True)."""
        counts.failed_lines += 1
        if subject.failures >= self.max_line_retries:
            self.ex.quarantine(
                subject.item,
                subject.key,
                self.result,
                attempts=subject.attempt,
                errors=[f"batch request failed {subject.failures + 1} time(s), last: {why}"],
                raw=subject.answer,
            )
            return True
        subject.failures += 1
        self.result.stats.retries += 1
        return False


@dataclass
class BatchRecord:
    """One submitted batch, as the state file keeps it."""

    token: str
    custom_ids: dict[str, str]
    input_file_id: str | None = None
    batch_id: str | None = None
    status: str | None = None
    done: bool = False
    requests: int = 0

    def to_state(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "input_file_id": self.input_file_id,
            "batch_id": self.batch_id,
            "status": self.status,
            "done": self.done,
            "requests": self.requests,
            # a finished batch's ids are not needed any more (keeps the state small)
            "custom_ids": {} if self.done else self.custom_ids,
        }

    @classmethod
    def from_state(cls, saved: dict[str, Any]) -> BatchRecord:
        return cls(
            token=str(saved["token"]),
            custom_ids={str(k): str(v) for k, v in (saved.get("custom_ids") or {}).items()},
            input_file_id=saved.get("input_file_id"),
            batch_id=saved.get("batch_id"),
            status=saved.get("status"),
            done=bool(saved.get("done")),
            requests=int(saved.get("requests", 0)),
        )


class BatchRunner:
    """``llm.mode: batch``: one extraction pass (items or users) through the endpoint's Files and Batches API.

    ``state_path`` (in the run folder) records the batches in flight and the open
    subjects' attempts; it is written atomically before every poll and after every
    batch's results are cached, and removed once nothing is open or in flight.
    """

    def __init__(
        self,
        extractor: Extractor,
        client: OpenAICompatibleClient,
        config: BatchConfig,
        state_path: Path,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.ex = extractor
        self.client = client
        self.config = config
        self.state_path = state_path
        self.sleep = sleep
        self.batches: list[BatchRecord] = []
        self.open: dict[str, OpenSubject] = {}
        self.counts = BatchCounts()
        self.bar: Progress[None] = Progress(total=0, desc="extract (batch)", enabled=False)

    # -- state -------------------------------------------------------------------------------------
    def _load(self, todo: list[tuple[Item, str]]) -> None:
        saved: dict[str, Any] = {}
        if self.state_path.is_file():
            try:
                saved = json.loads(self.state_path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise DataError(
                    f"batch state {self.state_path}: unreadable ({e}); it names the batches in flight: "
                    "fix or remove it (removing it resubmits their requests)"
                ) from e
            if saved.get("version") != STATE_VERSION:
                saved = {}
        progress = saved.get("open") or {}
        for item, key in todo:
            known = progress.get(key)
            self.open[key] = (
                OpenSubject.from_state(item, key, known) if known else OpenSubject(item=item, key=key)
            )
        for raw in saved.get("batches") or []:
            record = BatchRecord.from_state(raw)
            if record.done:
                continue
            if not any(key in self.open for key in record.custom_ids.values()):
                logger.warning(
                    "batch %s of an earlier run asks about no open subject of this job (its answers are cached, or the "
                    "prompt, model or data changed); not polled",
                    record.batch_id or record.token,
                )
                continue
            self.batches.append(record)
            self.counts.resumed += 1

    def _save(self) -> None:
        in_flight = [b for b in self.batches if not b.done]
        if not in_flight and not self.open:
            self.state_path.unlink(missing_ok=True)
            return
        write_json(
            self.state_path,
            {
                "version": STATE_VERSION,
                "head": self.ex.head,
                "batches": [b.to_state() for b in in_flight],
                "open": {key: s.to_state() for key, s in self.open.items()},
            },
            indent=None,
        )

    # -- the pass ----------------------------------------------------------------------------------
    async def run(self, items: Sequence[Item]) -> ExtractionResult:
        started = time.perf_counter()
        result = ExtractionResult(batch=self.counts)
        self.ex.server = server = await self.client.server_info()
        todo = self.ex.open_subjects(items, server, result)
        self._load(todo)
        outcomes = _Outcomes(self.ex, result, self.config.max_line_retries)
        budget = self.ex.budget_tokens
        kind = "user" if self.ex.head == "User" else "item"
        self.bar = Progress(
            total=len(self.open),
            desc=f"extract {kind}s (batch)",
            unit=kind,
            enabled=self.ex.progress and bool(self.open),
        )
        try:
            while True:
                for record in [b for b in self.batches if not b.done]:
                    await self._settle(record, outcomes)
                if not self.open:
                    break
                if self.counts.rounds >= self.config.max_rounds:
                    logger.warning(
                        "extract: %d %s(s) still open after %d batch rounds (llm.batch.max_rounds); "
                        "re-run to continue",
                        len(self.open),
                        self.ex.head.lower(),
                        self.counts.rounds,
                    )
                    break
                if budget is not None and result.stats.tokens >= budget:
                    result.stats.budget_reached = True
                    break
                await self._submit()
        finally:
            self.bar.close()
            result.stats.seconds = time.perf_counter() - started
        self._save()
        self.ex.finish(result)
        return result

    async def _submit(self) -> None:
        """One round: every open subject's next request, in batches of at most ``max_requests``."""
        subjects = list(self.open.values())
        self.counts.rounds += 1
        folder = self.state_path.parent
        for start in range(0, len(subjects), self.config.max_requests):
            chunk = subjects[start : start + self.config.max_requests]
            record = BatchRecord(
                token=uuid.uuid4().hex,
                custom_ids={s.custom_id: s.key for s in chunk},
                requests=len(chunk),
            )
            path = folder / f"{record.token}.input.jsonl"
            with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
                for subject in chunk:
                    fh.write(
                        json.dumps(request_line(self.ex, self.client, subject), ensure_ascii=False) + "\n"
                    )
            self.batches.append(record)
            self._save()
            record.input_file_id = await self.client.upload_batch_file(path)
            self._save()
            batch = await self.client.create_batch(
                input_file_id=record.input_file_id,
                completion_window=self.config.completion_window,
                metadata={SUBMISSION_KEY: record.token, "kg_enhance_head": self.ex.head},
            )
            record.batch_id = str(batch.id)
            self._save()  # before any poll: a killed run polls this batch again instead of resubmitting
            self.counts.batches += 1
            self.counts.requests += len(chunk)
            path.unlink(missing_ok=True)
            logger.info("extract: batch %s submitted (%d requests)", record.batch_id, len(chunk))

    async def _settle(self, record: BatchRecord, outcomes: _Outcomes) -> None:
        """Poll ``record``'s batch until it ends, then take its answers; its subjects that got none stay open."""
        if record.batch_id is None:
            found = None
            if record.input_file_id is not None:  # the killed run may have created it
                try:
                    found = await self.client.find_batch(key=SUBMISSION_KEY, value=record.token)
                except LLMConfigurationError as e:  # an endpoint that cannot list batches
                    logger.warning(
                        "extract: %s; a batch a killed run may have created for submission %s is not looked for",
                        e.one_line(),
                        record.token,
                    )
            if found is None:  # never submitted: its subjects go into the next round
                record.done = True
                self._save()
                (self.state_path.parent / f"{record.token}.input.jsonl").unlink(missing_ok=True)
                return
            record.batch_id = str(found.id)
            self._save()
        wait = self.config.poll_initial_s
        while True:
            batch = await self.client.retrieve_batch(record.batch_id)
            counts = getattr(batch, "request_counts", None)
            self.bar.set_postfix(
                batch=record.batch_id,
                status=batch.status,
                lines=f"{getattr(counts, 'completed', 0) + getattr(counts, 'failed', 0)}/{record.requests}",
            )
            self.bar.update(0)  # a log line every 30 s while the batch runs
            if batch.status in TERMINAL:
                break
            await self.sleep(wait)
            wait = min(wait * 2, self.config.poll_max_s)
        seen: set[str] = set()
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            data = await self.client.file_content(file_id)
            for line in iter_jsonl(data, where=f"batch {record.batch_id} file {file_id}"):
                cid = line.get("custom_id")
                if not isinstance(cid, str) or cid in seen:
                    continue
                key = record.custom_ids.get(cid)
                subject = self.open.get(key) if key is not None else None
                if subject is None or subject.custom_id != cid:
                    continue  # answered already (a re-read after a kill), or not ours
                seen.add(cid)
                outcome = line_outcome(line)
                decided = (
                    outcomes.answered(subject, outcome)
                    if isinstance(outcome, Completion)
                    else outcomes.failed(subject, outcome, self.counts)
                )
                if decided:
                    del self.open[subject.key]
                    self.bar.update(1)
        missing = sum(1 for cid, key in record.custom_ids.items() if cid not in seen and key in self.open)
        self.counts.unanswered += missing
        if batch.status in ("expired", "cancelled"):
            self.counts.expired += 1
        record.status = str(batch.status)
        record.done = True
        self._save()
        logger.info(
            "extract: batch %s %s: %d answered, %d without an answer",
            record.batch_id,
            batch.status,
            len(seen),
            missing,
        )
        if batch.status == "failed" and not seen:
            errors = getattr(getattr(batch, "errors", None), "data", None) or []
            first = errors[0] if errors else None
            why = (
                f"{getattr(first, 'code', None) or 'error'}: {getattr(first, 'message', None)}"
                if first
                else "no reason given"
            )
            raise LLMConfigurationError(
                f"LLM endpoint {self.client.endpoint}: batch {record.batch_id} failed ({why}); "
                "check llm.model and the endpoint's Batch API, then re-run (a new batch is submitted)"
            )


# -- files, for offline runners ------------------------------------------------------------------------
async def export_requests(
    extractor: Extractor, client: OpenAICompatibleClient, items: Sequence[Item], out: TextIO
) -> tuple[int, ExtractionResult]:
    """Write the first request of every subject that is neither cached nor remembered as quarantined to ``out``.

    ``out`` is an open text file; the number of lines written and the pass's counts
    (cache hits, remembered quarantines) are returned.
    """
    result = ExtractionResult()
    extractor.server = server = await client.server_info()
    todo = extractor.open_subjects(items, server, result)
    for item, key in todo:
        line = request_line(extractor, client, OpenSubject(item=item, key=key))
        out.write(json.dumps(line, ensure_ascii=False) + "\n")
    extractor.finish(result)
    return len(todo), result


async def import_results(
    extractor: Extractor,
    client: OpenAICompatibleClient,
    items: Sequence[Item],
    path: Path,
    followup: TextIO,
    *,
    max_line_retries: int,
) -> ExtractionResult:
    """Take a Batch API output file's answers about ``items`` through validation, repair and the cache.

    Valid answers are cached; invalid ones with repairs left and failed lines with
    retries left are written to ``followup`` (an open text file) as the next requests;
    subjects with nothing left are quarantined. Lines about other subjects (cached
    already, or another prompt, model or data) are skipped and counted. A failed line's
    retry asks the first prompt again (the file does not hold the repair it failed on).
    """
    started = time.perf_counter()
    counts = BatchCounts()
    result = ExtractionResult(batch=counts)
    extractor.server = server = await client.server_info()
    todo = extractor.open_subjects(items, server, result)
    by_prefix = {key[:KEY_CHARS]: (item, key) for item, key in todo}
    outcomes = _Outcomes(extractor, result, max_line_retries)
    seen: set[str] = set()
    with open(path, encoding="utf-8") as fh:
        for line in iter_jsonl(fh, where=str(path)):
            parsed = parse_custom_id(line.get("custom_id"))
            if parsed is None or parsed[0] not in by_prefix or parsed[0] in seen:
                counts.skipped_lines += 1
                continue
            prefix, attempt, failures = parsed
            seen.add(prefix)
            item, key = by_prefix[prefix]
            subject = OpenSubject(item=item, key=key, attempt=attempt, failures=failures)
            outcome = line_outcome(line)
            if isinstance(outcome, Completion):
                decided = outcomes.answered(subject, outcome)
            else:
                decided = outcomes.failed(subject, outcome, counts)
                subject.answer = None  # see the docstring
            if not decided:
                followup.write(
                    json.dumps(request_line(extractor, client, subject), ensure_ascii=False) + "\n"
                )
                counts.followup_requests += 1
    counts.unanswered = len(by_prefix) - len(seen)
    result.stats.seconds = time.perf_counter() - started
    extractor.finish(result)
    return result
