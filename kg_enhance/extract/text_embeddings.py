"""LLM text embeddings: each subject's text through an OpenAI-compatible ``/v1/embeddings``.

The survey's "LLM as embedder" branch, next to "LLM as extractor": instead of facts, a
vector per item (and optionally per user) that recommenders fuse in as an item-side
input. Texts go out ``text_embeddings.batch_size`` at a time through the official
``openai`` client (the same transport, retries and one-line errors as extraction).

Every vector is cached by a hash of the endpoint, the model that answers and the text
(:class:`TextEmbeddingCache`, next to the extraction cache), so a re-run, or another
job with the same texts, sends nothing. Each batch's vectors are cached as soon as
they are checked: a failure in batch 7 keeps batches 1-6, and the re-run resumes.

An answer is checked before anything is kept: one vector per input, every vector a
list of finite numbers, all of one length (``text_embeddings.dim`` when set, else the
first vector's). Anything else is an :class:`~kg_enhance.errors.EmbeddingResponseError`
naming the endpoint, the model, the subject and the fix.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kg_enhance.config.models import LLMConfig, TextEmbeddingConfig
from kg_enhance.errors import EmbeddingResponseError, KgEnhanceError
from kg_enhance.extract.cache import ExtractionCache, cache_key
from kg_enhance.extract.client import OpenAICompatibleClient
from kg_enhance.paths import state_dir
from kg_enhance.progress import Progress

logger = logging.getLogger(__name__)

#: bump when the text or key recipe changes (old vectors are then no longer hits)
KEY_VERSION = "text_embedding.v1"

TEXT_SCHEMA = """
CREATE TABLE IF NOT EXISTS text_embedding (
    key TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    model TEXT NOT NULL,
    created REAL NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL
);
"""


def default_text_cache_path() -> Path:
    return state_dir() / "cache" / "text_embeddings.sqlite"


class TextEmbeddingCache(ExtractionCache):
    """Vectors by content hash, in SQLite (float32, little-endian), with the extraction cache's self-healing."""

    schema = TEXT_SCHEMA

    def get_vectors(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        def op(conn: sqlite3.Connection) -> dict[str, np.ndarray]:
            out: dict[str, np.ndarray] = {}
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT key, dim, vector FROM text_embedding WHERE key IN ({marks})",  # noqa: S608
                    chunk,
                ).fetchall()
                for key, dim, blob in rows:
                    vec = np.frombuffer(blob, dtype="<f4")
                    if len(vec) == dim:  # a damaged row is a miss
                        out[key] = vec
            return out

        return self._guarded("reading cached vectors", op, {}, "those texts are treated as not cached")

    def put_vectors(self, rows: Sequence[tuple[str, str, np.ndarray]], *, model: str) -> bool:
        """Store ``(key, subject id, vector)`` rows in one transaction."""
        now = time.time()
        values = [
            (key, subject, model, now, len(vec), np.asarray(vec, dtype="<f4").tobytes())
            for key, subject, vec in rows
        ]

        def op(conn: sqlite3.Connection) -> bool:
            conn.execute("BEGIN")
            try:
                conn.executemany("INSERT OR REPLACE INTO text_embedding VALUES (?,?,?,?,?,?)", values)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return True

        return self._guarded("storing vectors", op, False, "vectors of this run are used but not cached")

    def __len__(self) -> int:
        return self._guarded(
            "counting vectors",
            lambda conn: int(conn.execute("SELECT COUNT(*) FROM text_embedding").fetchone()[0]),
            0,
            "reported as 0",
        )


def subject_text(values: Sequence[tuple[str, object]], *, max_chars: int) -> str:
    """The text embedded for one subject: ``field: value`` lines of its non-empty fields, cut to ``max_chars``."""
    lines = []
    for name, value in values:
        text = " ".join(str(value).split()) if value is not None else ""
        if text and text.lower() != "nan":
            lines.append(f"{name}: {text}")
    return "\n".join(lines)[:max_chars]


@dataclass
class TextEmbeddingRun:
    """The vectors of one kind of subject, in input order, and how they were obtained."""

    kind: str
    ids: list[str]
    vectors: np.ndarray
    endpoint: str
    model: str
    dim: int
    #: subjects without any text (no vector)
    empty: list[str] = field(default_factory=list)
    cache_hits: int = 0
    embedded: int = 0
    requests: int = 0
    prompt_tokens: int = 0
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "subjects": len(self.ids),
            "without_text": len(self.empty),
            "cache_hits": self.cache_hits,
            "embedded": self.embedded,
            "requests": self.requests,
            "prompt_tokens": self.prompt_tokens,
            "seconds": round(self.seconds, 3),
        }


def _check(
    vectors: list[Any], subjects: list[str], *, dim: int | None, where: str, kind: str
) -> tuple[list[np.ndarray], int]:
    """Validated float32 vectors and their length; the first bad one raises, naming its subject."""
    out = []
    for vec, subject in zip(vectors, subjects, strict=True):
        if not isinstance(vec, list) or not vec or not all(isinstance(x, (int, float)) for x in vec):
            shape = (
                "a list of lists (one vector per token: is pooling off?)"
                if vec and isinstance(vec[0], list)
                else type(vec).__name__
            )
            raise EmbeddingResponseError(
                f"{where}: the vector for {kind} {subject!r} is not a list of numbers ({shape}); "
                "check text_embeddings.model (it must be an embedding model; `kg-enhance llm serve` serves one)"
            )
        if dim is not None and len(vec) != dim:
            raise EmbeddingResponseError(
                f"{where}: the vector for {kind} {subject!r} has {len(vec)} dimensions where {dim} were expected "
                "(text_embeddings.dim, or the first vector); check text_embeddings.model, or set text_embeddings.dim"
            )
        if not all(math.isfinite(x) for x in vec):
            raise EmbeddingResponseError(
                f"{where}: the vector for {kind} {subject!r} contains NaN or infinity; the server's model is "
                "broken for this input: check the server log and text_embeddings.model"
            )
        dim = len(vec)
        out.append(np.asarray(vec, dtype=np.float32))
    return out, int(dim or 0)


async def _embed_pending(
    pending: list[tuple[str, str, str]],
    client: OpenAICompatibleClient,
    cache: TextEmbeddingCache,
    cfg: TextEmbeddingConfig,
    run: TextEmbeddingRun,
    found: dict[str, np.ndarray],
    *,
    dim: int | None,
    progress: bool,
) -> int | None:
    """Send ``(key, subject, text)`` rows in batches; each checked batch is cached at once."""
    where = f"embeddings endpoint {client.endpoint} (model {run.model!r})"
    batches = [pending[i : i + cfg.batch_size] for i in range(0, len(pending), cfg.batch_size)]
    gate = asyncio.Semaphore(cfg.max_concurrency)
    state: dict[str, int | None] = {"dim": dim}
    bar: Progress[int] = Progress(
        total=len(pending), desc=f"embed {run.kind} text", unit=run.kind, enabled=progress
    )

    async def one(batch: list[tuple[str, str, str]]) -> None:
        async with gate:
            try:
                raw, tokens = await client.embed([text for _, _, text in batch])
            except KgEnhanceError as e:
                raise type(e)(
                    f"embed_text: {e} ({run.embedded} {run.kind} vectors of this run are cached; a re-run resumes)"
                ) from e
            vectors, got = _check(raw, [s for _, s, _ in batch], dim=state["dim"], where=where, kind=run.kind)
            state["dim"] = got
            cache.put_vectors(
                [(k, s, v) for (k, s, _), v in zip(batch, vectors, strict=True)], model=run.model
            )
            for (key, _, _), vec in zip(batch, vectors, strict=True):
                found[key] = vec
            run.embedded += len(batch)
            run.requests += 1
            run.prompt_tokens += tokens
            bar.update(len(batch))

    try:
        # in order, max_concurrency at a time; the first failure stops the rest (finished batches stay cached)
        for start in range(0, len(batches), cfg.max_concurrency):
            await asyncio.gather(*(one(b) for b in batches[start : start + cfg.max_concurrency]))
    finally:
        bar.close()
    return state["dim"]


async def _embed_all(
    texts: Sequence[tuple[str, str]],
    client: OpenAICompatibleClient,
    cache: TextEmbeddingCache,
    cfg: TextEmbeddingConfig,
    *,
    kind: str,
    progress: bool,
) -> TextEmbeddingRun:
    try:
        try:
            # the model that answers is part of the key; one GET /models tells it (as for extraction)
            served = (await client.server_info()).served_model
        except KgEnhanceError as e:
            raise type(e)(f"embed_text: {e}") from e
        with_text = [(s, t) for s, t in texts if t.strip()]
        run = TextEmbeddingRun(
            kind=kind,
            ids=[s for s, _ in with_text],
            vectors=np.zeros((0, 0), np.float32),
            endpoint=client.endpoint,
            model=served,
            dim=0,
            empty=[s for s, t in texts if not t.strip()],
        )
        keys = [
            cache_key(version=KEY_VERSION, endpoint=client.endpoint, model=served, text=t)
            for _, t in with_text
        ]
        found = cache.get_vectors(sorted(set(keys)))
        dim = cfg.dim
        where = f"text embedding cache {cache.path} (model {served!r})"
        for key, subject in zip(keys, run.ids, strict=True):
            if key in found:
                _, dim = _check([found[key].tolist()], [subject], dim=dim, where=where, kind=kind)
        run.cache_hits = sum(1 for k in keys if k in found)
        pending: dict[str, tuple[str, str, str]] = {}
        for key, (subject, text) in zip(keys, with_text, strict=True):
            if key not in found and key not in pending:
                pending[key] = (key, subject, text)
        if pending:
            dim = await _embed_pending(
                list(pending.values()), client, cache, cfg, run, found, dim=dim, progress=progress
            )
        run.dim = int(dim or 0)
        run.vectors = (
            np.stack([found[k] for k in keys]).astype(np.float32)
            if keys
            else np.zeros((0, run.dim), np.float32)
        )
        return run
    finally:
        await client.close()


def embed_texts(
    texts: Sequence[tuple[str, str]],
    cfg: TextEmbeddingConfig,
    llm: LLMConfig,
    *,
    kind: str = "item",
    cache: TextEmbeddingCache | None = None,
    progress: bool = False,
) -> TextEmbeddingRun:
    """Vectors for ``(subject id, text)`` pairs: cached ones from ``cache``, the rest from the endpoint.

    Subjects with empty text get no vector (listed in ``empty``). Identical texts are sent once.
    The endpoint and key come from ``text_embeddings`` (else ``llm``); timeouts, retries and the
    per-call deadline from ``llm``.
    """
    started = time.perf_counter()
    base_url, key_env = cfg.endpoint(llm)
    client = OpenAICompatibleClient(
        base_url=base_url,
        model=cfg.model,
        api_key_env=key_env,
        timeout_s=llm.timeout_s,
        max_retries=llm.max_retries,
        call_deadline_s=llm.call_deadline_s,
        section="text_embeddings",
    )
    own_cache = cache is None
    if cache is None:  # not `cache or ...`: an empty cache has len() 0
        cache = TextEmbeddingCache(default_text_cache_path())
    try:
        run = asyncio.run(_embed_all(texts, client, cache, cfg, kind=kind, progress=progress))
    finally:
        if own_cache:
            cache.close()
    run.seconds = time.perf_counter() - started
    return run
