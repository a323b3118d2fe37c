"""The benchmark protocol: seeds, mean and std, the paired tests, the training flags."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kg_enhance.errors import ConfigError
from kg_enhance.rec.evaluate import RankingEvaluator
from kg_enhance.rec.protocol import (
    DEFAULT_SEEDS,
    crossed_test,
    mean_std,
    paired_test,
    protocol_seeds,
    stopped_too_early,
    training_flags,
    under_trained,
)


def test_seeds_are_a_fixed_list_and_fewer_seeds_are_a_prefix() -> None:
    assert protocol_seeds() == list(DEFAULT_SEEDS) and len(DEFAULT_SEEDS) == 5
    assert protocol_seeds(3) == [0, 1, 2]
    assert protocol_seeds(7)[:5] == protocol_seeds(5) and len(set(protocol_seeds(7))) == 7
    assert protocol_seeds(seeds=[11, 3]) == [11, 3]
    with pytest.raises(ConfigError, match="repeats"):
        protocol_seeds(seeds=[1, 1])
    with pytest.raises(ConfigError, match="at least 1"):
        protocol_seeds(0)


def test_mean_std_uses_the_sample_deviation() -> None:
    got = mean_std([0.30, 0.32, 0.34])
    assert got.mean == pytest.approx(0.32)
    assert got.std == pytest.approx(0.02)  # sqrt((0.02^2 + 0 + 0.02^2) / 2)
    assert mean_std([0.5]).std == 0.0 and "1 seed" in str(mean_std([0.5]))


def test_paired_t_test_matches_the_closed_form_for_three_degrees_of_freedom() -> None:
    # differences 1, 0, 1, 2: mean 1, sample sd sqrt(2/3), t = 1 / (sqrt(2/3) / 2) = sqrt(6), df = 3.
    # Student's t with 3 df: two-sided p = 1 - (2/pi) (theta + sin(theta) cos(theta)), theta = atan(t / sqrt(3)).
    got = paired_test([1.0, 2.0, 3.0, 4.0], [0.0, 2.0, 2.0, 2.0], n_boot=2000)
    theta = math.atan(math.sqrt(6) / math.sqrt(3))
    expected = 1 - (2 / math.pi) * (theta + math.sin(theta) * math.cos(theta))
    assert got.diff == pytest.approx(1.0)
    assert got.t == pytest.approx(math.sqrt(6))
    assert got.p_t == pytest.approx(expected, abs=1e-9)
    assert expected == pytest.approx(0.0917, abs=1e-4)
    assert not got.significant


def test_paired_tests_separate_a_real_gain_from_noise() -> None:
    rng = np.random.default_rng(1)
    base = rng.uniform(0, 1, size=400)
    better = base + 0.05 + rng.normal(0, 0.05, size=400)  # every user gains about 0.05
    noisy = base + rng.normal(0, 0.05, size=400)  # no gain, only noise
    gain = paired_test(better, base)
    assert gain.significant and gain.p_bootstrap <= 1e-3 and gain.ci_low > 0
    none = paired_test(noisy, base)
    assert none.p_t > 0.05 and none.p_bootstrap > 0.05 and none.ci_low < 0 < none.ci_high
    assert paired_test([1.0, 1.0], [1.0, 1.0]).p_t == 1.0  # identical models: no difference at all
    with pytest.raises(ValueError, match="aligned"):
        paired_test([1.0, 2.0], [1.0])


def test_crossed_test_sign_flips_by_hand() -> None:
    # one user, seeds' differences 1, 2, 3: of the 8 sign patterns only +++ and --- reach |mean| 2
    got = crossed_test([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]], [[0.0, 0.0]] * 3, n_boot=2000)
    assert got.seeds == 3 and got.users == 2
    assert got.diff == pytest.approx(1.0)
    assert got.p_sign_flip_seeds == pytest.approx(2 / 8)
    # seeds' means 0.5, 1, 1.5: sd 0.5, t = 1 / (0.5 / sqrt(3)) = 2 sqrt(3), df = 2: p = 1 - t / sqrt(t^2 + 2)
    t = 2 * math.sqrt(3)
    assert got.p_t_seeds == pytest.approx(1 - t / math.sqrt(t * t + 2), abs=1e-9)
    with pytest.raises(ValueError, match="seeds x users"):
        crossed_test([1.0, 2.0], [1.0, 2.0])


def test_crossed_test_counts_a_training_s_luck_that_every_user_shares() -> None:
    rng = np.random.default_rng(3)
    seeds, users = 8, 300
    base = rng.uniform(0, 1, size=(seeds, users))
    luck = np.array([0.04, -0.03, 0.05, -0.05, 0.03, -0.02, 0.04, -0.04])[:, None]  # mean +0.0025
    lucky = base + luck + rng.normal(0, 0.01, size=(seeds, users))
    # averaged over seeds and tested over users, the luck looks like a gain ...
    assert paired_test(lucky.mean(axis=0), base.mean(axis=0)).p_t < 0.01
    # ... which the crossed test does not take for one
    luck_only = crossed_test(lucky, base)
    assert luck_only.p_t_seeds > 0.5 and luck_only.p_sign_flip_seeds > 0.5 and luck_only.p_bootstrap > 0.5
    assert luck_only.ci_low < 0 < luck_only.ci_high
    gain = crossed_test(base + 0.05 + rng.normal(0, 0.01, size=(seeds, users)), base)
    assert gain.p_sign_flip_seeds == pytest.approx(2 / 2**seeds)  # every seed ahead: the smallest exact p
    assert gain.p_t_seeds < 1e-6 and gain.p_bootstrap <= 1e-3 and gain.ci_low > 0.04
    assert crossed_test(base, base).p_bootstrap == 1.0


def test_stopped_too_early_and_under_trained_flags() -> None:
    # evaluated every 5 epochs: a best at epoch 5, 10 or 15 is within the first 3 evaluations
    assert stopped_too_early(15, 5) and not stopped_too_early(20, 5)
    assert stopped_too_early(3, 1) and not stopped_too_early(4, 1)
    assert under_trained(500, 500) and not under_trained(495, 500)
    assert not under_trained(0, 0)  # a fold-in with nothing new trained no epoch: nothing to flag
    assert training_flags(10, max_epochs=500, eval_every=5) == ["stopped_too_early"]
    assert training_flags(60, max_epochs=60, eval_every=5) == ["under_trained"]
    assert training_flags(120, max_epochs=500, eval_every=5) == []


def test_per_user_metrics_average_to_the_reported_ones() -> None:
    rng = np.random.default_rng(0)
    n_users, n_items = 40, 30
    train = np.array([[u, i] for u in range(n_users) for i in rng.choice(n_items, 5, replace=False)])
    test = np.array([[u, i] for u in range(n_users) for i in rng.choice(n_items, 2, replace=False)])
    test = test[~(test[:, None, :] == train[None, :, :]).all(-1).any(1)]
    import torch

    users = torch.from_numpy(rng.normal(size=(n_users, 8)).astype(np.float32))
    items = torch.from_numpy(rng.normal(size=(n_items, 8)).astype(np.float32))
    ev = RankingEvaluator(test, [train], n_users=n_users, n_items=n_items, k=5)
    per = ev.per_user(users, items)
    assert len(per["ndcg"]) == len(ev.users)
    summary = ev.evaluate(users, items)
    assert summary["ndcg@5"] == pytest.approx(per["ndcg"].mean())
    assert summary["recall@5"] == pytest.approx(per["recall"].mean())
    # scoring another library's ranking with the same code gives the same values
    scores = users @ items.T
    for u, i in train:
        scores[u, i] = -np.inf
    top = torch.topk(scores, 5).indices.numpy()
    assert np.allclose(ev.score_top(ev.users, top[ev.users])["ndcg"], per["ndcg"])


def _demo_split():  # type: ignore[no-untyped-def]
    """The demo's ratings >= 4, split per user at random (seed 0): the searches' test data."""
    import pandas as pd

    from kg_enhance.datasets.movielens import DEMO_DIR
    from kg_enhance.rec.data import make_split, positives

    df = pd.read_csv(DEMO_DIR / "ratings.csv", dtype=str)
    df = df.rename(columns={"userId": "user_id", "movieId": "item_id", "timestamp": "ts"})
    df["rating"], df["ts"] = df["rating"].astype(float), df["ts"].astype(int)
    return make_split(positives(df, 4.0), kind="user_random", seed=0)


def test_optuna_search_on_validation_saves_the_chosen_values() -> None:
    from kg_enhance.config.models import RecModelSpec, RecommenderConfig
    from kg_enhance.rec.models import BPRMF
    from kg_enhance.rec.tune import SEARCH_SPACES, tune_model

    split = _demo_split()
    cfg = RecommenderConfig(epochs=2, k=20, patience=2)
    got = tune_model(RecModelSpec(type="bpr_mf"), split, cfg, n_trials=3, seed=0)
    assert len(got.trials) == 3
    # the job's own settings are the first trial: a search can only improve on the untuned model
    # (the learning rate unset in the job: bpr_mf's own default)
    assert cfg.learning_rate is None
    assert got.trials[0]["params"] == {
        "learning_rate": BPRMF.default_learning_rate,
        "weight_decay": cfg.weight_decay,
        "dim": cfg.dim,
    }
    assert set(got.config) == {p.name for p in SEARCH_SPACES["bpr_mf"]}
    assert got.best_value == max(t["value"] for t in got.trials if t["value"] is not None)
    assert 1e-3 <= got.config["learning_rate"] <= 3e-2 and got.config["dim"] in (32, 64)
    spec, tuned = got.apply(RecModelSpec(type="bpr_mf", learning_rate=0.5), cfg)
    # the tuned rate replaces the model entry's own, which would otherwise win
    assert tuned.learning_rate == got.config["learning_rate"] and tuned.epochs == 2
    assert spec.learning_rate is None
    again = tune_model(RecModelSpec(type="bpr_mf"), split, cfg, n_trials=3, seed=0)
    assert again.config == got.config  # seeded sampler: the same search


def test_confirmation_seeds_choose_by_the_mean_over_seeds() -> None:
    from kg_enhance.config.models import RecModelSpec, RecommenderConfig
    from kg_enhance.rec.train import train_model
    from kg_enhance.rec.tune import tune_model

    split = _demo_split()
    cfg = RecommenderConfig(epochs=2, k=20, patience=2, seed=3)
    got = tune_model(
        RecModelSpec(type="bpr_mf"), split, cfg, n_trials=4, seed=0, confirm_seeds=1, confirm_top=2
    )
    # the two best trials and the job's settings (trial 0), each on seeds 3 and 4
    numbers = [c["number"] for c in got.confirmed]
    assert 0 in numbers and 2 <= len(numbers) <= 3
    assert all(c["seeds"] == [3, 4] and len(c["values"]) == 2 for c in got.confirmed)
    chosen = max(got.confirmed, key=lambda c: c["mean"])
    assert got.best_value == pytest.approx(chosen["mean"])
    assert got.config == {k: v for k, v in got.trials[chosen["number"]]["params"].items() if k in got.config}
    # the extra value is a real training on the next seed
    spec, tuned = got.apply(RecModelSpec(type="bpr_mf"), cfg)
    again = train_model(spec, split, tuned.model_copy(update={"seed": 4}), progress=False)
    assert again.valid["ndcg@20"] == pytest.approx(chosen["values"][1])


def test_cross_check_trains_other_models_chosen_values_and_keeps_the_better_mean() -> None:
    import dataclasses

    from kg_enhance.config.models import RecModelSpec, RecommenderConfig
    from kg_enhance.rec.train import train_model
    from kg_enhance.rec.tune import cross_check, tune_model

    split = _demo_split()
    cfg = RecommenderConfig(epochs=2, k=20, patience=2, seed=3)
    spec = RecModelSpec(type="bpr_mf")
    got = tune_model(spec, split, cfg, n_trials=2, seed=0, confirm_seeds=1)
    own = {**got.config, **got.params}
    # another model's choice: bpr_mf shares learning rate, L2 and size with it, not layers or dropout
    other = {"learning_rate": 0.02, "weight_decay": 1e-4, "dim": 32, "layers": 2, "knowledge_dropout": 0.9}
    shared = {"learning_rate": 0.02, "weight_decay": 1e-4, "dim": 32}
    assert own != shared

    # a chosen value no setting can beat: the other's is trained on both seeds, and not taken
    kept = cross_check(
        dataclasses.replace(got, best_value=2.0),
        spec,
        split,
        cfg,
        {"kg_hybrid": other, "same": own},
        confirm_seeds=1,
    )
    assert {**kept.config, **kept.params} == own and kept.best_value == 2.0
    assert len(kept.cross_checked) == 1  # the setting equal to its own choice is not trained again
    check = kept.cross_checked[0]
    assert check["from"] == "kg_hybrid" and check["settings"] == shared and check["seeds"] == [3, 4]
    again = train_model(
        spec, split, cfg.model_copy(update={**shared, "seed": 4}), progress=False
    )  # a real training on the second seed
    assert again.valid["ndcg@20"] == pytest.approx(check["values"][1])
    assert check["mean"] == pytest.approx(sum(check["values"]) / 2)

    # a chosen value every setting beats: the other's values are taken, with their mean
    taken = cross_check(
        dataclasses.replace(got, best_value=-1.0), spec, split, cfg, {"kg_hybrid": other}, confirm_seeds=1
    )
    assert {**taken.config, **taken.params} == shared
    assert taken.best_value == pytest.approx(check["mean"])
    assert taken.report()["cross_checked"] == taken.cross_checked


def test_the_first_trial_is_the_jobs_settings_with_defaults_inherited_from_the_base_model() -> None:
    """A parameter a model passes on to its base class through ``**kwargs`` (``layers`` of
    lightgcn_knn and kg_knn, LightGCN's) is enqueued at the base's default, not left to the sampler."""
    from kg_enhance.config.models import RecModelSpec, RecommenderConfig
    from kg_enhance.rec.tune import default_trial

    config = RecommenderConfig(learning_rate=0.005, weight_decay=1e-6, dim=64)
    for model in ("lightgcn", "lightgcn_knn", "kg_knn"):
        assert default_trial(RecModelSpec(type=model), config) == {
            "learning_rate": 0.005,
            "weight_decay": 1e-6,
            "dim": 64,
            "layers": 3,
        }
    assert default_trial(RecModelSpec(type="kg_knn", params={"layers": 2}), config)["layers"] == 2
    assert default_trial(RecModelSpec(type="kg_hybrid"), config)["knowledge_dropout"] == 0.0
