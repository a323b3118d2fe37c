"""Hyperparameter search on validation with Optuna: a small, declared space per model.

Every model gets the same kind of budget: a number of trials, each a full training run
with early stopping on validation NDCG@K; the objective is the restored best model's
validation NDCG@K (the test split is never looked at). Trials are sampled with TPE
(seeded) and pruned with Optuna's median rule on the validation curve.

The spaces (:data:`SEARCH_SPACES`) are declared here, not built in a loop, so a results
file can state exactly what was searched:

* every model: learning rate (log 1e-3..3e-2), L2 weight (log 1e-7..1e-3), embedding
  size (32 or 64: the budget caps it at the job's default);
* graph models (``lightgcn``, ``kg_lightgcn``, ``kg_hybrid``, ``kgat``): propagation layers 1..3;
* ``kg_bpr``: whether the KG vectors are fine-tuned;
* ``kg_hybrid``: ``knowledge_dropout`` 0, 0.5, 0.8 or 0.9 (on ml-100k's Freebase KG 0.8-0.9 raised
  validation and test NDCG@20 over 0: ``benchmarks/RESULTS.md``, knowledge dropout).

The first trial is always the job's own settings (the configured learning rate, L2 and
size, the model's default parameters), as RecBole's defaults are the first trial of a
RecBole search: a search can only improve on the untuned model. Pruning starts after a
quarter of the epoch budget, so a slow-starting, low learning rate is not cut for being
behind a fast one early on.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Literal

import optuna

from kg_enhance.config.models import RecModelSpec, RecommenderConfig
from kg_enhance.rec.data import Split
from kg_enhance.rec.evaluate import Slices
from kg_enhance.rec.kg import KGInputs
from kg_enhance.rec.models import rec_model_resolver
from kg_enhance.rec.train import TrainedModel, learning_rate_for, train_model


@dataclass(frozen=True)
class Param:
    """One searched value: where it goes (``config``: recommender setting; ``params``: model parameter)."""

    name: str
    kind: Literal["log_float", "int", "categorical"]
    target: Literal["config", "params"]
    low: float = 0.0
    high: float = 0.0
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.kind == "log_float":
            return trial.suggest_float(self.name, self.low, self.high, log=True)
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high))
        return trial.suggest_categorical(self.name, list(self.choices))

    def describe(self) -> dict[str, Any]:
        if self.kind == "categorical":
            return {"name": self.name, "choices": list(self.choices)}
        return {"name": self.name, "kind": self.kind, "low": self.low, "high": self.high}


COMMON: tuple[Param, ...] = (
    Param("learning_rate", "log_float", "config", 1e-3, 3e-2),
    Param("weight_decay", "log_float", "config", 1e-7, 1e-3),
    Param("dim", "categorical", "config", choices=(32, 64)),
)
GRAPH: tuple[Param, ...] = (Param("layers", "int", "params", 1, 3),)

SEARCH_SPACES: dict[str, tuple[Param, ...]] = {
    "bpr_mf": COMMON,
    "kg_bpr": (*COMMON, Param("freeze_kg", "categorical", "params", choices=(True, False))),
    "lightgcn": (*COMMON, *GRAPH),
    "kg_lightgcn": (*COMMON, *GRAPH),
    "kg_hybrid": (
        *COMMON,
        *GRAPH,
        Param("knowledge_dropout", "categorical", "params", choices=(0.0, 0.5, 0.8, 0.9)),
    ),
    "kgat": (*COMMON, *GRAPH),
    # the neighbourhood weights are chosen inside training, on validation (models.LightGCNKNN)
    "lightgcn_knn": (*COMMON, *GRAPH),
    "kg_knn": (*COMMON, *GRAPH),
}


@dataclass
class TuneResult:
    model: str
    best_value: float
    config: dict[str, Any]
    params: dict[str, Any]
    trials: list[dict[str, Any]] = field(default_factory=list)
    space: list[dict[str, Any]] = field(default_factory=list)
    #: the re-trained candidates when ``confirm_seeds`` was given (trial number, seeds, values, mean)
    confirmed: list[dict[str, Any]] = field(default_factory=list)
    #: other models' chosen settings tried by :func:`cross_check` (from, settings, seeds, values, mean)
    cross_checked: list[dict[str, Any]] = field(default_factory=list)

    def apply(self, spec: RecModelSpec, config: RecommenderConfig) -> tuple[RecModelSpec, RecommenderConfig]:
        """``spec`` and ``config`` with the chosen values."""
        own_rate = {"learning_rate": None} if "learning_rate" in self.config else {}
        return (
            spec.model_copy(update={"params": {**spec.params, **self.params}, **own_rate}),
            config.model_copy(update=self.config),
        )

    def report(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "best_valid": self.best_value,
            "chosen": {**self.config, **self.params},
            "space": self.space,
            "trials": self.trials,
            "confirmed": self.confirmed,
            "cross_checked": self.cross_checked,
        }


def space_for(model_type: str) -> tuple[Param, ...]:
    try:
        return SEARCH_SPACES[model_type]
    except KeyError:
        raise ValueError(
            f"no search space declared for recommender {model_type!r}; declared: {', '.join(sorted(SEARCH_SPACES))}"
        ) from None


def default_trial(spec: RecModelSpec, config: RecommenderConfig) -> dict[str, Any]:
    """The job's own values of ``spec``'s searched parameters (those inside the space)."""

    # a parameter's default is on the first class of the model's MRO whose __init__ names it (a
    # subclass may pass it on through **kwargs, as lightgcn_knn does LightGCN's ``layers``)
    defaults: dict[str, Any] = {}
    for klass in reversed(rec_model_resolver.lookup(spec.type).__mro__):
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for name, param in inspect.signature(init).parameters.items():
            if param.default is not inspect.Parameter.empty:
                defaults[name] = param.default
    out: dict[str, Any] = {}
    for p in space_for(spec.type):
        if p.name == "learning_rate":
            value = learning_rate_for(spec, config)
        elif p.target == "config":
            value = getattr(config, p.name)
        elif p.name in spec.params:
            value = spec.params[p.name]
        elif p.name in defaults:
            value = defaults[p.name]
        else:
            continue
        inside = value in p.choices if p.kind == "categorical" else p.low <= value <= p.high
        if inside:
            out[p.name] = value
    return out


def _validate(
    spec: RecModelSpec,
    split: Split,
    config: RecommenderConfig,
    setting: dict[str, Any],
    seeds: list[int],
    *,
    kg: KGInputs | None,
) -> list[float]:
    """Validation NDCG@K of ``spec`` trained at ``setting`` (values of its space) on each seed."""
    space = space_for(spec.type)
    cfg = config.model_copy(update={p.name: setting[p.name] for p in space if p.target == "config"})
    params = {p.name: setting[p.name] for p in space if p.target == "params"}
    trial_spec = spec.model_copy(update={"params": {**spec.params, **params}})
    key = f"ndcg@{config.k}"
    return [
        float(
            train_model(trial_spec, split, cfg.model_copy(update={"seed": s}), kg=kg, progress=False).valid[
                key
            ]
        )
        for s in seeds
    ]


def tune_model(
    spec: RecModelSpec,
    split: Split,
    config: RecommenderConfig,
    *,
    kg: KGInputs | None = None,
    n_trials: int,
    seed: int = 0,
    timeout: float | None = None,
    slices: Slices | None = None,
    confirm_seeds: int = 0,
    confirm_top: int = 2,
) -> TuneResult:
    """Search ``spec``'s declared space on validation NDCG@K; ``config`` gives everything not searched.

    One seed's validation NDCG favours a setting that was lucky on that seed (the search's winner is
    the highest of several noisy values). ``confirm_seeds``: the ``confirm_top`` best trials and the
    first trial (the job's settings) are each trained again on that many more training seeds
    (``config.seed + 1``, ...), and the one with the highest mean validation NDCG@K over all its seeds
    is chosen; ``best_value`` is then that mean. Costs ``confirm_seeds`` trainings per candidate."""
    space = space_for(spec.type)
    # the learning rate is searched as a recommender setting: the model entry's own (or, unset, the
    # model's default) moves there, so a trial's value is the one that trains
    config = config.model_copy(update={"learning_rate": learning_rate_for(spec, config)})
    spec = spec.model_copy(update={"learning_rate": None})
    key = f"ndcg@{config.k}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(
            n_startup_trials=2, n_warmup_steps=max(3 * config.eval_every, config.epochs // 4)
        ),
    )
    study.enqueue_trial(default_trial(spec, config))

    def objective(trial: optuna.Trial) -> float:
        chosen = {p.name: p.suggest(trial) for p in space}
        cfg = config.model_copy(update={p.name: chosen[p.name] for p in space if p.target == "config"})
        params = {p.name: chosen[p.name] for p in space if p.target == "params"}
        trial_spec = spec.model_copy(update={"params": {**spec.params, **params}})

        def report(epoch: int, value: float) -> None:
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        trained: TrainedModel = train_model(
            trial_spec, split, cfg, kg=kg, progress=False, slices=slices, on_eval=report
        )
        trial.set_user_attr("best_epoch", trained.best_epoch)
        trial.set_user_attr("epochs", trained.epochs)
        trial.set_user_attr("seconds", round(trained.seconds, 2))
        return float(trained.valid[key])

    study.optimize(objective, n_trials=n_trials, timeout=timeout)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        raise RuntimeError(
            f"tune {spec.key}: no trial completed in {len(study.trials)}; raise n_trials or the timeout"
        )
    best = study.best_trial
    best_value = float(best.value if best.value is not None else 0.0)
    confirmed: list[dict[str, Any]] = []
    if confirm_seeds > 0:
        ranked = sorted(done, key=lambda t: -(t.value or 0.0))[:confirm_top]
        first = study.trials[0]
        if first.state == optuna.trial.TrialState.COMPLETE and first not in ranked:
            ranked.append(first)
        for t in ranked:
            seeds = [config.seed + 1 + j for j in range(confirm_seeds)]
            values = [float(t.value or 0.0)] + _validate(spec, split, config, t.params, seeds, kg=kg)
            confirmed.append(
                {
                    "number": t.number,
                    "seeds": [config.seed, *seeds],
                    "values": values,
                    "mean": sum(values) / len(values),
                }
            )
        chosen = max(confirmed, key=lambda c: c["mean"])
        best = study.trials[chosen["number"]]
        best_value = chosen["mean"]
    return TuneResult(
        model=spec.key,
        best_value=best_value,
        config={p.name: best.params[p.name] for p in space if p.target == "config"},
        params={p.name: best.params[p.name] for p in space if p.target == "params"},
        trials=[
            {
                "number": t.number,
                "state": t.state.name,
                "value": t.value,
                "params": t.params,
                **t.user_attrs,
            }
            for t in study.trials
        ],
        space=[p.describe() for p in space],
        confirmed=confirmed,
    )


def cross_check(
    result: TuneResult,
    spec: RecModelSpec,
    split: Split,
    config: RecommenderConfig,
    others: dict[str, dict[str, Any]],
    *,
    kg: KGInputs | None = None,
    confirm_seeds: int = 0,
) -> TuneResult:
    """``result`` after trying, for this model, the values other models' searches chose.

    Two searches of the same budget do not try the same settings: TPE proposes different points in
    spaces of different shape, so one model can draw a better learning rate or L2 that the other
    never trains, and a comparison between them then measures the draw (``benchmarks/RESULTS.md``,
    the seventeenth session's ablation). ``others``: each other model's chosen values
    (:meth:`TuneResult.report`'s ``chosen``). The values this model's space shares with one of them
    replace its own chosen ones (the rest stay), and that setting trains on the seeds the choice was
    made on (``config.seed`` and, with ``confirm_seeds``, the next ones); it is chosen instead when
    its mean validation NDCG@K is higher than ``result.best_value``. Settings already measured on
    those seeds (the chosen one, the confirmed trials) are not trained again. ``config`` and ``spec``: as given to :func:`tune_model`."""
    space = space_for(spec.type)
    config = config.model_copy(update={"learning_rate": learning_rate_for(spec, config)})
    spec = spec.model_copy(update={"learning_rate": None})
    seeds = [config.seed + j for j in range(confirm_seeds + 1)]
    chosen = {**result.config, **result.params}
    best, best_value = dict(chosen), result.best_value
    # settings already measured on these seeds, none above the choice: the confirmed trials (or,
    # without confirmation, every completed trial on the first seed)
    measured = (
        [result.trials[c["number"]]["params"] for c in result.confirmed]
        if result.confirmed
        else [t["params"] for t in result.trials if t["state"] == "COMPLETE"]
    )
    tried = [dict(chosen), *measured]
    checked: list[dict[str, Any]] = []
    for name, values in others.items():
        setting = {p.name: values.get(p.name, chosen[p.name]) for p in space}
        if setting in tried:
            continue
        tried.append(setting)
        got = _validate(spec, split, config, setting, seeds, kg=kg)
        mean = sum(got) / len(got)
        checked.append({"from": name, "settings": setting, "seeds": seeds, "values": got, "mean": mean})
        if mean > best_value:
            best, best_value = setting, mean
    return TuneResult(
        model=result.model,
        best_value=best_value,
        config={p.name: best[p.name] for p in space if p.target == "config"},
        params={p.name: best[p.name] for p in space if p.target == "params"},
        trials=result.trials,
        space=result.space,
        confirmed=result.confirmed,
        cross_checked=[*result.cross_checked, *checked],
    )
