"""Training loop shared by every registered recommender: BPR with uniform (or popularity-drawn)
negatives, none of them the user's own training items by default, Adam, early stopping on
validation NDCG@K, best weights restored."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from kg_enhance.arrays import freeze_rows, matching_rows
from kg_enhance.config.models import RecModelSpec, RecommenderConfig
from kg_enhance.errors import ConfigError
from kg_enhance.progress import Progress
from kg_enhance.rec.data import Split
from kg_enhance.rec.evaluate import (
    RankingEvaluator,
    Slices,
    TailSlots,
    UserItems,
    batched_top_k,
    long_tail_mask,
)
from kg_enhance.rec.kg import KGInputs
from kg_enhance.rec.models import LightGCNKNN, RecModel, rec_model_resolver
from kg_enhance.rec.text import TextInputs

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
    slices: dict[str, dict[str, float | int | str]] = field(default_factory=dict)
    #: the epochs this training was allowed (``recommender.epochs``, less when warm-started)
    epochs_allowed: int = 0
    #: what a warm start carried over (:meth:`WarmStart.apply`); None when trained from scratch
    warm_start: dict[str, Any] | None = None
    #: users ranked in each early-stopping evaluation (``rounds``) and in the final one (``all``)
    validation_users: dict[str, int] | None = None
    #: the test metrics per test user: ``users`` (row indices of the split), ``ndcg`` and ``recall``
    #: at K, aligned; their means are :attr:`test` (for paired tests between models or runs)
    test_per_user: dict[str, np.ndarray] = field(default_factory=dict)
    #: seconds of the final evaluation of the best weights (validation over every validation user,
    #: test, the test slices): full rankings, users x items, after :attr:`seconds` of training
    eval_seconds: float = 0.0
    #: Adam's learning rate it trained with (:func:`learning_rate_for`)
    learning_rate: float = 0.0
    #: the ``*_knn`` models' neighbourhood weights chosen on validation after training (``chosen``,
    #: its validation NDCG, and every combination ``tried``); None for the other models
    blend: dict[str, Any] | None = None

    def report(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "test": self.test,
            "slices": self.slices,
            "epochs": self.epochs,
            "best_epoch": self.best_epoch,
            "learning_rate": self.learning_rate,
            **({"blend": self.blend} if self.blend is not None else {}),
            "train_seconds": round(self.seconds, 3),
            "eval_seconds": round(self.eval_seconds, 3),
            "validation_users": self.validation_users,
        }


def sample_user_rows(rows: np.ndarray, max_users: int | None, *, seed: int) -> np.ndarray:
    """The ``(user, item)`` rows of at most ``max_users`` users drawn by ``seed`` (all rows when fewer).

    Early-stopping evaluation ranks every item for each of these users: a fixed sample keeps
    its cost linear in the catalog, and the same users every round compare like with like.
    """
    users = np.unique(rows[:, 0]) if len(rows) else np.zeros(0, dtype=np.int64)
    if max_users is None or len(users) <= max_users:
        return rows
    chosen = np.random.default_rng(seed).choice(users, size=max_users, replace=False)
    return rows[np.isin(rows[:, 0], chosen)]


def _device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


class _Optimizer:
    """Adam for dense parameters, SparseAdam for sparse embedding tables (rows of the batch only)."""

    def __init__(self, model: RecModel, lr: float) -> None:
        sparse_ids = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding) and m.sparse}
        params = [p for p in model.parameters() if p.requires_grad]
        sparse = [p for p in params if id(p) in sparse_ids]
        dense = [p for p in params if id(p) not in sparse_ids]
        self.optimizers: list[torch.optim.Optimizer] = []
        if dense:
            self.optimizers.append(torch.optim.Adam(dense, lr=lr))
        if sparse:
            self.optimizers.append(torch.optim.SparseAdam(sparse, lr=lr))

    def zero_grad(self) -> None:
        for opt in self.optimizers:
            opt.zero_grad()

    def step(self) -> None:
        for opt in self.optimizers:
            opt.step()


class NegativeSampler:
    """Draws BPR negatives: uniform over the catalog, or by popularity.

    ``uniform``: ``rng.integers`` over the catalog. An item the user already has in training comes
    up now and then (about 2% of draws on ml-latest-small, 17% on the 300-item demo) and makes a
    contradictory BPR pair; with ``recommender.exclude_seen_negatives`` (the default) such draws are
    redrawn, as RecBole's sampler does (without it, the draws training made before it existed).

    ``popularity``: item ``i`` with probability proportional to ``(n_i + 1) ** alpha``, ``n_i`` its
    training interactions (every item stays drawable). One cumulative table of ``n_items``
    floats, built once; a batch is one ``searchsorted``. Popular items are often the user's own
    positives (10-14% of draws at alpha 0.75-1 on ml-latest-small), so such draws are always
    redrawn.

    Redrawing: up to :data:`REDRAWS` rounds from the sampler's distribution, then up to as many
    uniformly (a user who has seen most of the head); a sorted key array of the training pairs,
    looked up by binary search, tells a seen draw. Memory and time stay linear in the catalog, the
    training pairs and the batch.
    """

    #: rounds of redrawing a draw that is one of the user's training items (then as many uniform)
    REDRAWS = 10

    def __init__(self, split: Split, config: RecommenderConfig) -> None:
        self.n_items = split.n_items
        self.cdf: np.ndarray | None = None
        self.seen: np.ndarray | None = None
        if config.negatives == "popularity" and config.negative_alpha > 0:
            counts = np.bincount(split.train[:, 1], minlength=split.n_items).astype(np.float64)
            weights = (counts + 1.0) ** config.negative_alpha
            cdf = np.cumsum(weights)
            self.cdf = cdf / cdf[-1]
        if (self.cdf is not None or config.exclude_seen_negatives) and len(split.train):
            self.seen = np.unique(split.train[:, 0].astype(np.int64) * self.n_items + split.train[:, 1])

    def _is_seen(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        assert self.seen is not None
        keys = users.astype(np.int64) * self.n_items + items
        at = np.minimum(np.searchsorted(self.seen, keys), len(self.seen) - 1)
        return np.asarray(self.seen[at] == keys)

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.cdf is None:
            return rng.integers(0, self.n_items, size=n)
        return np.minimum(np.searchsorted(self.cdf, rng.random(n), side="right"), self.n_items - 1)

    def sample(self, rng: np.random.Generator, users: np.ndarray) -> np.ndarray:
        """One negative item row per entry of ``users``."""
        drawn = self._draw(rng, len(users))
        if self.seen is None:
            return drawn
        # redraw from the distribution; what is left (users who have seen much of the head) uniformly;
        # each round checks only the draws redrawn in the one before
        bad = np.flatnonzero(self._is_seen(users, drawn))
        for round_ in range(2 * self.REDRAWS):
            if not len(bad):
                break
            drawn[bad] = (
                self._draw(rng, len(bad))
                if round_ < self.REDRAWS
                else rng.integers(0, self.n_items, size=len(bad))
            )
            bad = bad[self._is_seen(users[bad], drawn[bad])]
        return drawn


def batch_size_for(model: RecModel, n_train: int, config: RecommenderConfig) -> int:
    """Graph models propagate the whole graph once per batch: at most
    ``recommender.graph_batches_per_epoch`` batches keep an epoch linear in the graph's size."""
    if not model.needs_graph:
        return config.batch_size
    return max(config.batch_size, -(-n_train // config.graph_batches_per_epoch))


def _parameters(model: RecModel) -> dict[str, torch.Tensor]:
    """A copy of the trainable state only: buffers (the graph's adjacency) are never copied."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def _table_key(table: str) -> str:
    """The report's name of a table's count: ``users``, ``items``, ``entities``, ``other_parameters``."""
    return {"user": "users", "item": "items", "entity": "entities"}.get(table, table)


@dataclass
class Carried:
    """What :meth:`WarmStart.carry` copied: per row table (``user.weight``...) the mask of rows
    carried, and the names of the other parameters carried whole."""

    info: dict[str, Any]
    rows: dict[str, torch.Tensor] = field(default_factory=dict)
    whole: list[str] = field(default_factory=list)

    def new_rows(self, model: RecModel, table: str) -> np.ndarray:
        """Boolean mask of ``table``'s rows (``user``/``item``) that were not carried (all when none were)."""
        param = dict(model.named_parameters())[f"{table}.weight"]
        mask = self.rows.get(f"{table}.weight")
        if mask is None:
            return np.ones(param.shape[0], dtype=bool)
        return np.asarray(~mask.cpu().numpy())


@dataclass
class FoldIn:
    """A model whose carried rows and parameters are frozen (:meth:`WarmStart.fold_in`).

    Carried rows of an embedding table lose their gradient through a hook on the weight (a
    dense gradient's rows are zeroed; a sparse one's entries are dropped), so Adam / SparseAdam
    never move them: Adam's step of a parameter row whose gradient was always zero is exactly
    zero (no decoupled weight decay here: ``recommender.weight_decay`` is an L2 term in the loss,
    whose gradient the hook removes too), and SparseAdam only touches rows present in the
    gradient. Parameters carried whole get ``requires_grad_(False)``. :meth:`release` undoes both.
    """

    info: dict[str, Any]
    new_users: np.ndarray
    new_items: np.ndarray
    handles: list[torch.utils.hooks.RemovableHandle] = field(default_factory=list)
    frozen: list[torch.nn.Parameter] = field(default_factory=list)

    def pairs(self, train: np.ndarray) -> np.ndarray:
        """The training pairs that touch a new user or a new item (the fold-in pairs)."""
        if not len(train):
            return train
        picked: np.ndarray = train[self.new_users[train[:, 0]] | self.new_items[train[:, 1]]]
        return picked

    def release(self) -> None:
        for handle in self.handles:
            handle.remove()
        for param in self.frozen:
            param.requires_grad_(True)
        self.handles, self.frozen = [], []


@dataclass
class WarmStart:
    """A model's previous weights and the ids of their rows (``recommend/<model>.pt`` and ``.ids.json``)."""

    state: dict[str, torch.Tensor]
    user_ids: list[str]
    item_ids: list[str]
    entity_keys: list[str]
    source: str | None = None
    #: the KG relations in the order the previous model's relation tables use; ``None``: unknown
    relation_keys: list[str] | None = None

    def carry(self, model: RecModel, split: Split, kg: KGInputs | None) -> Carried:
        """Copy the previous weights into ``model`` where ids match: user, item and entity rows by id,
        other parameters when their shape is unchanged. KG vectors (``kg.*``) come from this run's
        embeddings and are never copied; new rows keep their fresh initialisation. Relation tables
        (``relation*``: one row per KG relation, in the order of ``KGInputs.relation_keys``) are
        carried only when both runs list the same relations in the same order: a table of the same
        shape over reordered relations would otherwise attach each weight to another relation."""
        ids = {
            "user": (self.user_ids, split.user_ids),
            "item": (self.item_ids, split.item_ids),
            "entity": (self.entity_keys, kg.entity_keys if kg is not None else []),
        }
        maps: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        out = Carried(info={})
        carried: dict[str, int] = {}
        with torch.no_grad():
            for name, param in model.named_parameters():
                old = self.state.get(name)
                table = name.split(".", 1)[0]
                if old is None or table == "kg":
                    continue
                if table == "relation" and (
                    kg is None
                    or self.relation_keys is None
                    or list(self.relation_keys) != list(kg.relation_keys)
                ):
                    continue
                if table in ids and name.endswith("weight") and param.dim() == 2:
                    before, now = ids[table]
                    if table not in maps:
                        maps[table] = matching_rows(before, now)
                    rows_now, rows_before = maps[table]
                    if not len(rows_now) or old.shape[1:] != param.shape[1:] or len(before) != old.shape[0]:
                        continue
                    new_rows = torch.as_tensor(rows_now, dtype=torch.long, device=param.device)
                    old_rows = torch.as_tensor(rows_before, dtype=torch.long)
                    param[new_rows] = old[old_rows].to(param.device, param.dtype)
                    mask = torch.zeros(param.shape[0], dtype=torch.bool)
                    mask[torch.as_tensor(rows_now, dtype=torch.long)] = True
                    out.rows[name] = mask
                    carried[table] = len(rows_now)
                elif old.shape == param.shape:
                    param.copy_(old.to(param.device, param.dtype))
                    out.whole.append(name)
                    carried["other_parameters"] = carried.get("other_parameters", 0) + 1
        out.info = {"from": self.source, **{_table_key(k): v for k, v in carried.items()}}
        return out

    def apply(self, model: RecModel, split: Split, kg: KGInputs | None) -> dict[str, Any]:
        """:meth:`carry`, returning what was carried (``from``, rows per table, ``other_parameters``)."""
        return self.carry(model, split, kg).info

    def fold_in(self, model: RecModel, split: Split, kg: KGInputs | None) -> FoldIn:
        """:meth:`carry`, then freeze everything carried (:class:`FoldIn`): only rows that were not
        carried (new users, items, entities) and parameters that could not be carried train.

        ``info`` adds ``trained_rows`` (per table, the rows left to train) and
        ``trained_parameters`` (the other parameters left to train)."""
        carried = self.carry(model, split, kg)
        fold = FoldIn(
            info=carried.info,
            new_users=carried.new_rows(model, "user"),
            new_items=carried.new_rows(model, "item"),
        )
        trained_rows: dict[str, int] = {}
        trained_parameters: list[str] = []
        for name, param in model.named_parameters():
            if not param.requires_grad:
                continue
            table = name.split(".", 1)[0]
            if name in carried.whole:
                param.requires_grad_(False)
                fold.frozen.append(param)
            elif name in carried.rows:
                mask = carried.rows[name]
                fold.handles.append(freeze_rows(param, mask))
                trained_rows[_table_key(table)] = int(param.shape[0] - int(mask.sum()))
            elif table in ("user", "item", "entity") and name.endswith("weight") and param.dim() == 2:
                trained_rows[_table_key(table)] = int(param.shape[0])
            else:
                trained_parameters.append(name)
        fold.info["trained_rows"] = trained_rows
        fold.info["trained_parameters"] = trained_parameters
        return fold


def bare_spec(model_type: str, config: RecommenderConfig, **update: Any) -> RecModelSpec:
    """A model of ``model_type`` without the job entry's params, at the learning rate the job gives
    that type (its first entry's own, if any): the ablation's and the noise curve's models."""
    own = next((m.learning_rate for m in config.models if m.type == model_type), None)
    return RecModelSpec(type=model_type, learning_rate=own, **update)


def learning_rate_for(spec: RecModelSpec, config: RecommenderConfig) -> float:
    """Adam's learning rate for ``spec``: its own ``learning_rate``, else ``recommender.learning_rate``,
    else the model's default (:attr:`~kg_enhance.rec.models.RecModel.default_learning_rate`)."""
    if spec.learning_rate is not None:
        return spec.learning_rate
    if config.learning_rate is not None:
        return config.learning_rate
    return rec_model_resolver.lookup(spec.type).default_learning_rate


def train_model(
    spec: RecModelSpec,
    split: Split,
    config: RecommenderConfig,
    *,
    kg: KGInputs | None = None,
    text: TextInputs | None = None,
    progress: bool = True,
    slices: Slices | None = None,
    on_eval: Callable[[int, float], None] | None = None,
    warm: WarmStart | None = None,
) -> TrainedModel:
    """BPR training with early stopping on validation NDCG@K, evaluated every
    ``recommender.eval_every`` epochs; patience counts evaluations. The best weights are restored.

    A spec with ``text: true`` gets the LLM text vectors ``text`` fused into its items
    (:class:`~kg_enhance.rec.models.RecModel`); ``text`` is ignored by the other specs.

    ``on_eval(epoch, validation NDCG@K)`` is called after each evaluation (a tuner reports
    and prunes there; an exception it raises ends training).

    ``warm``: start from earlier weights where ids match (:meth:`WarmStart.apply`) and train at
    most ``recommender.warm_start_epochs`` of the epochs, with the same early stopping. With
    ``recommender.warm_start_mode: fold_in`` everything carried is frozen (:meth:`WarmStart.fold_in`)
    and an epoch runs over the training pairs that touch a new user or item only (negatives from the
    whole catalog); none: no epoch, the carried weights are evaluated as they are. An epoch of a
    row-wise model then costs the fold-in pairs; a graph model still propagates the whole graph
    once per batch, so its epoch costs ``ceil(pairs / batch_size)`` propagations (one for a small
    delta), not the delta alone."""
    device = _device(config.device)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    cls = rec_model_resolver.lookup(spec.type)
    kwargs: dict[str, Any] = dict(spec.params)
    if cls.needs_kg:
        if kg is None:
            raise ValueError(f"recommender {spec.key!r} needs KG embeddings, but none were given")
        kwargs.update(kg.model_kwargs())
    if spec.text:
        if text is None:
            raise ConfigError(
                f"recommender.models[{spec.key}] has text: true but no text embeddings were given; "
                "enable text_embeddings and run the embed_text stage"
            )
        kwargs.update(text.model_kwargs())
    if cls.needs_graph:
        kwargs["train_pairs"] = split.train
    try:
        model = cls(split.n_users, split.n_items, config.dim, **kwargs).to(device)
    except TypeError as e:
        raise ConfigError(
            f"recommender.models[{spec.key}].params: {e}; see `kg-enhance ls recommenders`"
        ) from e
    epochs = config.epochs
    warm_info: dict[str, Any] | None = None
    fold: FoldIn | None = None
    train = split.train
    if warm is not None:
        if config.warm_start_mode == "fold_in":
            fold = warm.fold_in(model, split, kg)
            warm_info = fold.info
            train = fold.pairs(split.train)
            warm_info["fold_in_pairs"] = int(len(train))
        else:
            warm_info = warm.apply(model, split, kg)
        warm_info["mode"] = config.warm_start_mode
        epochs = max(1, math.ceil(config.epochs * config.warm_start_epochs))
        if fold is not None and not len(train):
            epochs = 0
        warm_info["epochs_allowed"] = epochs
        if not epochs:
            warm_info["note"] = (
                "no training interaction touches a new user or item: nothing to fold in, so no epoch "
                "was trained and the carried weights were evaluated as they are"
            )
    learning_rate = learning_rate_for(spec, config)
    opt = _Optimizer(model, learning_rate)
    negatives = NegativeSampler(split, config)
    batch_size = batch_size_for(model, len(train), config)
    k = config.k
    key = f"ndcg@{k}"
    policy = tail_slots_of(split, config)
    valid_eval = RankingEvaluator(
        split.valid, [split.train], n_users=split.n_users, n_items=split.n_items, k=k, tail_slots=policy
    )
    round_rows = sample_user_rows(split.valid, config.valid_max_users, seed=config.seed)
    round_eval = (
        valid_eval
        if len(round_rows) == len(split.valid)
        else RankingEvaluator(
            round_rows, [split.train], n_users=split.n_users, n_items=split.n_items, k=k, tail_slots=policy
        )
    )
    validation_users = {"rounds": len(round_eval.users), "all": len(valid_eval.users)}
    best = -1.0
    best_state: dict[str, torch.Tensor] | None = None
    best_epoch = 0
    since_best = 0
    history: list[dict[str, float]] = []
    started = time.perf_counter()
    bar = Progress(range(1, epochs + 1), desc=f"train {spec.key}", unit="epoch", enabled=progress)
    epoch = 0
    for epoch in bar:
        model.train()
        order = rng.permutation(len(train))
        total = 0.0
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            users = torch.as_tensor(train[idx, 0], device=device)
            pos = torch.as_tensor(train[idx, 1], device=device)
            neg = torch.as_tensor(negatives.sample(rng, train[idx, 0]), device=device)
            loss, reg = model.bpr_terms(users, pos, neg)
            loss = loss + config.weight_decay * reg
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            total += float(loss.detach()) * len(idx)
        if epoch % config.eval_every and epoch != epochs:
            continue
        model.eval()
        with torch.no_grad():
            valid = round_eval.evaluate(*model.representations())
        history.append(
            {
                "epoch": epoch,
                "loss": total / max(1, len(train)),
                key: valid[key],
                "seconds": time.perf_counter() - started,
            }
        )
        bar.set_postfix(loss=f"{total / max(1, len(train)):.4f}", ndcg=f"{valid[key]:.4f}")
        if on_eval is not None:
            on_eval(epoch, valid[key])
        if valid[key] > best:
            best, best_epoch, since_best = valid[key], epoch, 0
            best_state = _parameters(model)
        else:
            since_best += 1
            if since_best >= config.patience:
                break
    bar.close()
    seconds = time.perf_counter() - started
    if fold is not None:
        fold.release()
    if best_state is not None:
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(best_state[name])
    model.eval()
    eval_started = time.perf_counter()
    with torch.no_grad():
        reps = model.representations()
        blend = None
        tried: dict[tuple[float, ...], dict[str, float]] = {}
        if isinstance(model, LightGCNKNN):
            # neighbourhood terms: their weights chosen on the whole validation split, after training
            # (each weight's metrics kept, so the chosen one's validation is not ranked again)
            def validation(m: LightGCNKNN = model) -> float:
                got = tried[tuple(m.blend.values())] = valid_eval.evaluate(*reps, extra=m.extra_scores())
                return got[key]

            blend = model.choose_blend(validation)
        extra = model.extra_scores()
        valid = (
            tried[tuple(model.blend.values())]
            if isinstance(model, LightGCNKNN)
            else valid_eval.evaluate(*reps, extra=extra)
        )
        test_eval = RankingEvaluator(
            split.test,
            [split.train, split.valid],
            n_users=split.n_users,
            n_items=split.n_items,
            k=k,
            tail_slots=policy,
        )
        per_user = test_eval.per_user(*reps, extra=extra)
        test = test_eval.summarise(per_user)
        sliced = slices.from_test(test_eval.users, per_user["top"], split, k=k) if slices is not None else {}
    return TrainedModel(
        spec.key,
        model,
        valid,
        test,
        epoch,
        best_epoch,
        seconds,
        history,
        sliced,
        epochs,
        warm_info,
        validation_users,
        {"users": np.asarray(test_eval.users), "ndcg": per_user["ndcg"], "recall": per_user["recall"]},
        eval_seconds=time.perf_counter() - eval_started,
        learning_rate=learning_rate,
        blend=blend,
    )


def tail_slots_of(split: Split, config: RecommenderConfig) -> TailSlots | None:
    """The job's ranking policy (``recommender.tail_slots``; long tail as in the test slices), or None."""
    if not config.tail_slots:
        return None
    return TailSlots.of(long_tail_mask(split.train, split.n_items, config.head_share), config.tail_slots)


@torch.no_grad()
def top_k(
    model: RecModel, split: Split, *, k: int, tail_slots: TailSlots | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Top-K item rows and scores for every user, training and validation positives excluded.

    Batched over users and chunked over items (:func:`~kg_enhance.rec.evaluate.batched_top_k`):
    memory is ``users x k`` plus one bounded score block, for any catalog. ``tail_slots``: the
    ranking policy the model was evaluated with (:func:`tail_slots_of`).
    """
    model.eval()
    user_vecs, item_vecs = model.representations()
    extra = model.extra_scores()
    seen = UserItems.from_pairs(np.concatenate([split.train, split.valid]), split.n_users)
    k = min(k, split.n_items)
    top_idx = np.zeros((split.n_users, k), dtype=np.int64)
    top_scores = np.zeros((split.n_users, k), dtype=np.float32)
    for users, items, scores in batched_top_k(
        user_vecs, item_vecs, np.arange(split.n_users), k=k, exclude=seen, tail_slots=tail_slots, extra=extra
    ):
        top_idx[users], top_scores[users] = items, scores
    return top_idx, top_scores
