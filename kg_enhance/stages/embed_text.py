"""Embed text: each item's (and optionally each user's) text as an LLM embedding.

Between ``load`` (the Item and User nodes exist) and ``embed``: the catalog's text
fields go to ``/v1/embeddings`` (:mod:`kg_enhance.extract.text_embeddings`, cached by
content hash), the vectors are saved under ``text_embeddings/`` in the run folder,
set as ``text_embedding`` on the namespace's Item (and User) nodes with the
``item_text_embedding`` (``user_text_embedding``) vector index, exported by the export
stage and ``export_embeddings``, and fused into recommenders that declare ``text: true``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from kg_enhance.config.models import JobSpec
from kg_enhance.errors import ConfigError, StageError
from kg_enhance.extract.text_embeddings import TextEmbeddingCache, TextEmbeddingRun, embed_texts, subject_text
from kg_enhance.io.tables import InputIssues, read_items, read_users
from kg_enhance.kge.artifacts import TextEmbeddings, save_text_embeddings
from kg_enhance.stages.base import Stage, StageContext, StageResult


class TextEmbedResult(StageResult):
    """The ``text_embeddings`` section of ``report.json``."""

    model: str
    endpoint: str
    dim: int
    fields: list[str]
    #: per kind (``item``, ``user``): subjects, without_text, cache_hits, embedded, requests, prompt_tokens, seconds
    kinds: dict[str, dict[str, Any]]
    written_back: dict[str, int]
    vector_indexes: list[str]
    artifact: str
    run_id: str


def item_fields(job: JobSpec) -> list[str]:
    """The catalog columns embedded: ``text_embeddings.fields``, else the title column plus the text fields."""
    src = job.source.items
    if job.text_embeddings.fields is not None:
        return list(job.text_embeddings.fields)
    return list(dict.fromkeys([*([src.title_column] if src.title_column else []), *src.text_fields]))


def item_texts(job: JobSpec, *, issues: InputIssues | None = None) -> list[tuple[str, str]]:
    """``(item id, text)`` in catalog order; a field that is not a catalog column is a :class:`ConfigError`."""
    items, df = read_items(job, issues=issues)
    fields = item_fields(job)
    missing = [f for f in fields if f not in df.columns]
    if missing:
        raise ConfigError(
            f"text_embeddings.fields: {', '.join(missing)} not in the columns of {job.source.items.path} "
            f"({', '.join(map(str, df.columns))})"
        )
    cut = job.text_embeddings.max_chars
    return [
        (item.item_id, subject_text([(f, item.properties.get(f)) for f in fields], max_chars=cut))
        for item in items
    ]


def user_texts(job: JobSpec, *, issues: InputIssues | None = None) -> list[tuple[str, str]]:
    cut = job.text_embeddings.max_chars
    return [
        (user.item_id, subject_text(list(user.text.items()), max_chars=cut))
        for user in read_users(job, issues=issues)
    ]


def compute_text_embeddings(
    job: JobSpec, *, progress: bool = False, cache: TextEmbeddingCache | None = None
) -> tuple[TextEmbeddings, dict[str, TextEmbeddingRun]]:
    """The job's text vectors (cached ones from the text-embedding cache, the rest from the endpoint)."""
    cfg = job.text_embeddings
    runs = {
        "item": embed_texts(
            item_texts(job, issues=InputIssues.collector(log=False)),
            cfg,
            job.llm,
            kind="item",
            cache=cache,
            progress=progress,
        )
    }
    if cfg.users:
        runs["user"] = embed_texts(
            user_texts(job, issues=InputIssues.collector(log=False)),
            cfg,
            job.llm,
            kind="user",
            cache=cache,
            progress=progress,
        )
    items = runs["item"]
    users = runs.get("user")
    text = TextEmbeddings(
        item_ids=items.ids,
        item_vectors=items.vectors,
        user_ids=users.ids if users else [],
        user_vectors=users.vectors if users else np.zeros((0, items.dim), np.float32),
        metadata={
            "model": items.model,
            "endpoint": items.endpoint,
            "fields": item_fields(job),
            "max_chars": cfg.max_chars,
        },
    )
    return text, runs


def _rows(ids: list[str], vectors: np.ndarray) -> Iterator[dict[str, Any]]:
    for subject, vec in zip(ids, vectors, strict=True):
        yield {"id": subject, "vector": vec.tolist()}


class EmbedTextStage(Stage[TextEmbedResult]):
    name = "embed_text"
    section = "text_embeddings"

    def run(self, ctx: StageContext) -> TextEmbedResult:
        if not ctx.job.text_embeddings.enabled:
            raise StageError(
                "embed_text: text_embeddings.enabled is false in the job; set it to true to run this stage"
            )
        text, runs = compute_text_embeddings(ctx.job, progress=ctx.progress)
        text.metadata["run_id"] = ctx.run_id
        folder = save_text_embeddings(text, ctx.run.text_embeddings)
        store, model = ctx.store, text.metadata["model"]
        started = time.perf_counter()
        written = {
            "item": store.write_text_embeddings(
                "item", _rows(text.item_ids, text.item_vectors), model=model, run_id=ctx.run_id
            )
        }
        dims = {"item": text.dim} if text.item_ids else {}
        if "user" in runs:
            written["user"] = store.write_text_embeddings(
                "user",
                _rows(text.user_ids, text.user_vectors),
                model=model,
                run_id=ctx.run_id,
            )
            if text.user_ids:
                dims["user"] = text.dim
        indexes = store.finish_text_embeddings(dimensions=dims, run_id=ctx.run_id)
        kinds = {kind: r.summary() for kind, r in runs.items()}
        kinds["item"]["write_seconds"] = round(time.perf_counter() - started, 3)
        return TextEmbedResult(
            model=model,
            endpoint=text.metadata["endpoint"],
            dim=text.dim,
            fields=text.metadata["fields"],
            kinds=kinds,
            written_back=written,
            vector_indexes=indexes,
            artifact=str(folder),
            run_id=ctx.run_id,
        )
