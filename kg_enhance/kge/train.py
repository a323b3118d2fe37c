"""Train PyKEEN embeddings on triples read back from the graph store.

Entity and relation ids are assigned in sorted label order, so an unchanged graph
gives every entity the same row on every run. Labels carry their node kind:
``item:<item_id>``, ``entity:<Type>:<key>``, ``user:<user_id>``.
"""

from __future__ import annotations

import hashlib
import logging
import time
import warnings
from importlib.metadata import version

import numpy as np
import torch
from pykeen.pipeline import pipeline
from pykeen.triples import TriplesFactory

from kg_enhance.config.models import KGEConfig
from kg_enhance.errors import SparseGraphError, StageError
from kg_enhance.kge.artifacts import Embeddings
from kg_enhance.progress import use_bars

logger = logging.getLogger(__name__)

Triple = tuple[str, str, str]


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
    return name


def _as_real(array: np.ndarray) -> np.ndarray:
    if np.iscomplexobj(array):
        return np.concatenate([array.real, array.imag], axis=-1).astype(np.float32)
    return array.astype(np.float32).reshape(array.shape[0], -1)


def train_kge(
    triples: list[Triple], config: KGEConfig, *, progress: bool = True, graph_fingerprint: str | None = None
) -> Embeddings:
    """Split, train with early stopping on validation MRR, evaluate filtered rank metrics on the test split.

    With ``kge.test_ratio: 0`` nothing is held out and the metrics are ``None``: a
    score on training triples is not a result.
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
    if config.test_ratio > 0:
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
        training, validation, testing = tf, tf, tf
    device = _device(config.device)
    torch.manual_seed(config.seed)
    started = time.perf_counter()
    result = pipeline(
        training=training,
        validation=validation,
        testing=testing,
        model=config.model,
        model_kwargs={"embedding_dim": config.dim},
        loss=config.loss,
        negative_sampler=config.negative_sampler,
        negative_sampler_kwargs={"num_negs_per_pos": config.num_negs_per_pos},
        optimizer="Adam",
        optimizer_kwargs={"lr": config.learning_rate},
        training_kwargs={
            "num_epochs": config.epochs,
            "batch_size": config.batch_size,
            "use_tqdm": use_bars(progress),
            "use_tqdm_batch": False,
        },
        stopper="early",
        stopper_kwargs={
            "frequency": 5,
            "patience": 3,
            "metric": "inverse_harmonic_mean_rank",
            "relative_delta": 0.002,
            "evaluation_batch_size": 1024,
        },
        # filtered evaluation against train+valid; a fixed large batch avoids PyKEEN's
        # automatic batch-size search, which costs more than the evaluation itself on CPU
        evaluation_kwargs={"batch_size": 1024, "use_tqdm": False},
        random_seed=config.seed,
        device=device,
        use_tqdm=use_bars(progress),
    )
    seconds = time.perf_counter() - started
    mr = result.metric_results
    held_out = testing is not tf
    metrics: dict[str, float | None] = {
        name: float(mr.get_metric(f"both.realistic.{key}")) if held_out else None
        for name, key in (
            ("mrr", "inverse_harmonic_mean_rank"),
            ("hits@1", "hits_at_1"),
            ("hits@3", "hits_at_3"),
            ("hits@10", "hits_at_10"),
        )
    }
    model = result.model
    with torch.no_grad():
        ent = model.entity_representations[0](indices=None).detach().cpu().numpy()  # type: ignore[index,operator]
        rel = model.relation_representations[0](indices=None).detach().cpu().numpy()  # type: ignore[index,operator]
    losses = list(result.losses)
    metadata = {
        "model": config.model,
        "dim": config.dim,
        "seed": config.seed,
        "device": device,
        "epochs_run": len(losses),
        "final_loss": float(losses[-1]) if losses else None,
        "losses": [round(float(x), 6) for x in losses],
        "train_seconds": round(seconds, 3),
        "triples": len(unique),
        "train_triples": int(training.num_triples),
        "test_triples": int(testing.num_triples) if held_out else 0,
        "entities": len(entities),
        "relations": len(relations),
        "triples_fingerprint": triples_fingerprint(unique),
        "graph_fingerprint": graph_fingerprint or triples_fingerprint(unique),
        "pykeen_version": version("pykeen"),
        "evaluation": "filtered (train+valid+test known triples removed), both sides, realistic ranks, batch 1024"
        if held_out
        else "none (kge.test_ratio: 0, nothing held out)",
        "metrics": metrics,
    }
    return Embeddings(
        entity_vectors=_as_real(ent),
        entity_to_id=entity_to_id,
        relation_vectors=_as_real(rel),
        relation_to_id=relation_to_id,
        metadata=metadata,
    )
