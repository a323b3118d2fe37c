"""Training loop shared by every registered recommender: BPR with uniform negatives,
Adam, early stopping on validation NDCG@K, best weights restored."""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from kg_enhance.config.models import RecModelSpec, RecommenderConfig
from kg_enhance.errors import ConfigError
from kg_enhance.rec.data import Split
from kg_enhance.rec.evaluate import Slices, rank_metrics
from kg_enhance.rec.kg import KGInputs
from kg_enhance.rec.models import RecModel, rec_model_resolver

logger = logging.getLogger(__name__)


@dataclass
class TrainedModel:
    name: str
    model: RecModel
    valid: dict[str, float]
    test: dict[str, float]
    epochs: int
    best_epoch: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    slices: dict[str, dict[str, float]] = field(default_factory=dict)

    def report(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "test": self.test,
            "slices": self.slices,
            "epochs": self.epochs,
            "best_epoch": self.best_epoch,
            "train_seconds": round(self.seconds, 3),
        }


def _device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def train_model(
    spec: RecModelSpec,
    split: Split,
    config: RecommenderConfig,
    *,
    kg: KGInputs | None = None,
    progress: bool = True,
    slices: Slices | None = None,
) -> TrainedModel:
    device = _device(config.device)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    cls = rec_model_resolver.lookup(spec.type)
    kwargs: dict[str, Any] = dict(spec.params)
    if cls.needs_kg:
        if kg is None:
            raise ValueError(f"recommender {spec.key!r} needs KG embeddings, but none were given")
        kwargs.update(kg.model_kwargs())
    if cls.needs_graph:
        kwargs["train_pairs"] = split.train
    try:
        model = cls(split.n_users, split.n_items, config.dim, **kwargs).to(device)
    except TypeError as e:
        raise ConfigError(
            f"recommender.models[{spec.key}].params: {e}; see `kg-enhance ls recommenders`"
        ) from e
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    train = split.train
    k = config.k
    key = f"ndcg@{k}"
    best = -1.0
    best_state: dict[str, Any] | None = None
    best_epoch = 0
    history: list[dict[str, float]] = []
    started = time.perf_counter()
    bar = tqdm(range(1, config.epochs + 1), desc=f"train {spec.key}", unit="epoch", disable=not progress)
    epoch = 0
    for epoch in bar:
        model.train()
        order = rng.permutation(len(train))
        total = 0.0
        for start in range(0, len(order), config.batch_size):
            idx = order[start : start + config.batch_size]
            users = torch.as_tensor(train[idx, 0], device=device)
            pos = torch.as_tensor(train[idx, 1], device=device)
            neg = torch.as_tensor(rng.integers(0, split.n_items, size=len(idx)), device=device)
            loss, reg = model.bpr_terms(users, pos, neg)
            loss = loss + config.weight_decay * reg
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            total += float(loss.detach()) * len(idx)
        model.eval()
        valid = rank_metrics(
            model.score_all, split.valid, [split.train], n_items=split.n_items, k=k, device=device
        )
        history.append(
            {
                "epoch": epoch,
                "loss": total / max(1, len(train)),
                key: valid[key],
                "seconds": time.perf_counter() - started,
            }
        )
        bar.set_postfix(loss=f"{total / max(1, len(train)):.4f}", ndcg=f"{valid[key]:.4f}")
        if valid[key] > best:
            best, best_epoch = valid[key], epoch
            best_state = copy.deepcopy(model.state_dict())
        elif epoch - best_epoch >= config.patience:
            break
    bar.close()
    seconds = time.perf_counter() - started
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    valid = rank_metrics(
        model.score_all, split.valid, [split.train], n_items=split.n_items, k=k, device=device
    )
    test = rank_metrics(
        model.score_all, split.test, [split.train, split.valid], n_items=split.n_items, k=k, device=device
    )
    sliced = slices.evaluate(model.score_all, split, k=k, device=device) if slices is not None else {}
    return TrainedModel(spec.key, model, valid, test, epoch, best_epoch, seconds, history, sliced)


@torch.no_grad()
def top_k(model: RecModel, split: Split, *, k: int, device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Top-K item rows and scores for every user, training and validation positives excluded."""
    scores = model.score_all(torch.arange(split.n_users, device=device)).float().cpu()
    seen = np.concatenate([split.train, split.valid])
    scores[torch.as_tensor(seen[:, 0]), torch.as_tensor(seen[:, 1])] = -torch.inf
    top = torch.topk(scores, k=min(k, split.n_items), dim=1)
    return top.indices.cpu().numpy(), top.values.cpu().numpy()
