"""Train PyKEEN embeddings on triples read back from the graph store.

Entity and relation ids are assigned in sorted label order, so an unchanged graph
gives every entity the same row on every run. Labels carry their node kind:
``item:<item_id>``, ``entity:<Type>:<key>``, ``user:<user_id>``.

The pieces ``pykeen.pipeline`` would build (model, training loop, early stopper,
evaluator) are built here so that evaluation stays bounded on large graphs:

- PyKEEN's rank-based evaluator, filtered, with an evaluation batch and score slice
  computed from ``kge.eval_memory_mb`` (:func:`evaluation_batch_and_slice`) instead of a
  fixed batch (or, after the first early-stopping round, PyKEEN's whole-set batch);
- at most ``kge.valid_max_triples`` validation triples per early-stopping round and
  ``kge.eval_max_triples`` test triples, samples fixed by seed, while every known triple
  is still filtered;
- early stopping on validation every ``kge.eval_every`` epochs and at the last one; the
  best validation epoch's weights are kept, and the test split is ranked once, at the end;
- on CPU every evaluation runs on one torch thread with the C heap kept from fragmenting
  (:func:`cpu_evaluation`): without that, the budgeted batches still raised the process's
  RSS by ~1 GB per evaluation on the MovieLens KG.
"""

from __future__ import annotations

import ctypes
import gc
import hashlib
import logging
import math
import platform
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pykeen.losses import loss_resolver
from pykeen.models import Model, model_resolver
from pykeen.stoppers import EarlyStopper
from pykeen.training import LCWATrainingLoop, SLCWATrainingLoop, TrainingLoop
from pykeen.training.callbacks import TrainingCallback
from pykeen.triples import CoreTriplesFactory, TriplesFactory
from pykeen.utils import set_random_seed

from kg_enhance.arrays import freeze_rows, matching_ids
from kg_enhance.config import defaults as D
from kg_enhance.config.models import KGEConfig
from kg_enhance.errors import SparseGraphError, StageError
from kg_enhance.kge.artifacts import Embeddings
from kg_enhance.kge.ranking import IndexedRankBasedEvaluator, scoring_path
from kg_enhance.kge.split import TEST, TRAIN, VALID, hash_split
from kg_enhance.progress import Progress, use_bars

logger = logging.getLogger(__name__)

Triple = tuple[str, str, str]

#: the early-stopping metric (PyKEEN's name for MRR)
STOPPING_METRIC = "inverse_harmonic_mean_rank"
METRIC_KEYS = (
    ("mrr", "inverse_harmonic_mean_rank"),
    ("hits@1", "hits_at_1"),
    ("hits@3", "hits_at_3"),
    ("hits@10", "hits_at_10"),
)

#: bytes held per evaluated triple and candidate entity besides the interaction tensor: the
#: float score row, its slices before they are joined, and the rank comparisons' masks
SCORE_BYTES_PER_ENTITY = 16
#: bytes per evaluated triple and known triple: PyKEEN's three boolean filter masks
#: (same relation, same other entity, both) are batch x known-triples wide
FILTER_BYTES_PER_TRIPLE = 3
#: on CPU an interaction chunk (batch x slice x width floats) larger than this runs slower, not
#: faster: measured on the 17k-entity MovieLens KG, TransE dim 64, chunks of 1-16 MiB took
#: 1.4-1.5 s of CPU (one thread) per 300 triples, 64 MiB 2.3 s, whole 17k-entity rows 2.5 s
CPU_CHUNK_BYTES = 16 * 2**20
#: more triples per evaluation batch gain nothing measurable (the interaction dominates)
MAX_EVAL_BATCH = 256
#: glibc's ``mallopt`` parameter number of ``M_MMAP_THRESHOLD`` (malloc.h)
_M_MMAP_THRESHOLD = -3
#: during a CPU evaluation, every C allocation of at least this many bytes gets its own mapping,
#: returned to the system when freed (see :func:`cpu_evaluation`)
EVAL_MMAP_THRESHOLD = 1 << 20
#: afterwards: glibc's ``DEFAULT_MMAP_THRESHOLD_MAX`` on 64-bit, where its own sliding
#: threshold ends up once a large block has been freed (it cannot be switched back to sliding)
AFTER_EVAL_MMAP_THRESHOLD = 32 << 20


@dataclass(frozen=True)
class EvaluationPlan:
    """How one evaluation batch is scored: ``batch_size`` triples, ``slice_size`` candidate entities at a time."""

    batch_size: int
    slice_size: int
    num_entities: int
    floats_per_entity: int
    budget_bytes: int

    @property
    def sliced(self) -> bool:
        return self.slice_size < self.num_entities

    @property
    def estimated_bytes(self) -> int:
        """Working memory of one batch under the model of :func:`evaluation_batch_and_slice` (known triples excluded)."""
        return self.batch_size * (
            self.slice_size * self.floats_per_entity * 4 + self.num_entities * SCORE_BYTES_PER_ENTITY
        )


def evaluation_batch_and_slice(
    num_entities: int,
    floats_per_entity: int,
    budget_bytes: int,
    *,
    num_filter_triples: int = 0,
    cpu: bool = True,
    max_batch: int = MAX_EVAL_BATCH,
) -> EvaluationPlan:
    """The evaluation batch and slice whose working memory fits ``budget_bytes``.

    Half the budget goes to what is as wide as the entity set or the known triples, per
    evaluated triple (score row, rank masks, filter masks): it fixes the batch. The other
    half bounds the interaction tensor, ``batch x slice x floats_per_entity x 4`` bytes: it
    fixes the slice (on CPU also capped at :data:`CPU_CHUNK_BYTES`, which is faster). The
    batch never goes below 1: one score row per triple is PyKEEN's floor.
    """
    if num_entities < 1 or floats_per_entity < 1 or budget_bytes < 1:
        raise ValueError("num_entities, floats_per_entity and budget_bytes must be positive")
    half = max(1, budget_bytes // 2)
    row_bytes = num_entities * SCORE_BYTES_PER_ENTITY + num_filter_triples * FILTER_BYTES_PER_TRIPLE
    batch = max(1, min(max_batch, half // row_bytes))
    chunk = min(half, CPU_CHUNK_BYTES) if cpu else half
    slice_size = max(1, min(num_entities, chunk // (batch * floats_per_entity * 4)))
    return EvaluationPlan(
        batch_size=batch,
        slice_size=slice_size,
        num_entities=num_entities,
        floats_per_entity=floats_per_entity,
        budget_bytes=budget_bytes,
    )


def floats_per_entity(model: Model) -> int:
    """Width of one entity's representations in 4-byte floats (complex numbers count twice)."""
    index = torch.zeros(1, dtype=torch.long, device=model.device)
    total = 0
    with torch.no_grad():
        for representation in model.entity_representations:  # type: ignore[union-attr]
            x = representation(indices=index)
            total += x.numel() * x.element_size() // 4
    return max(1, total)


def sample_triples(mapped_triples: torch.Tensor, max_triples: int | None, seed: int) -> torch.Tensor:
    """At most ``max_triples`` rows, drawn without replacement by ``seed``, in their original order."""
    n = int(mapped_triples.shape[0])
    if max_triples is None or n <= max_triples:
        return mapped_triples
    rows = np.sort(np.random.default_rng(seed).choice(n, size=max_triples, replace=False))
    return mapped_triples[torch.as_tensor(rows, dtype=torch.long, device=mapped_triples.device)]


def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def _set_mmap_threshold(libc: ctypes.CDLL | None, size: int) -> bool:
    return libc is not None and bool(libc.mallopt(_M_MMAP_THRESHOLD, size))


@contextmanager
def cpu_evaluation(device: torch.device | str) -> Iterator[None]:
    """Run a PyKEEN evaluation on CPU on one torch thread, large blocks outside the C heap; a no-op elsewhere.

    Written here because neither PyKEEN nor torch has a setting for either (batch and slice
    bound the tensors, not what the C allocator keeps). Measured on the MovieLens KG (17.8k
    entities, TransE 64-d, batch 251 x slice 261, after one training epoch in the same process;
    ``benchmarks/kge_eval_rss.py``, benchmarks/RESULTS.md):

    - memory: every batch allocates and frees many 16-20 MiB blocks (interaction chunks, the
      joined score rows, the filter masks) among small blocks that outlive them. glibc's
      sliding mmap threshold rises to the block size once the first such block is freed, so
      later ones come from the main heap, where they fragment it: at one peak glibc held
      935 MB there with 253 MB in use. RSS rose 0.14-1.2 GB over the training level per
      evaluation (it varies from run to run with the heap's layout). With a fixed 1 MiB
      threshold (``mallopt``; glibc only) each such block is its own mapping, unmapped when
      freed: the rise was 60-77 MB, with no CPU cost we could measure.
    - time: on 2 threads the many small ops spend much of their CPU in OpenMP hand-offs: 11.9
      and 82.5 CPU s for 1,000 and 5,000 test triples against 5.7 and 40.9 on one thread, on
      a shared 2-core machine.

    The same kernels compute the scores; the metrics came out identical to those of the
    multi-threaded evaluation in every comparison (the benchmark, and tests/unit/test_kge.py
    against PyKEEN's unbounded evaluation). The thread count is restored after,
    and the mmap threshold set to :data:`AFTER_EVAL_MMAP_THRESHOLD` (glibc cannot go back to
    its sliding one).
    """
    if torch.device(device).type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    libc = _glibc()
    torch.set_num_threads(1)
    bounded = _set_mmap_threshold(libc, EVAL_MMAP_THRESHOLD)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        if bounded:
            _set_mmap_threshold(libc, AFTER_EVAL_MMAP_THRESHOLD)


def link_prediction_metrics(
    model: Model,
    mapped_triples: torch.Tensor,
    *,
    known_triples: list[torch.Tensor],
    plan: EvaluationPlan,
) -> dict[str, float]:
    """Filtered MRR and Hits@k (both sides, realistic ranks) of ``mapped_triples`` with PyKEEN's evaluator.

    ``known_triples`` are removed from the candidates besides ``mapped_triples`` themselves.
    """
    evaluator = IndexedRankBasedEvaluator(batch_size=plan.batch_size, slice_size=plan.slice_size)
    with cpu_evaluation(model.device):
        result = evaluator.evaluate(
            model=model,
            mapped_triples=mapped_triples,
            additional_filter_triples=known_triples,
            batch_size=plan.batch_size,
            slice_size=plan.slice_size,
            use_tqdm=False,
        )
    return {name: float(result.get_metric(f"both.realistic.{key}")) for name, key in METRIC_KEYS}


@dataclass(eq=False)
class _ValidationStopper(EarlyStopper):
    """PyKEEN's early stopper, also evaluating at the last epoch, recording when and how long it evaluated."""

    #: the last epoch training may run: always evaluated, so the best epoch is known up to the end
    last_epoch: int = 0
    #: seconds spent in validation evaluations
    seconds: float = 0.0
    #: the epochs evaluated, one per entry of ``results``
    epochs: list[int] = field(default_factory=list)

    def should_evaluate(self, epoch: int) -> bool:
        return bool(super().should_evaluate(epoch)) or epoch == self.last_epoch

    def should_stop(self, epoch: int) -> bool:
        started = time.perf_counter()
        try:
            with cpu_evaluation(self.model.device):
                return bool(super().should_stop(epoch))
        finally:
            self.seconds += time.perf_counter() - started
            self.epochs.append(epoch)


def triples_fingerprint(triples: list[Triple]) -> str:
    """Order-independent hash of a triple set: ties embeddings to the graph they came from."""
    digest = hashlib.sha256()
    for h, r, t in sorted(set(triples)):
        digest.update(f"{h}\t{r}\t{t}\n".encode())
    return digest.hexdigest()[:16]


def _quiet_pykeen() -> None:
    """PyKEEN logs at INFO per module; keep it quiet unless the root logger asks for INFO."""
    if logging.getLogger().getEffectiveLevel() <= logging.INFO:
        return
    for name in list(logging.root.manager.loggerDict):
        if name.startswith(("pykeen", "torch_max_mem")):
            logging.getLogger(name).setLevel(logging.WARNING)
    # both warn that automatic memory tuning is "unsafe" on CPU; our batch sizes are explicit
    logging.getLogger("torch_max_mem").setLevel(logging.ERROR)
    logging.getLogger("torch_max_mem.api").setLevel(logging.ERROR)
    logging.getLogger("pykeen.utils").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*pin_memory.*")


def _device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise StageError(
            "embed: kge.device is cuda but torch sees no CUDA device; set kge.device: auto or cpu"
        )
    return name


def _memory_optimization(config: KGEConfig, device: str) -> bool:
    if config.automatic_memory_optimization is not None:
        return config.automatic_memory_optimization
    return device == "cuda" and config.sub_batch_size is None and config.slice_size is None


def training_batch_size(config: KGEConfig, train_triples: int) -> int:
    """``kge.batch_size``, or larger so an epoch takes at most ``kge.max_batches_per_epoch`` steps.

    A dense Adam step updates every embedding row, so an epoch of a fixed batch size costs
    triples x entities: above linear in the graph. A bounded number of steps, each over a
    proportionally larger batch, keeps the epoch linear (PyKEEN has no such option).
    """
    if config.max_batches_per_epoch is None:
        return config.batch_size
    return max(config.batch_size, math.ceil(train_triples / config.max_batches_per_epoch))


def _as_real(array: np.ndarray) -> np.ndarray:
    if np.iscomplexobj(array):
        return np.concatenate([array.real, array.imag], axis=-1).astype(np.float32)
    return array.astype(np.float32).reshape(array.shape[0], -1)


def sparse_updates(config: KGEConfig, model: Model) -> bool:
    """With ``kge.optimizer: sparse_adam``, switch ``model``'s embedding tables to sparse gradients; True if done.

    Dense Adam updates every row of every table on every step, so an epoch costs
    steps x entities: above linear in the graph. With sparse gradients and
    ``torch.optim.SparseAdam`` a step touches only the rows of its batch. It needs slcwa
    training (lcwa scores every entity: a dense gradient) and a model whose only
    trainable parameters are embedding tables (not ConvE, say).
    """
    if config.optimizer != "sparse_adam":
        return False
    tables = [m for m in model.modules() if isinstance(m, torch.nn.Embedding)]
    in_tables = {id(p) for m in tables for p in m.parameters()}
    others = [name for name, p in model.named_parameters() if p.requires_grad and id(p) not in in_tables]
    if not tables or others or config.training_loop != "slcwa":
        raise StageError(
            f"embed: kge.optimizer sparse_adam needs training_loop slcwa and a model whose only parameters are "
            f"embedding tables ({config.model} with {config.training_loop} has "
            f"{', '.join(others[:3]) or 'dense scoring'}); use kge.optimizer: adam"
        )
    for table in tables:
        table.sparse = True
    return True


def _training_loop(
    config: KGEConfig, model: Model, training: CoreTriplesFactory, amo: bool, *, sparse: bool
) -> TrainingLoop[Any]:
    common: dict[str, Any] = {
        "model": model,
        "triples_factory": training,
        "optimizer": "SparseAdam" if sparse else "Adam",
        "optimizer_kwargs": {"lr": config.learning_rate},
        "automatic_memory_optimization": amo,
    }
    if config.training_loop == "lcwa":
        return LCWATrainingLoop(**common)
    return SLCWATrainingLoop(
        negative_sampler=config.negative_sampler,
        negative_sampler_kwargs={"num_negs_per_pos": config.num_negs_per_pos},
        **common,
    )


def _describe(plan: EvaluationPlan, sizes: dict[str, tuple[int, int]], known: int, scoring: str) -> str:
    samples = ", ".join(
        f"{name} {n:,} of {m:,} triples" + (" (seeded sample)" if n < m and "fold-in" not in name else "")
        for name, (n, m) in sizes.items()
    )
    slicing = (
        f"slice {plan.slice_size:,} of {plan.num_entities:,} entities"
        if plan.sliced
        else f"no slicing ({plan.num_entities:,} entities)"
    )
    return (
        f"filtered (test: all {known:,} known train+valid+test triples removed from the candidates; "
        f"validation, for early stopping: train+valid), both sides, realistic ranks; {samples}; "
        f"PyKEEN's RankBasedEvaluator ranks, batch {plan.batch_size}, "
        + (
            "scores from PyKEEN's model.predict, " + slicing
            if scoring == "predict"
            else f"scores as one {scoring}"
        )
        + f", known triples filtered through a sorted index; from a {plan.budget_bytes / 2**20:.0f} MiB budget"
    )


class _ProgressLines(TrainingCallback):
    """Off a terminal, PyKEEN draws no bar: log an epoch line now and then instead (kg_enhance.progress)."""

    def __init__(self, epochs: int) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.progress: Progress[None] = Progress(total=epochs, desc="train KGE", unit="epoch", tty=False)

    def post_epoch(self, epoch: int, epoch_loss: float, **kwargs: Any) -> None:
        self.progress.set_postfix(loss=f"{epoch_loss:.4f}")
        self.progress.update(1)

    def post_train(self, losses: list[float], **kwargs: Any) -> None:
        self.progress.close()


def _representation_weight(representations: Any) -> torch.Tensor | None:
    """The trainable table of a model's first entity or relation representation (PyKEEN's ``Embedding``)."""
    try:
        table = representations[0]._embeddings
    except (AttributeError, IndexError, TypeError):
        return None
    weight = getattr(table, "weight", None)
    return weight if isinstance(weight, torch.Tensor) else None


def _carry(
    weight: torch.Tensor, ids: dict[str, int], old_vectors: np.ndarray, old_ids: dict[str, int]
) -> np.ndarray | None:
    """Copy the rows of labels present in both id maps from the artifact's vectors into ``weight``.

    Returns the rows of ``weight`` that were carried, or None when the widths do not match
    (nothing copied)."""
    new_rows, old_rows = matching_ids(old_ids, ids)
    if not len(new_rows):
        return new_rows
    old = torch.from_numpy(np.ascontiguousarray(old_vectors[old_rows], dtype=np.float32))
    if weight.is_complex():  # stored as [real | imaginary] (see _as_real)
        half = old.shape[1] // 2
        old = torch.complex(old[:, :half], old[:, half:])
    width = int(np.prod(weight.shape[1:]))
    if old.shape[1] != width and not (weight.is_complex() and old.numel() == len(new_rows) * width):
        return None
    with torch.no_grad():
        weight[torch.as_tensor(new_rows, device=weight.device)] = (
            old.reshape(len(new_rows), *weight.shape[1:]).to(weight.dtype).to(weight.device)
        )
    return new_rows


@dataclass
class CarriedRows:
    """What :func:`warm_start_model` carried: per table, a mask of the rows that came from the artifact."""

    entities: np.ndarray
    relations: np.ndarray

    def summary(self) -> dict[str, Any]:
        return {
            "carried": True,
            "entities": int(self.entities.sum()),
            "new_entities": int((~self.entities).sum()),
            "relations": int(self.relations.sum()),
            "new_relations": int((~self.relations).sum()),
        }


def warm_start_model(
    model: Model, previous: Embeddings, entity_to_id: dict[str, int], relation_to_id: dict[str, int]
) -> dict[str, Any]:
    """Start ``model`` (just made, so initialised as PyKEEN does) from ``previous``'s vectors for every
    entity and relation label that still exists; the others keep their fresh initialisation.

    Returns what was carried (``rows``: a :class:`CarriedRows`, left out of reports); ``carried:
    False`` with a ``reason`` when the representations do not match (another model type or width),
    and then the model is left as it was.
    """
    entity_weight = _representation_weight(model.entity_representations)
    relation_weight = _representation_weight(model.relation_representations)
    if entity_weight is None or relation_weight is None:
        return {"carried": False, "reason": f"{type(model).__name__} has no plain embedding tables"}
    before = (entity_weight.detach().clone(), relation_weight.detach().clone())
    entities = _carry(entity_weight, entity_to_id, previous.entity_vectors, previous.entity_to_id)
    relations = _carry(relation_weight, relation_to_id, previous.relation_vectors, previous.relation_to_id)
    if entities is None or relations is None:
        with torch.no_grad():
            entity_weight.copy_(before[0])
            relation_weight.copy_(before[1])
        return {"carried": False, "reason": "the previous vectors have another width"}
    rows = CarriedRows(
        entities=np.isin(np.arange(len(entity_to_id)), entities),
        relations=np.isin(np.arange(len(relation_to_id)), relations),
    )
    return {**rows.summary(), "rows": rows}


def build_model(config: KGEConfig, training: CoreTriplesFactory, device: str = "cpu") -> Model:
    """The job's PyKEEN model over ``training``, initialised as ``pykeen.pipeline`` would (seeded)."""
    set_random_seed(config.seed)  # as pykeen.pipeline does: torch, numpy and random
    model: Model = model_resolver.make(
        config.model,
        triples_factory=training,
        embedding_dim=config.dim,
        loss=loss_resolver.make(config.loss),
        random_seed=config.seed,
    ).to(device)
    return model


def _warm_start_refused(config: KGEConfig, previous: Embeddings | None, held_out: bool) -> str | None:
    """Why carrying ``previous``'s vectors would evaluate on triples they were trained on; None if it would not.

    Carried vectors were trained on the previous run's training triples. Held-out triples are
    safe only with the same hash split (seed and ratio) and its forced training triples kept."""
    if previous is None or not held_out:
        return None
    before = previous.metadata.get("split") or {}
    if config.split != "hash":
        return (
            "kge.split is random: the whole split changes with the graph, so carried vectors would have been "
            "trained on triples now held out; trained from scratch (kge.split: hash keeps the split stable)"
        )
    if (before.get("kind"), before.get("seed"), before.get("test_ratio")) != (
        "hash",
        config.seed,
        config.test_ratio,
    ) or previous.forced_keys is None:
        return (
            f"the previous embeddings were split {before.get('kind') or 'randomly'} (seed {before.get('seed')}, "
            f"test_ratio {before.get('test_ratio')}), this run hash (seed {config.seed}, test_ratio "
            f"{config.test_ratio}): carried vectors may have been trained on triples now held out; trained from scratch"
        )
    return None


def _restore_carried(
    vectors: np.ndarray, to_id: dict[str, int], before: np.ndarray, before_to_id: dict[str, int]
) -> np.ndarray:
    """``vectors`` with every row whose label ``before`` has replaced by ``before``'s row (same shape only)."""
    if before.shape[1:] != vectors.shape[1:] or before.dtype != vectors.dtype:
        return vectors
    rows_now, rows_before = matching_ids(before_to_id, to_id)
    out = vectors.copy()
    out[rows_now] = before[rows_before]
    return out


def touches_new(mapped: torch.Tensor, rows: CarriedRows) -> torch.Tensor:
    """Mask of the mapped triples with a new (not carried) head, relation or tail."""
    new_entities = torch.as_tensor(~rows.entities)
    new_relations = torch.as_tensor(~rows.relations)
    out: torch.Tensor = new_entities[mapped[:, 0]] | new_entities[mapped[:, 2]] | new_relations[mapped[:, 1]]
    return out


def _fold_in(
    model: Model, training: CoreTriplesFactory, rows: CarriedRows
) -> tuple[CoreTriplesFactory, list[torch.utils.hooks.RemovableHandle]]:
    """``kge.warm_start_mode: fold_in``: the training triples that touch a new entity or relation, and
    gradient hooks that keep every carried row where it is."""
    mapped = training.mapped_triples
    touches = touches_new(mapped, rows)
    handles = []
    for representations, carried in (
        (model.entity_representations, rows.entities),
        (model.relation_representations, rows.relations),
    ):
        weight = _representation_weight(representations)
        if weight is not None:
            handles.append(freeze_rows(weight, carried))
    return training.clone_and_exchange_triples(mapped[touches]), handles


def train_kge(
    triples: list[Triple],
    config: KGEConfig,
    *,
    progress: bool = True,
    graph_fingerprint: str | None = None,
    warm_from: Embeddings | None = None,
) -> Embeddings:
    """Split, train with early stopping on validation MRR, evaluate filtered rank metrics on the test split.

    With ``kge.test_ratio: 0`` nothing is held out: training runs every epoch, nothing is
    evaluated and the metrics are ``None`` (a score on training triples is not a result).

    ``warm_from``: an earlier artifact of the same model and dimension: entities and relations
    that still exist start from its vectors (:func:`warm_start_model`) and training runs at
    most ``kge.warm_start_epochs`` of ``kge.epochs``, with the same early stopping.
    """
    _quiet_pykeen()
    unique = sorted(set(triples))
    if len(unique) < 20:
        raise StageError(
            f"embed: only {len(unique)} distinct triples in the graph; load facts first (`kg-enhance run JOB --only load`) "
            "or include interactions with kge.relations: collaborative"
        )
    labeled = np.array(unique, dtype=str)
    entities = sorted({h for h, _, _ in unique} | {t for _, _, t in unique})
    relations = sorted({r for _, r, _ in unique})
    entity_to_id = {e: i for i, e in enumerate(entities)}
    relation_to_id = {r: i for i, r in enumerate(relations)}
    tf = TriplesFactory.from_labeled_triples(
        labeled, entity_to_id=entity_to_id, relation_to_id=relation_to_id
    )
    held_out = config.test_ratio > 0
    split_info: dict[str, Any] = {"kind": config.split, "seed": config.seed, "test_ratio": config.test_ratio}
    refused = _warm_start_refused(config, warm_from, held_out)
    forced_keys: np.ndarray | None = None
    if held_out and config.split == "hash":
        sticky = warm_from.forced_keys if warm_from is not None and refused is None else None
        parts = hash_split(labeled, ratio=config.test_ratio, seed=config.seed, sticky=sticky)
        # row i of ``labeled`` is row i of ``tf.mapped_triples``: the labels are sorted and unique, ids
        # follow label order, and PyKEEN sorts the mapped triples by id
        mapped = tf.mapped_triples
        training, validation, testing = (
            tf.clone_and_exchange_triples(mapped[torch.as_tensor(parts.rows(side))])
            for side in (TRAIN, VALID, TEST)
        )
        if validation.num_triples == 0 or testing.num_triples == 0:
            raise SparseGraphError(
                f"embed: the {len(unique)} triples are too sparse to hold out {config.test_ratio:.0%} for evaluation "
                "with every entity still in training; add facts, or set kge.test_ratio: 0 to train without "
                "held-out metrics"
            )
        forced_keys = parts.forced_keys()
        split_info["forced_to_training"] = int(parts.forced.sum())
    elif held_out:
        try:
            training, validation, testing = tf.split(
                [1.0 - 2 * config.test_ratio, config.test_ratio, config.test_ratio], random_state=config.seed
            )
        except ValueError as e:  # PyKEEN keeps every entity in training; a very sparse KG cannot be split
            raise SparseGraphError(
                f"embed: the {len(unique)} triples are too sparse to hold out {config.test_ratio:.0%} for evaluation "
                f"with every entity still in training ({str(e).splitlines()[0][:120]}); "
                "add facts, or set kge.test_ratio: 0 to train without held-out metrics"
            ) from e
    else:
        training, validation, testing = tf, None, None
    device = _device(config.device)
    amo = _memory_optimization(config, device)

    model = build_model(config, training, device)
    epochs = config.epochs
    warm: dict[str, Any] | None = None
    rows: CarriedRows | None = None
    if warm_from is not None:
        meta = warm_from.metadata
        if refused is not None:
            warm = {"carried": False, "reason": refused}
        else:
            warm = warm_start_model(model, warm_from, entity_to_id, relation_to_id)
            rows = warm.pop("rows", None)
        warm["from"] = meta.get("version") or meta.get("run_id")
        if warm["carried"]:
            epochs = max(1, math.ceil(config.epochs * config.warm_start_epochs))
            warm["mode"] = config.warm_start_mode
        warm["epochs_allowed"] = epochs
        if warm["carried"]:
            # PyKEEN re-initialises every parameter when training starts (unless it continues a run of
            # its own); keep the carried vectors, applying only the model's constraints
            def keep_carried() -> Model:
                model.post_parameter_update()
                return model

            model.reset_parameters_ = keep_carried  # type: ignore[method-assign]
    fit_on: CoreTriplesFactory = training
    frozen: list[torch.utils.hooks.RemovableHandle] = []
    folding = rows is not None and warm is not None and config.warm_start_mode == "fold_in"
    valid_rows = validation.mapped_triples if validation is not None else None
    test_cap = config.eval_max_triples
    if folding and rows is not None and warm is not None:
        fit_on, frozen = _fold_in(model, training, rows)
        warm["fold_in_triples"] = int(fit_on.num_triples)
        if fit_on.num_triples == 0:
            epochs = 0  # nothing new to learn: the carried vectors are the model
            warm["epochs_allowed"] = 0
        if valid_rows is not None:
            # only a triple with a new entity or relation can change its score while carried rows are
            # fixed (a new entity also joins every ranking as a candidate, which the test ranking covers)
            valid_rows = valid_rows[touches_new(valid_rows, rows)]
            warm["fold_in_validation_triples"] = int(valid_rows.shape[0])
        if config.fold_in_eval_max_triples is not None:
            test_cap = config.fold_in_eval_max_triples
    sparse = sparse_updates(config, model)
    loop = _training_loop(config, model, fit_on, amo, sparse=sparse)
    plan = evaluation_batch_and_slice(
        num_entities=model.num_entities,
        floats_per_entity=floats_per_entity(model),
        budget_bytes=config.eval_memory_mb * 2**20,
        cpu=device == "cpu",
    )

    stopper: _ValidationStopper | None = None
    metrics: dict[str, float | None] = {name: None for name, _ in METRIC_KEYS}
    eval_seconds = 0.0
    with tempfile.TemporaryDirectory(prefix="kg-enhance-kge-") as tmp:
        if validation is not None and valid_rows is not None and valid_rows.shape[0] and epochs > 0:
            valid_sample = sample_triples(valid_rows, config.valid_max_triples, config.seed)
            stopper = _ValidationStopper(
                model=model,
                evaluator=IndexedRankBasedEvaluator(batch_size=plan.batch_size, slice_size=plan.slice_size),
                # the stopper filters these besides the ranked triples: all of train and validation
                training_triples_factory=training.clone_and_exchange_triples(
                    torch.cat([training.mapped_triples, validation.mapped_triples])
                ),
                evaluation_triples_factory=validation.clone_and_exchange_triples(valid_sample),
                evaluation_batch_size=plan.batch_size,
                evaluation_slice_size=plan.slice_size,
                frequency=config.eval_every,
                patience=config.patience,
                metric=STOPPING_METRIC,
                relative_delta=D.KGE_RELATIVE_DELTA,
                best_model_path=Path(tmp) / "best-model.pt",
                last_epoch=epochs,
            )
        batch_size = training_batch_size(config, fit_on.num_triples)
        started = time.perf_counter()
        # PyKEEN runs gc.collect() after every epoch; over a loaded process's objects that took
        # 0.5 s an epoch here. Objects that exist before training are left out of those scans.
        gc.freeze()
        try:
            losses = (
                list(
                    loop.train(
                        triples_factory=fit_on,
                        num_epochs=epochs,
                        batch_size=batch_size,
                        sub_batch_size=config.sub_batch_size,
                        slice_size=config.slice_size,
                        stopper=stopper,
                        use_tqdm=use_bars(progress),  # bars on a terminal only (kg_enhance.progress)
                        use_tqdm_batch=False,
                        callbacks=[_ProgressLines(epochs)] if progress and not use_bars(progress) else None,
                        clear_optimizer=True,
                    )
                    or []
                )
                if epochs > 0
                else []
            )
        finally:
            gc.unfreeze()
            for handle in frozen:
                handle.remove()
        train_seconds = time.perf_counter() - started
        if stopper is not None:
            eval_seconds += stopper.seconds
            best = stopper.best_epoch
            # PyKEEN restores the best weights when it stops early; when the epochs ran out, we do
            if not stopper.stopped and best is not None and best != len(losses):
                assert stopper.best_model_path is not None
                model.load_state_dict(torch.load(stopper.best_model_path, weights_only=True))

    sizes: dict[str, tuple[int, int]] = {}
    if validation is not None and testing is not None:
        test_sample = sample_triples(testing.mapped_triples, test_cap, config.seed)
        started = time.perf_counter()
        metrics = dict(
            link_prediction_metrics(
                model,
                test_sample,
                known_triples=[training.mapped_triples, validation.mapped_triples, testing.mapped_triples],
                plan=plan,
            )
        )
        eval_seconds += time.perf_counter() - started
        ranked = int(stopper.evaluation_triples_factory.num_triples) if stopper is not None else 0
        touching = int(valid_rows.shape[0]) if valid_rows is not None else 0
        sizes = {
            (
                (
                    "validation (fold-in: no early-stopping round, nothing trained or nothing to rank)"
                    if stopper is None
                    else "validation (fold-in: triples touching a new entity or relation"
                    + (f", a seeded sample of {touching:,}" if ranked < touching else "")
                    + ")"
                )
                if folding
                else "validation"
            ): (ranked, int(validation.num_triples)),
            "test": (int(test_sample.shape[0]), int(testing.num_triples)),
        }
    with torch.no_grad():
        ent = model.entity_representations[0](indices=None).detach().cpu().numpy()  # type: ignore[index,operator]
        rel = model.relation_representations[0](indices=None).detach().cpu().numpy()  # type: ignore[index,operator]
    history = (
        [
            {"epoch": int(epoch), "mrr": float(mrr)}
            for epoch, mrr in zip(stopper.epochs, stopper.results, strict=True)
        ]
        if stopper is not None
        else []
    )
    best_epoch = int(stopper.best_epoch) if stopper is not None and stopper.best_epoch is not None else None
    train_only = max(train_seconds - (stopper.seconds if stopper is not None else 0.0), 1e-9)
    of_triples = triples_fingerprint(unique)
    metadata: dict[str, Any] = {
        "model": config.model,
        "dim": config.dim,
        "seed": config.seed,
        "device": device,
        "epochs_run": len(losses),
        "final_loss": float(losses[-1]) if losses else None,
        "losses": [float(x) for x in losses],
        "train_seconds": round(train_seconds, 3),
        "train_batch_size": batch_size,
        "train_triples_per_second": round(training.num_triples * len(losses) / train_only, 1),
        "eval_seconds": round(eval_seconds, 3),
        "automatic_memory_optimization": amo,
        "optimizer": "SparseAdam" if sparse else "Adam",
        "triples": len(unique),
        "train_triples": int(training.num_triples),
        "test_triples": int(testing.num_triples) if testing is not None else 0,
        "entities": len(entities),
        "relations": len(relations),
        "triples_fingerprint": of_triples,
        "graph_fingerprint": graph_fingerprint or of_triples,
        "pykeen_version": version("pykeen"),
        "evaluation": _describe(plan, sizes, len(unique), scoring_path(model))
        if sizes
        else "none: kge.test_ratio is 0, so nothing was held out and nothing evaluated",
        "validation_evaluations": len(history),
        "validation_history": history,
        "best_epoch": best_epoch,
        "stopped_early": bool(stopper.stopped) if stopper is not None else False,
        # the best validation result came at the last epoch allowed: more epochs would likely help
        "under_trained": (best_epoch == epochs) if best_epoch is not None else None,
        "metrics": metrics,
        "split": split_info,
        #: null when trained from scratch; else the artifact it started from and what it carried over
        "warm_start": warm,
    }
    entity_vectors, relation_vectors = _as_real(ent), _as_real(rel)
    if folding and warm_from is not None:
        # carried rows got no gradient, but the model's constraints were re-applied to them (a unit
        # norm moves a vector by ~1e-7): hand them back exactly as they were, so a fold-in's carried
        # vectors equal the previous artifact's bit for bit and need not be written to the graph again
        entity_vectors = _restore_carried(
            entity_vectors, entity_to_id, warm_from.entity_vectors, warm_from.entity_to_id
        )
        relation_vectors = _restore_carried(
            relation_vectors, relation_to_id, warm_from.relation_vectors, warm_from.relation_to_id
        )
    return Embeddings(
        entity_vectors=entity_vectors,
        entity_to_id=entity_to_id,
        relation_vectors=relation_vectors,
        relation_to_id=relation_to_id,
        metadata=metadata,
        forced_keys=forced_keys,
    )
