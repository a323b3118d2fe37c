"""Recommend: train the job's recommenders on one split, evaluate them, serve the best.

Reads interactions (files or the graph), the KG triples and the embed stage's
vectors; writes model weights, ``recommend/metrics.json``, ``recommend/test_per_user.parquet``, ``recommend/topk.parquet``
and ``RECOMMENDED`` edges with KG-path explanations.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, model_serializer

from kg_enhance.config.models import JobSpec
from kg_enhance.errors import StageError
from kg_enhance.graph.store import GraphStore
from kg_enhance.io.files import write_json, write_with
from kg_enhance.io.tables import Catalog, InputIssues, read_catalog, read_interactions
from kg_enhance.kge.artifacts import load_embeddings_dir, load_text_embeddings
from kg_enhance.rec.data import Split, make_split, pair_keys, positives
from kg_enhance.rec.evaluate import Slices
from kg_enhance.rec.kg import KGInputs, build_kg_inputs
from kg_enhance.rec.models import rec_model_resolver
from kg_enhance.rec.protocol import EARLY_EVALUATIONS, stopped_too_early, under_trained
from kg_enhance.rec.serve import PathExplainer, add_names, topk_rows
from kg_enhance.rec.text import TextInputs, build_text_inputs
from kg_enhance.rec.train import TrainedModel, WarmStart, tail_slots_of, top_k, train_model
from kg_enhance.rundir import RunDir
from kg_enhance.stages.base import Stage, StageContext, StageResult

logger = logging.getLogger(__name__)


class SplitSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str
    #: the split's seed (``recommender.split_seed``, or ``recommender.seed`` when that is null)
    seed: int
    #: the recommenders' training seed (``recommender.seed``)
    training_seed: int
    users: int
    items: int
    train: int
    valid: int
    test: int
    long_tail_items: int
    few_interaction_users: int


class ModelReport(BaseModel):
    """One trained model: validation and test metrics, slices, epochs."""

    model_config = ConfigDict(extra="forbid")

    valid: dict[str, float]
    test: dict[str, float]
    #: per slice: its metrics and a "definition" sentence
    slices: dict[str, dict[str, float | int | str]]
    epochs: int
    best_epoch: int
    #: Adam's learning rate: the model entry's, else recommender.learning_rate, else the model's default
    learning_rate: float | None = None
    train_seconds: float
    #: the final evaluation of the best weights (validation over all its users, test, slices): full
    #: rankings of users x items, outside ``train_seconds``
    eval_seconds: float = 0.0
    #: per evaluated epoch: ``epoch``, training ``loss``, validation ``ndcg@K``, ``seconds`` since the start
    history: list[dict[str, float]] = []
    #: the best validation epoch was the last allowed one: train longer before reading anything into it
    under_trained: bool = False
    #: the best validation NDCG came within the first EARLY_EVALUATIONS (3) evaluations of a model trained from
    #: scratch: it stopped while still warming up (or the budget allowed no more), so it is not a result.
    #: A warm-started model began from trained weights and is never flagged.
    stopped_too_early: bool = False
    #: null when trained from scratch; else the run whose weights it started from and the rows carried
    warm_start: dict[str, Any] | None = None
    #: users ranked in each early-stopping evaluation (``rounds``, a seeded sample when
    #: ``recommender.valid_max_users`` is below ``all``) and in the reported metrics (``all``)
    validation_users: dict[str, int] | None = None
    #: the ``*_knn`` models only: the neighbourhood weights chosen on validation after training
    #: (``chosen``, their validation NDCG ``valid``, and every combination ``tried``)
    blend: dict[str, Any] | None = None


class Serving(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topk_rows: int
    recommended_edges: int
    explained_share: float
    write_seconds: float
    table: str


class RecommendResult(StageResult):
    """The ``recommend`` section of ``report.json``; each model's report sits under its own key."""

    split: SplitSummary
    positive_threshold: float | None
    kg_item_coverage: float | None
    kg_entities: int | None
    #: share of the split's items with an LLM text vector (None: no model uses text)
    text_item_coverage: float | None = None
    k: int
    #: the last positions of every list reserved for long-tail items (``recommender.tail_slots``): every
    #: metric, slice and served list here is of lists ranked so; 0 = plain top-K
    tail_slots: int = 0
    device: str
    models: dict[str, ModelReport]
    best_model: str | None
    serving: Serving | None = None
    #: problems counted in the catalog and interaction files read for the split (:class:`kg_enhance.io.tables.InputIssues`)
    input_issues: InputIssues
    #: per model, what its warm start carried over (null: every model trained from scratch)
    warm_start: dict[str, Any] | None = None
    #: wall seconds of the stage's parts: ``inputs`` (interactions, catalog, split, slices, KG and text
    #: inputs), ``models`` (every model's training, final evaluation and saved weights), ``top_k`` (the
    #: best model's served lists), ``explain`` (KG paths, names and the
    #: ``topk.parquet`` table), ``write`` (the lists into the graph)
    seconds_by_part: dict[str, float] = {}

    @model_serializer(mode="wrap")
    def _flatten_models(self, handler: Any) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        models = data.pop("models")
        serving = data.pop("serving")
        best = data.pop("best_model")
        data.update(models)
        data["best_model"] = best
        if serving is not None:
            data["serving"] = serving
        return data


def recommend_split(
    job: JobSpec, store: GraphStore | None = None, *, issues: InputIssues | None = None
) -> Split:
    """The job's implicit-feedback split (deterministic by ``recommender.split_seed``, by default
    ``recommender.seed``).

    Interactions come from the job's files, or with ``recommender.interactions: neo4j``
    from the graph's ``INTERACTED`` edges (``store`` is then required). Problems in the
    files are counted into ``issues`` (see :mod:`kg_enhance.io.tables`).
    """
    return _split_and_catalog(job, store, issues=issues)[0]


def _split_and_catalog(
    job: JobSpec, store: GraphStore | None = None, *, issues: InputIssues | None = None
) -> tuple[Split, Catalog]:
    """:func:`recommend_split` and the catalog it read (the stage takes its titles from it)."""
    cfg = job.recommender
    catalog_read = read_catalog(job, issues=issues)
    catalog = [i.item_id for i in catalog_read.items]
    if cfg.interactions == "neo4j":
        if store is None:
            raise StageError("recommend: recommender.interactions is 'neo4j' but no graph store was given")
        rows = store.interactions()
        if not rows:
            raise StageError(
                "recommend: no INTERACTED edges in the graph; run the load stage or use interactions: files"
            )
        df = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "ts"])
        df["rating"] = pd.to_numeric(df["rating"], errors="coerce")
        df["ts"] = pd.to_numeric(df["ts"], errors="coerce")
    else:
        df = read_interactions(job, catalog=catalog_read, issues=issues)
    df = df[df["item_id"].isin(set(catalog))]
    interactions = job.source.interactions
    pos = positives(df, interactions.positive_threshold if interactions else None)
    return make_split(pos, kind=cfg.split, seed=cfg.effective_split_seed, item_ids=catalog), catalog_read


def _save_state(model: torch.nn.Module, path: Path) -> None:
    state = model.state_dict()
    write_with(path, lambda tmp: torch.save(state, tmp))


def _previous(run: RunDir, key: str) -> WarmStart | None:
    """The model's weights and row ids from the last recommend run, or None (none yet, or unreadable)."""
    weights, ids_path = run.model_weights(key), run.model_ids(key)
    if not weights.exists() or not ids_path.exists():
        return None
    try:
        ids = json.loads(ids_path.read_text(encoding="utf-8"))
        state = torch.load(weights, weights_only=True, map_location="cpu")
    except (OSError, ValueError, RuntimeError, EOFError):
        return None
    return WarmStart(
        state=dict(state),
        user_ids=list(ids.get("user_ids") or []),
        item_ids=list(ids.get("item_ids") or []),
        entity_keys=list(ids.get("entity_keys") or []),
        source=ids.get("run_id"),
        relation_keys=ids.get("relation_keys"),
    )


@dataclass
class LeakCheck:
    """Which of a split's validation and test pairs were training pairs of the run a warm start
    would start from (:func:`warm_start_leak`)."""

    #: why the warm start must be refused, or None
    reason: str | None = None
    #: masks over ``split.valid`` and ``split.test`` of the pairs the previous run trained on
    valid: np.ndarray | None = None
    test: np.ndarray | None = None

    @property
    def leaked(self) -> int:
        return (
            int(self.valid.sum() + self.test.sum()) if self.valid is not None and self.test is not None else 0
        )


def warm_start_leak(run: RunDir, split: Split, kind: str) -> LeakCheck:
    """Whether warm-starting on ``split`` would evaluate on training data.

    A warm-started model carries what it learned from the previous run's training pairs; if any
    of them is a validation or test pair now, its metrics are inflated (measured: +15% to +130%
    NDCG@20 after a 1% refresh with ``user_random``). Compared by ids against
    ``recommend/train_pairs.parquet`` of the previous run. With ``user_hash`` the few such pairs
    (a user who reaches ``min_user_positives`` and so gets held-out pairs for the first time) can be
    kept in training instead (:func:`keep_in_training`); any other split is refused.
    """
    path = run.train_pairs
    if not path.exists():
        return LeakCheck()
    try:
        before = pd.read_parquet(path)
        trained = pair_keys(before["user_id"], before["item_id"])
    except (OSError, ValueError, KeyError):
        return LeakCheck(
            "the previous run's training pairs (recommend/train_pairs.parquet) are unreadable; trained from scratch"
        )
    users = np.asarray(split.user_ids, dtype=object)
    items = np.asarray(split.item_ids, dtype=object)
    masks = [
        pair_keys(users[pairs[:, 0]], items[pairs[:, 1]]).isin(trained).to_numpy()
        for pairs in (split.valid, split.test)
    ]
    check = LeakCheck(valid=masks[0], test=masks[1])
    if check.leaked and kind != "user_hash":
        held = len(split.valid) + len(split.test)
        check.reason = (
            f"{check.leaked:,} of this split's {held:,} validation and test interactions were training "
            f"interactions of the run it would start from (the {kind} split changed with the data), so its "
            "metrics would be inflated; trained from scratch. recommender.split: user_hash keeps the split "
            "stable for warm starts"
        )
    return check


def keep_in_training(split: Split, check: LeakCheck) -> Split:
    """``split`` with the held-out pairs the previous run trained on moved to training."""
    if not check.leaked or check.valid is None or check.test is None:
        return split
    return Split(
        user_ids=split.user_ids,
        item_ids=split.item_ids,
        train=np.concatenate([split.train, split.valid[check.valid], split.test[check.test]]),
        valid=split.valid[~check.valid],
        test=split.test[~check.test],
    )


def _save_train_pairs(run: RunDir, split: Split) -> None:
    users = np.asarray(split.user_ids, dtype=object)[split.train[:, 0]]
    items = np.asarray(split.item_ids, dtype=object)[split.train[:, 1]]
    frame = pd.DataFrame({"user_id": users.astype(str), "item_id": items.astype(str)})
    write_with(run.train_pairs, lambda tmp: frame.to_parquet(tmp, index=False))


def _test_per_user(trained: TrainedModel, split: Split, *, k: int, run_id: str) -> pd.DataFrame:
    """One row per test user of ``trained``: user id, model, run, NDCG@K and Recall@K."""
    rows = trained.test_per_user
    users = np.asarray(split.user_ids, dtype=object)[rows["users"].astype(np.int64)]
    return pd.DataFrame(
        {
            "user_id": users.astype(str),
            "model": trained.name,
            "run": run_id,
            f"ndcg@{k}": rows["ndcg"],
            f"recall@{k}": rows["recall"],
        }
    )


def _titles(catalog: Catalog) -> dict[str, str | None]:
    """Item id -> title, from the catalog (stored next to the ids in ``topk.parquet``)."""
    return {i.item_id: i.title for i in catalog.items}


def _rounded(history: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: round(float(v), 6) for k, v in row.items()} for row in history]


def needs_kg(type_name: str) -> bool:
    return bool(rec_model_resolver.lookup(type_name).needs_kg)


class RecommendStage(Stage[RecommendResult]):
    name = "recommend"
    section = "recommend"

    def run(self, ctx: StageContext) -> RecommendResult:
        job, cfg, run, store = ctx.job, ctx.job.recommender, ctx.run, ctx.store
        parts: dict[str, float] = {}
        clock = time.perf_counter()

        def lap(part: str) -> None:
            """Close ``part``: the seconds since the previous part closed (each part is closed once)."""
            nonlocal clock
            now = time.perf_counter()
            parts[part] = round(now - clock, 3)
            clock = now

        issues = InputIssues.collector(strict=ctx.strict)
        split, catalog = _split_and_catalog(job, store, issues=issues)
        warm_starts: dict[str, Any] = {}
        may_warm = cfg.warm_start and not ctx.full
        check = warm_start_leak(run, split, cfg.split) if may_warm else LeakCheck()
        leak = check.reason
        if leak is not None:
            logger.warning("recommend: no warm start: %s", leak)
            warm_starts["refused"] = leak
        elif check.leaked:
            # user_hash: a user newly past min_user_positives gets held-out pairs that were training
            # pairs before; they stay in training (and in the saved train pairs: sticky from now on)
            split = keep_in_training(split, check)
            warm_starts["kept_in_training"] = check.leaked
            logger.info(
                "recommend: %d validation/test pairs were training pairs of the previous run; kept in training",
                check.leaked,
            )
        slices = Slices.from_split(split, head_share=cfg.head_share, few=cfg.few_interactions)
        triples = store.item_fact_triples(job.kge.sources)
        kg: KGInputs | None = None
        if any(needs_kg(m.type) for m in cfg.models):
            kg = build_kg_inputs(load_embeddings_dir(run.root), split, triples)
        text: TextInputs | None = None
        if any(m.text for m in cfg.models):
            text = build_text_inputs(load_text_embeddings(run.root), split)

        lap("inputs")
        run.folder("recommend")
        models: dict[str, ModelReport] = {}
        per_user: list[pd.DataFrame] = []
        best_name, best_score, best_model = None, -1.0, None
        for spec in cfg.models:
            warm = _previous(run, spec.key) if may_warm and leak is None else None
            trained = train_model(
                spec, split, cfg, kg=kg, text=text, progress=ctx.progress, slices=slices, warm=warm
            )
            models[spec.key] = ModelReport(
                **{**trained.report(), "history": _rounded(trained.history)},
                under_trained=under_trained(trained.best_epoch, trained.epochs_allowed),
                stopped_too_early=trained.warm_start is None
                and stopped_too_early(trained.best_epoch, cfg.eval_every, evaluations=EARLY_EVALUATIONS),
                warm_start=trained.warm_start,
            )
            if trained.warm_start is not None:
                warm_starts[spec.key] = trained.warm_start
            per_user.append(_test_per_user(trained, split, k=cfg.k, run_id=ctx.run_id))
            _save_state(trained.model, run.model_weights(spec.key))
            write_json(
                run.model_ids(spec.key),
                {
                    "run_id": ctx.run_id,
                    "user_ids": split.user_ids,
                    "item_ids": split.item_ids,
                    "entity_keys": kg.entity_keys if kg is not None and needs_kg(spec.type) else [],
                    "relation_keys": kg.relation_keys if kg is not None and needs_kg(spec.type) else [],
                },
                indent=None,
            )
            score = trained.valid[f"ndcg@{cfg.k}"]
            if score > best_score:
                best_name, best_score, best_model = spec.key, score, trained.model
        _save_train_pairs(run, split)
        table = pd.concat(per_user, ignore_index=True) if per_user else pd.DataFrame()
        write_with(run.test_per_user, lambda tmp: table.to_parquet(tmp, index=False))
        lap("models")
        serving = None
        if best_model is not None and best_name is not None:
            top_idx, top_scores = top_k(best_model, split, k=cfg.k, tail_slots=tail_slots_of(split, cfg))
            lap("top_k")
            rows = topk_rows(
                split, top_idx, top_scores, PathExplainer(triples), model=best_name, run_id=ctx.run_id
            )
            add_names(
                rows,
                titles=_titles(catalog),
                entity_names={e["key"]: e["name"] for e in store.stream_entity_keys()},
            )
            write_with(run.topk, lambda tmp: pd.DataFrame(rows).to_parquet(tmp, index=False))
            lap("explain")
            written = store.write_recommendations(rows, job=job.name, run_id=ctx.run_id)
            lap("write")
            serving = Serving(
                topk_rows=len(rows),
                recommended_edges=written,
                explained_share=round(sum(1 for r in rows if r["via_items"]) / max(1, len(rows)), 4),
                write_seconds=parts["write"],
                table=str(run.topk),
            )
        interactions = job.source.interactions
        result = RecommendResult(
            split=SplitSummary(
                kind=cfg.split,
                seed=cfg.effective_split_seed,
                training_seed=cfg.seed,
                users=split.n_users,
                items=split.n_items,
                train=int(len(split.train)),
                valid=int(len(split.valid)),
                test=int(len(split.test)),
                long_tail_items=len(slices.tail_items),
                few_interaction_users=len(slices.few_users),
            ),
            positive_threshold=interactions.positive_threshold if interactions else None,
            kg_item_coverage=kg.coverage if kg else None,
            kg_entities=len(kg.entity_keys) if kg else None,
            text_item_coverage=round(text.coverage, 4) if text else None,
            k=cfg.k,
            tail_slots=cfg.tail_slots,
            device=cfg.device,
            models=models,
            best_model=best_name,
            serving=serving,
            input_issues=issues,
            warm_start=warm_starts or None,
            seconds_by_part=parts,
        )
        write_json(run.metrics, result.to_report())
        return result
