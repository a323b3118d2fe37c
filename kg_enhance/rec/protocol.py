"""The benchmark protocol's pieces: fixed seeds, mean and std over seeds, paired tests over
users, and the training flags that keep an unconverged run out of a results table.

* **Seeds.** A fixed list (:data:`DEFAULT_SEEDS`, five); ``n`` seeds are its first ``n``
  (extended with ``5, 6, ...`` past five), so a 3-seed run is a prefix of the 5-seed run.
  The split stays fixed (one split per dataset, shared with every library); the seed
  drives initialisation and negative sampling.
* **Aggregation.** Mean and sample standard deviation (``ddof=1``) over seeds.
* **Paired tests.** Per-user NDCG@K of two models on the same test users (each averaged
  over seeds first), compared with a paired t-test and a paired bootstrap over users.
* **Seeds and users together.** :func:`crossed_test` takes each (seed, user) figure of two models
  and asks whether the gain would hold for other trainings as well as other users: a test over
  the seeds' means (paired t and exact sign flips) and a bootstrap that resamples seeds and users.
* **Flags.** ``stopped_too_early``: the best validation score came within the first few
  evaluations (a run that stops while still warming up is not a result);
  ``under_trained``: the best epoch is the last one allowed (the budget, not the data,
  ended training).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from kg_enhance.errors import ConfigError

#: the protocol's seeds; a run with ``n`` seeds uses the first ``n``
DEFAULT_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)
#: a peer whose best evaluation is among its first this many is flagged ``stopped_too_early``
EARLY_EVALUATIONS = 3


def protocol_seeds(n: int | None = None, seeds: Sequence[int] | None = None) -> list[int]:
    """The seeds of a run: ``seeds`` as given (distinct), else the first ``n`` of the fixed list.

    ``n`` defaults to the length of :data:`DEFAULT_SEEDS`; past it the list continues
    ``5, 6, ...`` so fewer seeds are always a prefix of more.
    """
    if seeds is not None:
        out = [int(s) for s in seeds]
        if not out:
            raise ConfigError(
                "seeds: empty list; give at least one seed or leave it unset for the default five"
            )
        if len(set(out)) != len(out):
            raise ConfigError(f"seeds: {out} repeats a seed; each seed must appear once")
        return out
    count = len(DEFAULT_SEEDS) if n is None else int(n)
    if count < 1:
        raise ConfigError(
            f"seeds: n={count}; use at least 1 (the protocol's default is {len(DEFAULT_SEEDS)})"
        )
    extra = range(max(DEFAULT_SEEDS) + 1, max(DEFAULT_SEEDS) + 1 + max(0, count - len(DEFAULT_SEEDS)))
    return [*DEFAULT_SEEDS, *extra][:count]


@dataclass(frozen=True)
class MeanStd:
    mean: float
    std: float
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.4f} ± {self.std:.4f}" if self.n > 1 else f"{self.mean:.4f} (1 seed)"


def mean_std(values: Sequence[float]) -> MeanStd:
    """Mean and sample standard deviation (``ddof=1``; 0 for one value) over seeds."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        raise ValueError("mean_std: no values")
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return MeanStd(mean=float(arr.mean()), std=std, n=int(arr.size))


@dataclass(frozen=True)
class PairedTest:
    """``a`` vs ``b`` on the same users: mean difference, paired t-test and bootstrap."""

    n: int
    mean_a: float
    mean_b: float
    diff: float
    t: float
    p_t: float
    p_bootstrap: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    @property
    def significant(self) -> bool:
        """Both tests agree at p < 0.05."""
        return self.p_t < 0.05 and self.p_bootstrap < 0.05


def paired_test(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *, n_boot: int = 10_000, seed: int = 0
) -> PairedTest:
    """Two-sided paired t-test and paired bootstrap over users of ``a - b``.

    ``a[i]`` and ``b[i]`` are the same user's metric under the two models. The bootstrap
    resamples users with replacement ``n_boot`` times; its p-value is twice the smaller tail
    share of resampled mean differences at or beyond 0 (bounded below by ``1/(n_boot+1)``),
    and the 95% interval is the percentile interval. A zero-variance difference gives
    ``p = 1`` when it is 0 and ``p = 0`` otherwise.
    """
    from scipy import stats  # 2 s to import on a loaded machine: only where a test is computed

    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"paired_test: a and b must be 1-d and aligned, got {x.shape} and {y.shape}")
    n = int(x.size)
    if n < 2:
        raise ValueError(f"paired_test: needs at least 2 paired users, got {n}")
    d = x - y
    diff = float(d.mean())
    sd = float(d.std(ddof=1))
    if sd == 0.0:
        t = 0.0 if diff == 0 else math.copysign(math.inf, diff)
        p_t = 1.0 if diff == 0 else 0.0
    else:
        t = diff / (sd / math.sqrt(n))
        p_t = float(2 * stats.t.sf(abs(t), df=n - 1))
    rng = np.random.default_rng(seed)
    boot = np.empty(n_boot, dtype=np.float64)
    for start in range(0, n_boot, 256):  # bounded memory: 256 x n indices at a time
        stop = min(n_boot, start + 256)
        boot[start:stop] = d[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    if diff == 0 and sd == 0:
        p_boot = 1.0
    else:
        tail = min(float((boot <= 0).mean()), float((boot >= 0).mean()))
        p_boot = min(1.0, max(2 * tail, 1 / (n_boot + 1)))
    low, high = np.percentile(boot, [2.5, 97.5])
    return PairedTest(
        n=n,
        mean_a=float(x.mean()),
        mean_b=float(y.mean()),
        diff=diff,
        t=float(t),
        p_t=p_t,
        p_bootstrap=p_boot,
        ci_low=float(low),
        ci_high=float(high),
    )


def stopped_too_early(best_epoch: int, eval_every: int, *, evaluations: int = EARLY_EVALUATIONS) -> bool:
    """The best validation score came at one of the first ``evaluations`` evaluations."""
    return best_epoch <= eval_every * evaluations


def under_trained(best_epoch: int, max_epochs: int) -> bool:
    """The best epoch is the last one allowed: more epochs might still have helped. A run allowed no
    epoch (a fold-in with nothing new) trained nothing and is not flagged."""
    return max_epochs > 0 and best_epoch >= max_epochs


def training_flags(
    best_epoch: int, *, max_epochs: int, eval_every: int, evaluations: int = EARLY_EVALUATIONS
) -> list[str]:
    """The flags of one run: ``stopped_too_early`` and/or ``under_trained``, or none."""
    flags = []
    if stopped_too_early(best_epoch, eval_every, evaluations=evaluations):
        flags.append("stopped_too_early")
    if under_trained(best_epoch, max_epochs):
        flags.append("under_trained")
    return flags


@dataclass(frozen=True)
class CrossedTest:
    """``a`` vs ``b`` per (seed, user): mean difference, tests over seeds and a two-way bootstrap."""

    seeds: int
    users: int
    diff: float
    #: paired t-test over the seeds' mean differences (df = seeds - 1)
    p_t_seeds: float
    #: sign-flip permutation test over the seeds' mean differences (exact up to 16 seeds)
    p_sign_flip_seeds: float
    #: bootstrap resampling seeds and users with replacement, independently
    p_bootstrap: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def crossed_test(
    a: np.ndarray | Sequence[Sequence[float]],
    b: np.ndarray | Sequence[Sequence[float]],
    *,
    n_boot: int = 10_000,
    seed: int = 0,
) -> CrossedTest:
    """Two models' metric per seed (rows) and user (columns), the same users in every row.

    Averaging over seeds and testing over users (:func:`paired_test`) asks whether the gain holds
    for other users *of these trainings*; a training's luck that every user shares does not show
    up there. This test lets both vary:

    * over the seeds' mean differences: a paired t-test and a two-sided sign-flip test (all
      ``2**seeds`` sign patterns up to 16 seeds, else ``n_boot`` random ones);
    * a two-way bootstrap: each draw resamples seeds and users with replacement, independently,
      and takes the mean difference over the crossed sample; the p-value is twice the smaller
      tail share at or beyond 0 (bounded below by ``1/(n_boot+1)``) and the interval is the
      percentile interval. Resampling both ways counts the residual twice, so it errs wide.

    Memory: the ``seeds x users`` matrix and 256 draws of resampling weights at a time.
    """
    from scipy import stats

    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(
            f"crossed_test: a and b must be 2-d (seeds x users) and aligned, got {x.shape} and {y.shape}"
        )
    n_seeds, n_users = x.shape
    if n_seeds < 2 or n_users < 2:
        raise ValueError(f"crossed_test: needs at least 2 seeds and 2 users, got {n_seeds} x {n_users}")
    d = x - y
    diff = float(d.mean())
    per_seed = d.mean(axis=1)
    sd = float(per_seed.std(ddof=1))
    if sd == 0.0:
        p_t = 1.0 if diff == 0 else 0.0
    else:
        p_t = float(2 * stats.t.sf(abs(diff / (sd / math.sqrt(n_seeds))), df=n_seeds - 1))
    rng = np.random.default_rng(seed)
    if n_seeds <= 16:
        signs = 1 - 2 * ((np.arange(2**n_seeds)[:, None] >> np.arange(n_seeds)) & 1)
    else:
        signs = rng.choice([-1, 1], size=(n_boot, n_seeds))
    flipped = np.abs(signs @ per_seed) / n_seeds
    p_flip = float((flipped >= abs(per_seed.mean()) - 1e-12).mean())
    boot = np.empty(n_boot, dtype=np.float64)
    for start in range(0, n_boot, 256):
        stop = min(n_boot, start + 256)
        ws = rng.multinomial(n_seeds, np.full(n_seeds, 1 / n_seeds), size=stop - start)
        wu = rng.multinomial(n_users, np.full(n_users, 1 / n_users), size=stop - start)
        boot[start:stop] = np.einsum("bs,su,bu->b", ws, d, wu) / (n_seeds * n_users)
    if not d.any():
        p_boot = 1.0
    else:
        tail = min(float((boot <= 0).mean()), float((boot >= 0).mean()))
        p_boot = min(1.0, max(2 * tail, 1 / (n_boot + 1)))
    low, high = np.percentile(boot, [2.5, 97.5])
    return CrossedTest(
        seeds=n_seeds,
        users=n_users,
        diff=diff,
        p_t_seeds=p_t,
        p_sign_flip_seeds=p_flip,
        p_bootstrap=p_boot,
        ci_low=float(low),
        ci_high=float(high),
    )
