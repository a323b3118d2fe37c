"""Embed: train PyKEEN embeddings on the graph's triples and write the vectors back.

Saves a versioned artifact under ``embeddings/`` and sets ``embedding`` on Item and
Entity nodes (with vector indexes) through the :class:`GraphStore`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from kg_enhance.arrays import in_row_order, matching_ids
from kg_enhance.errors import SparseGraphError, StageError
from kg_enhance.graph.fingerprint import graph_fingerprint
from kg_enhance.kge.artifacts import Embeddings, load_embeddings_dir, save_embeddings
from kg_enhance.kge.train import train_kge
from kg_enhance.names import ENTITY, ITEM, split_node_label
from kg_enhance.rec.protocol import stopped_too_early
from kg_enhance.stages.base import Stage, StageContext, StageResult

logger = logging.getLogger(__name__)


class WrittenBack(BaseModel):
    """Vectors written to the graph; a fold-in's carried vectors are already there and are only
    marked as this run's (``unchanged_*``), not sent again."""

    model_config = ConfigDict(extra="forbid")

    item: int
    entity: int
    unchanged_item: int = 0
    unchanged_entity: int = 0
    seconds: float


def _version(emb: Embeddings) -> str:
    """The run whose embed stage wrote ``emb``'s vectors to the graph."""
    return str(emb.metadata.get("run_id") or emb.metadata.get("version") or "")


def _unchanged_labels(emb: Embeddings, previous: Embeddings | None) -> set[str]:
    """Entity labels whose vector equals ``previous``'s bit for bit (a fold-in's carried rows)."""
    if previous is None or previous.entity_vectors.shape[1:] != emb.entity_vectors.shape[1:]:
        return set()
    if not (emb.metadata.get("warm_start") or {}).get("carried"):
        return set()
    rows_now, rows_before = matching_ids(previous.entity_to_id, emb.entity_to_id)
    same = np.all(emb.entity_vectors[rows_now] == previous.entity_vectors[rows_before], axis=1)
    return set(in_row_order(emb.entity_to_id)[rows_now[same]])


class ValidationPoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    epoch: int
    mrr: float


class EmbedResult(StageResult):
    """The ``kge`` section of ``report.json``: metrics plus the artifact's metadata."""

    metrics: dict[str, float | None]
    model: str
    dim: int
    seed: int
    device: str
    epochs_run: int
    final_loss: float | None
    #: the training loss of every epoch (PyKEEN's ``result.losses``)
    losses: list[float] = []
    train_seconds: float
    triples: int
    train_triples: int
    test_triples: int
    entities: int
    relations: int
    triples_fingerprint: str
    graph_fingerprint: str
    pykeen_version: str
    #: how the metrics were computed: filtering, ranks, sample sizes, evaluation batch and slice; or, when
    #: nothing was held out (``kge.test_ratio: 0``, or a KG too sparse to split), "none: <why>" and null metrics
    evaluation: str
    #: the training batch used: kge.batch_size, or larger to keep within kge.max_batches_per_epoch steps
    train_batch_size: int | None = None
    #: training triples x epochs / training seconds without the validation evaluations
    train_triples_per_second: float | None = None
    #: seconds spent evaluating (validation rounds and the final test ranking)
    eval_seconds: float | None = None
    automatic_memory_optimization: bool | None = None
    #: "SparseAdam" (sparse gradients: a step updates its batch's rows) or "Adam" (dense: every row)
    optimizer: str | None = None
    #: early stopping: one entry per validation evaluation (every kge.eval_every epochs and the last)
    validation_evaluations: int = 0
    validation_history: list[ValidationPoint] = []
    best_epoch: int | None = None
    stopped_early: bool = False
    #: the best validation result came at the last epoch allowed (more epochs would likely help);
    #: None when nothing was held out
    under_trained: bool | None = None
    #: the best validation result came within the first 3 evaluations (epoch <= 3 x kge.eval_every) of a
    #: KGE trained from scratch: it stopped while still warming up; None when nothing was held out,
    #: False when warm-started (it began from trained vectors)
    stopped_too_early: bool | None = None
    #: null when trained from scratch (first run, ``kge.warm_start: false`` or ``run --full``); else the
    #: artifact version it started from, entities and relations carried over, the epochs allowed
    warm_start: dict[str, Any] | None = None
    #: how triples were held out: kind (hash or random), seed, test_ratio; hash: triples forced into training
    split: dict[str, Any] | None = None
    run_id: str
    artifact: str
    written_back: WrittenBack
    vector_indexes: list[str]


class EmbedStage(Stage[EmbedResult]):
    name = "embed"
    section = "kge"

    def run(self, ctx: StageContext) -> EmbedResult:
        cfg, store = ctx.job.kge, ctx.store
        fingerprint = graph_fingerprint(store).hash
        triples = store.item_fact_triples(cfg.sources)
        if cfg.relations == "collaborative":
            interactions = ctx.job.source.interactions
            triples += store.interaction_triples(interactions.positive_threshold if interactions else None)
            triples += store.user_fact_triples(cfg.sources)
        previous = None
        if cfg.warm_start and not ctx.full:
            try:
                previous = load_embeddings_dir(ctx.run.embeddings)
            except StageError:  # none yet, or unreadable: train from scratch
                previous = None
        try:
            emb = train_kge(
                triples, cfg, progress=ctx.progress, graph_fingerprint=fingerprint, warm_from=previous
            )
        except SparseGraphError:
            # the vectors are still wanted; only held-out metrics are impossible: report them as null
            n = len(set(triples))
            reason = (
                f"none: the {n} distinct triples are too sparse to hold out {cfg.test_ratio:.0%} with every "
                "entity still in training, so all of them were trained on and nothing was evaluated"
            )
            logger.warning("embed: %s (metrics are null)", reason.removeprefix("none: "))
            emb = train_kge(
                triples,
                cfg.model_copy(update={"test_ratio": 0.0}),
                progress=ctx.progress,
                graph_fingerprint=fingerprint,
                warm_from=previous,
            )
            emb.metadata["evaluation"] = reason
        emb.metadata["run_id"] = ctx.run_id
        folder = save_embeddings(emb, ctx.run.embeddings, version=ctx.run_id)

        started = time.perf_counter()
        unchanged = _unchanged_labels(emb, previous)
        rows: dict[str, list[dict[str, Any]]] = {ITEM: [], ENTITY: []}
        kept: dict[str, list[tuple[str, int]]] = {ITEM: [], ENTITY: []}
        for label, idx in emb.entity_to_id.items():
            kind, anchor = split_node_label(label)
            if kind == ENTITY and not store.owns_entities:
                continue  # shared entities: other jobs' vectors live on them too; ours stay in the artifact
            if kind not in rows:
                continue
            if label in unchanged:
                kept[kind].append((anchor, idx))
            else:
                rows[kind].append({"id": anchor, "vector": emb.entity_vectors[idx].tolist()})
        stamped: dict[str, int] = {ITEM: 0, ENTITY: 0}
        for kind, pairs in kept.items():
            if not pairs or previous is None:
                continue
            stamped[kind] = store.stamp_embeddings(
                kind, [a for a, _ in pairs], previous_run=_version(previous), run_id=ctx.run_id
            )
            if stamped[kind] < len(pairs):  # some node lost the previous vector: send them all again
                rows[kind] += [{"id": a, "vector": emb.entity_vectors[i].tolist()} for a, i in pairs]
                stamped[kind] = 0
        written = {
            kind: store.write_embeddings(kind, kind_rows, model=cfg.model, run_id=ctx.run_id)
            for kind, kind_rows in rows.items()
        }
        indexes = store.finish_embeddings(dimensions=emb.dim, run_id=ctx.run_id)
        best_epoch = emb.metadata.get("best_epoch")
        early = (
            None
            if best_epoch is None
            else emb.metadata.get("warm_start") is None and stopped_too_early(int(best_epoch), cfg.eval_every)
        )
        return EmbedResult(
            **{k: v for k, v in emb.metadata.items() if k not in ("metrics", "stopped_too_early")},
            stopped_too_early=early,
            metrics=emb.metrics,
            artifact=str(folder),
            written_back=WrittenBack(
                item=written[ITEM],
                entity=written[ENTITY],
                unchanged_item=stamped[ITEM],
                unchanged_entity=stamped[ENTITY],
                seconds=round(time.perf_counter() - started, 3),
            ),
            vector_indexes=indexes,
        )
