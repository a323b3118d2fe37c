"""Incremental refresh on the full ml-latest-small job: 1% of the items added back.

The job is the one of ``benchmarks/scale.py`` at k = 1 (9,742 movies, 100,836 ratings,
HetRec directors, countries and tags as gold facts, genres from the catalog; TransE 64-d
and the four recommenders of ``examples/jobs/ml-latest-small.yaml`` plus its ``kg_knn``, 60 epochs with
early stopping unless ``--set`` gives more), with the LLM on: every item is
sent to a local stub endpoint (``tests/support/scripted_server.py``) that answers each
request at once with a valid, empty fact list, so LLM calls are counted exactly while
their content does not change the graph. Per seed (``recommender.seed`` and ``kge.seed``):

1. hold out 1% of the items (drawn by the seed) with their ratings and gold facts, and
   run the job in full (``run --full``) on the rest;
2. put them back: ``kg-enhance diff`` (what it predicts), then ``kg-enhance run`` (incremental);
3. run the job in full on the complete data into a new run folder and namespace;
4. with ``--retrain-seeds N``: train that full run's recommenders N more times from scratch,
   other training seeds, same data, split (``recommender.split_seed``) and KG embeddings: how
   much two full retrainings differ, and the incremental run against their mean.

It prints per seed the wall time of 2 and 3 and their ratio, the LLM calls of each, and
every model's test NDCG@20 in both (the same split: same interactions and seed), then the
mean and standard deviation over seeds of the ratio and the relative NDCG@20 difference.
The full run of step 3 finds every LLM answer in the cache (step 1 and 2 made them), so
its wall time is a lower bound of a real full run's and the ratio is an upper bound.

The recommenders use ``recommender.split: user_hash``: with the default ``user_random`` the new
interactions reshuffle every user's split, the warm start is refused (it would have trained on
held-out pairs: measured +15% to +130% NDCG@20 of pure leakage before the guard existed,
``results/refresh_leak_2026-11-29.txt``), and the refresh retrains from scratch.

Runs against an existing Neo4j (``--uri``, default the worktree's bolt 7693), in its own
namespaces, with its own state folder (extraction cache) per seed under ``--scratch``.

    .venv/bin/python benchmarks/refresh.py [--seeds 0,1,2] [--uri bolt://127.0.0.1:7693] [--until load]
        [--set recommender.patience=20 ...]   (passed to all three runs: the job's settings for this comparison)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from benchmarks.scale import DATA, gold_facts  # noqa: E402
from kg_enhance.config.models import Neo4jConfig  # noqa: E402
from kg_enhance.graph.store import Neo4jStore  # noqa: E402
from kg_enhance.rec.protocol import paired_test  # noqa: E402
from tests.support.scripted_server import ScriptedServer  # noqa: E402


def write_data(folder: Path, *, hold_out: set[str]) -> dict[str, int]:
    """ml-latest-small and the gold facts without the ``hold_out`` items."""
    folder.mkdir(parents=True, exist_ok=True)
    ml = DATA / "ml-latest-small"
    movies = pd.read_csv(ml / "movies.csv", dtype=str)
    ratings = pd.read_csv(ml / "ratings.csv", dtype=str)
    gold = gold_facts()
    gold = gold[gold["item_id"].isin(set(movies["movieId"]))]
    movies = movies[~movies["movieId"].isin(hold_out)]
    ratings = ratings[~ratings["movieId"].isin(hold_out)]
    gold = gold[~gold["item_id"].isin(hold_out)]
    movies.to_csv(folder / "movies.csv", index=False)
    ratings.to_csv(folder / "ratings.csv", index=False)
    gold.to_csv(folder / "gold.tsv", sep="\t", index=False)
    return {"items": len(movies), "ratings": len(ratings), "gold_facts": len(gold)}


def write_job(
    folder: Path,
    data: Path,
    *,
    name: str,
    seed: int,
    uri: str,
    llm_url: str,
    models: str,
    mode: str = "continue",
) -> Path:
    job = folder / "job.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    job.write_text(
        f"""version: 1
name: {name}
ontology: {REPO / "schemas" / "movies.yaml"}
source:
  items:
    path: {data / "movies.csv"}
    id_column: movieId
    title_column: title
    text_fields: [title, genres]
    fact_columns:
      - {{column: genres, relation: HAS_GENRE, object_type: Genre, separator: "|", ignore: ["(no genres listed)"]}}
  interactions:
    path: {data / "ratings.csv"}
    user_column: userId
    item_column: movieId
    rating_column: rating
    timestamp_column: timestamp
    positive_threshold: 4.0
  facts:
    - name: hetrec
      path: {data / "gold.tsv"}
llm:
  base_url: {llm_url}
  structured_output: json_schema
  max_concurrency: 8
neo4j:
  uri: {uri}
kge:
  model: TransE
  dim: 64
  epochs: 60
  seed: {seed}
  warm_start_mode: {mode}
recommender:
  split: user_hash   # stable when interactions arrive: warm starts never see held-out pairs
  warm_start_mode: {mode}
  models: [{models}]
  epochs: 60
  k: 20
  seed: {seed}
  split_seed: {seed}   # --retrain-seeds changes recommender.seed only: the same split
outputs:
  dir: {folder / "run"}
"""
    )
    return job


def cli(*args: str, profile: Path | None = None) -> tuple[float, str]:
    """Run ``kg-enhance ARGS`` in a new process; with ``profile``, under cProfile (stats saved there)."""
    started = time.perf_counter()
    wrap = ["-m", "cProfile", "-o", str(profile)] if profile is not None else []
    proc = subprocess.run(
        [sys.executable, *wrap, "-m", "kg_enhance.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"kg-enhance {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-1500:]}")
    return wall, proc.stdout


def report(job: Path) -> dict[str, Any]:
    return dict(json.loads((job.parent / "run" / "report.json").read_text()))


def ndcg(rep: dict[str, Any], models: list[str]) -> dict[str, float]:
    return {m: float(rep["recommend"][m]["test"]["ndcg@20"]) for m in models}


def paired_users(inc: Path, full: Path, models: list[str]) -> dict[str, dict[str, list[Any]]]:
    """Per model, each test user's NDCG@20 in the incremental and in the full run (same split: same
    test users), from ``recommend/test_per_user.parquet`` of both runs."""
    tables = [job.parent / "run" / "recommend" / "test_per_user.parquet" for job in (inc, full)]
    if not all(t.exists() for t in tables):
        return {}
    a, b = (pd.read_parquet(t) for t in tables)
    out: dict[str, dict[str, list[Any]]] = {}
    for m in models:
        joined = a[a["model"] == m][["user_id", "ndcg@20"]].merge(
            b[b["model"] == m][["user_id", "ndcg@20"]], on="user_id", suffixes=("_inc", "_full")
        )
        out[m] = {
            "users": joined["user_id"].tolist(),
            "incremental": joined["ndcg@20_inc"].tolist(),
            "full": joined["ndcg@20_full"].tolist(),
        }
    return out


def best_epochs(rep: dict[str, Any]) -> dict[str, Any]:
    """Each model's best and last epoch (did early stopping end it on a plateau?)."""
    return {
        m: [r.get("best_epoch"), r.get("epochs")]
        for m, r in rep.get("recommend", {}).items()
        if isinstance(r, dict) and "best_epoch" in r
    }


def per_user(job: Path, model: str) -> dict[str, float]:
    """Each test user's NDCG@20 of ``model`` in the job's latest recommend stage."""
    table = pd.read_parquet(job.parent / "run" / "recommend" / "test_per_user.parquet")
    rows = table[table["model"] == model]
    return dict(zip(rows["user_id"].astype(str), rows["ndcg@20"].astype(float), strict=True))


def retrain(
    job: Path, training_seed: int, models: list[str], sets: list[str], split: dict[str, Any]
) -> dict[str, Any]:
    """The full job's recommenders trained again from scratch with another ``recommender.seed``
    (the split is pinned by ``recommender.split_seed``; the graph and the KG embeddings are the full
    run's): what a second full retraining would score."""
    seconds, _ = cli(
        "run", str(job), "--full", "--only", "recommend", "--no-progress", *sets,
        "--set", f"recommender.seed={training_seed}",
    )  # fmt: skip
    rep = report(job)
    now = rep["recommend"]["split"]
    assert now["training_seed"] == training_seed, now
    assert {k: now[k] for k in ("seed", "train", "valid", "test")} == {
        k: split[k] for k in ("seed", "train", "valid", "test")
    }, f"retrain on another split: {now} vs the full run's {split}"
    return {
        "training_seed": training_seed,
        "seconds": seconds,
        "ndcg@20": ndcg(rep, models),
        "best_epochs": best_epochs(rep),
        "served": rep["recommend"].get("best_model"),
        "per_user_ndcg@20": {m: per_user(job, m) for m in models},
    }


def one_seed(
    seed: int,
    scratch: Path,
    uri: str,
    models: list[str],
    until: list[str],
    mode: str = "continue",
    profile: Path | None = None,
    incremental_only: bool = False,
    sets: list[str] | None = None,
    retrain_seeds: int = 0,
) -> dict[str, Any]:
    movies = pd.read_csv(DATA / "ml-latest-small" / "movies.csv", dtype=str)["movieId"].tolist()
    rng = np.random.default_rng(seed)
    held = set(rng.choice(movies, size=max(1, round(0.01 * len(movies))), replace=False).tolist())
    base = scratch / f"seed{seed}"
    shutil.rmtree(base, ignore_errors=True)
    # each seed its own, empty extraction cache: its stub LLM may get the port of an earlier seed's,
    # and the cache (keyed by endpoint) would then answer the first full run without a call
    os.environ["KG_ENHANCE_HOME"] = str(base / "state")
    names = {"inc": f"refresh-inc-s{seed}", "full": f"refresh-full-s{seed}"}
    for ns in names.values():
        with Neo4jStore(Neo4jConfig(uri=uri), namespace=ns) as store:
            store.clear_namespace()
    model_list = ", ".join(f"{{type: {m}}}" for m in models)
    out: dict[str, Any] = {"seed": seed, "held_out_items": len(held)}
    with ScriptedServer([]) as llm:  # every request: a valid, empty answer
        inc = write_job(
            base / "inc",
            base / "inc-data",
            name=names["inc"],
            seed=seed,
            uri=uri,
            llm_url=llm.url,
            models=model_list,
            mode=mode,
        )
        out["data_before"] = write_data(base / "inc-data", hold_out=held)
        out["first_full_seconds"], _ = cli("run", str(inc), "--full", "--no-progress", *until)
        out["first_full_llm_calls"] = len(llm.requests)
        first = report(inc)  # on the data without the held-out items: its own (smaller) test set
        out["first_full_ndcg@20"] = ndcg(first, models) if "recommend" in first else {}
        out["first_full_best_epochs"] = best_epochs(first)

        out["data_after"] = write_data(base / "inc-data", hold_out=set())
        _, predicted = cli("diff", str(inc), "--json")
        out["diff"] = json.loads(predicted)
        calls = len(llm.requests)
        out["incremental_seconds"], _ = cli(
            "run",
            str(inc),
            "--no-progress",
            *until,
            profile=None if profile is None else profile.with_name(f"{profile.name}.seed{seed}"),
        )
        out["incremental_llm_calls"] = len(llm.requests) - calls
        rep = report(inc)
        out["incremental_stage_seconds"] = rep["delta"]["stage_seconds"]
        out["incremental_delta"] = {
            k: rep["delta"][k] for k in ("mode", "subjects", "interactions", "warm_start")
        }
        out["incremental_ndcg@20"] = ndcg(rep, models) if "recommend" in rep else {}
        out["incremental_best_epochs"] = best_epochs(rep)
        out["incremental_served"] = rep.get("recommend", {}).get("best_model")
        if incremental_only:
            return out

        full = write_job(
            base / "full",
            base / "inc-data",
            name=names["full"],
            seed=seed,
            uri=uri,
            llm_url=llm.url,
            models=model_list,
        )
        calls = len(llm.requests)
        out["full_seconds"], _ = cli("run", str(full), "--full", "--no-progress", *until)
        out["full_llm_calls"] = len(llm.requests) - calls
        frep = report(full)
        out["full_stage_seconds"] = {n: s["seconds"] for n, s in frep["stages"].items() if "seconds" in s}
        out["full_ndcg@20"] = ndcg(frep, models) if "recommend" in frep else {}
        out["full_best_epochs"] = best_epochs(frep)
        out["full_served"] = frep.get("recommend", {}).get("best_model")
        out["per_user_ndcg@20"] = paired_users(inc, full, models)
        # more full retrainings on the same data and split, other training seeds: the spread the
        # "within 1% of the full retrain" target is read against
        out["retrains"] = [
            retrain(full, seed + 1000 * (j + 1), models, sets or [], frep["recommend"]["split"])
            for j in range(retrain_seeds)
        ]
    out["wall_ratio"] = out["incremental_seconds"] / out["full_seconds"]
    out["ndcg_relative_difference"] = {
        m: (out["incremental_ndcg@20"][m] - out["full_ndcg@20"][m]) / out["full_ndcg@20"][m]
        for m in out["full_ndcg@20"]
    }
    return out


def _epochs(r: dict[str, Any], run: str, model: str) -> str:
    return _best_last(r.get(f"{run}_best_epochs", {}).get(model))


def _best_last(pair: list[Any] | None) -> str:
    best, last = pair or [None, None]
    return f"{best}/{last}" + (" UNDER-TRAINED" if best is not None and best == last else "")


def summarise(results: list[dict[str, Any]]) -> None:
    """The figures over seeds: wall ratio, and per model the relative NDCG@20 difference with two
    95% intervals (:func:`_intervals`)."""
    ratios = [r["wall_ratio"] for r in results]
    print(
        f"wall ratio over {len(results)} seed(s): mean {statistics.mean(ratios):.3f}"
        + (f" +- {statistics.stdev(ratios):.3f}" if len(ratios) > 1 else "")
        + f"; per seed {', '.join(f'{x:.3f}' for x in ratios)}"
    )
    served = [(r.get("incremental_served"), r.get("full_served")) for r in results]
    print(f"served (best on validation), incremental / full per seed: {served}")
    print(
        "relative NDCG@20 difference, incremental - full: per seed; mean +- std; "
        "95% interval over seeds; 95% interval over user-seed pairs; verdict"
    )
    for m in results[0]["ndcg_relative_difference"]:
        diffs = [r["ndcg_relative_difference"][m] for r in results]
        pairs = [r.get("per_user_ndcg@20", {}).get(m) for r in results]
        users = None
        if all(pairs):
            users = (
                np.concatenate([p["incremental"] for p in pairs]),
                np.concatenate([p["full"] for p in pairs]),
            )
        text, within = _intervals(diffs, users)
        verdict = (
            "within 1%"
            if within
            else "mean within 1%, an interval not"
            if abs(statistics.mean(diffs)) < 0.01
            else "mean outside 1%"
        )
        print(f"{m:12s} {', '.join(f'{d:+.2%}' for d in diffs)}; {text}: {verdict}", flush=True)
    if any(r.get("retrains") for r in results):
        summarise_retrains(results)


def _intervals(diffs: list[float], users: tuple[np.ndarray, np.ndarray] | None) -> tuple[str, bool]:
    """The mean of per-seed relative differences with two 95% intervals, and whether both lie
    inside +-1% ("within 1%").

    The *seed* interval (Student t over the per-seed differences; none with one seed) counts each
    seed's trainings once: it carries the retrain-to-retrain spread, and with 3 seeds it is wide.
    The *user* interval (paired bootstrap of ``a - b`` over the test users of all seeds pooled,
    ``users = (a, b)``, relative to ``b``'s mean) carries only the sampling of users given these
    trainings, so alone it is too narrow."""
    from scipy import stats

    mean = statistics.mean(diffs)
    text = f"{mean:+.2%}"
    seed_ci: tuple[float, float] | None = None
    if len(diffs) > 1:
        sd = statistics.stdev(diffs)
        half = float(stats.t.ppf(0.975, df=len(diffs) - 1)) * sd / len(diffs) ** 0.5
        seed_ci = (mean - half, mean + half)
        text += f" +- {sd:.2%}; seeds [{seed_ci[0]:+.2%}, {seed_ci[1]:+.2%}]"
    user_ci: tuple[float, float] | None = None
    if users is not None:
        a, b = users
        t = paired_test(a, b)
        base = float(b.mean())
        user_ci = (t.ci_low / base, t.ci_high / base)
        text += f"; users ({len(a)}) [{user_ci[0]:+.2%}, {user_ci[1]:+.2%}], p = {t.p_t:.3f}"
    within = all(ci is not None and -0.01 < ci[0] and ci[1] < 0.01 for ci in (seed_ci, user_ci))
    return text, within


def summarise_retrains(results: list[dict[str, Any]]) -> None:
    """How much full retrainings on the same data and split differ (training seed only), and the
    incremental run against their mean, per model: is the refresh's gap more than retraining's?"""
    runs = [r for r in results if r.get("retrains")]
    seeds = [len(r["retrains"]) + 1 for r in runs]
    print(
        f"full retrainings on the same data and split, training seeds only: {seeds} per seed "
        "(the full run's and --retrain-seeds more)"
    )
    for m in runs[0]["full_ndcg@20"]:
        spreads, pairwise, diffs, inc_users, full_users = [], [], [], [], []
        for r in runs:
            fulls = [r["full_ndcg@20"][m], *(t["ndcg@20"][m] for t in r["retrains"])]
            mean = statistics.mean(fulls)
            spreads.append(statistics.stdev(fulls) / mean)
            pairwise += [
                abs(x - y) / statistics.mean([x, y]) for i, x in enumerate(fulls) for y in fulls[i + 1 :]
            ]
            diffs.append((r["incremental_ndcg@20"][m] - mean) / mean)
            paired = r["per_user_ndcg@20"][m]
            tables = [dict(zip(map(str, paired["users"]), paired["full"], strict=True))]
            tables += [t["per_user_ndcg@20"][m] for t in r["retrains"]]
            for user, inc in zip(map(str, paired["users"]), paired["incremental"], strict=True):
                if all(user in table for table in tables):
                    inc_users.append(inc)
                    full_users.append(statistics.mean(table[user] for table in tables))
        print(
            f"{m:12s} full-to-full: std over training seeds {statistics.mean(spreads):.2%} of the mean "
            f"(per seed {', '.join(f'{x:.2%}' for x in spreads)}); two full runs differ by "
            f"{statistics.mean(pairwise):.2%} on average, at most {max(pairwise):.2%}"
        )
        text, within = _intervals(diffs, (np.asarray(inc_users), np.asarray(full_users)))
        print(
            f"{'':12s} incremental - mean of the full runs: {', '.join(f'{d:+.2%}' for d in diffs)}; "
            f"{text}: {'within 1%' if within else 'not within 1%'}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--uri", default="bolt://127.0.0.1:7693")
    parser.add_argument("--models", default="bpr_mf,lightgcn,kg_bpr,kg_lightgcn,kg_knn")
    parser.add_argument("--scratch", default="/tmp/kg-enhance-refresh-bench")
    parser.add_argument("--out", default=None, help="also write the results as JSON lines here")
    parser.add_argument(
        "--summarise", default=None, metavar="JSONL", help="print the summary of a saved --out file and exit"
    )
    parser.add_argument(
        "--mode",
        default="continue",
        choices=["continue", "fold_in"],
        help="kge and recommender warm_start_mode of the incremental run",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="FILE",
        help="profile the incremental run with cProfile (stats in FILE.seedN; its wall time is inflated)",
    )
    parser.add_argument(
        "--incremental-only",
        action="store_true",
        help="stop each seed after the incremental run (no full run on the complete data, no ratio)",
    )
    parser.add_argument(
        "--until", default=None, metavar="STAGE", help="run the stages up to STAGE only (e.g. load: no NDCG)"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a job override for all three runs (e.g. recommender.patience=20); repeat for more",
    )
    parser.add_argument(
        "--retrain-seeds",
        type=int,
        default=0,
        metavar="N",
        help="after the full run, train its recommenders N more times from scratch with other training "
        "seeds (recommender.seed + 1000, + 2000, ...; same data, split and KG embeddings): how much two "
        "full retrainings differ, and the incremental run against their mean",
    )
    args = parser.parse_args()
    if args.retrain_seeds and (args.until or args.incremental_only):
        parser.error(
            "--retrain-seeds needs the full run's recommenders: not with --until or --incremental-only"
        )
    if args.summarise:
        with open(args.summarise, encoding="utf-8") as f:
            summarise([json.loads(line) for line in f if line.strip()])
        return
    scratch = Path(args.scratch)
    models = args.models.split(",")
    print(
        f"machine: {platform.node()}, {os.cpu_count()} CPUs, python {platform.python_version()}; "
        f"neo4j {args.uri}; {time.strftime('%Y-%m-%d %H:%M')}; warm_start_mode {args.mode}; overrides {args.overrides or 'none'}",
        flush=True,
    )
    results = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        r = one_seed(
            seed,
            scratch,
            args.uri,
            models,
            (["--until", args.until] if args.until else [])
            + [a for kv in args.overrides for a in ("--set", kv)],
            args.mode,
            args.profile,
            args.incremental_only,
            [a for kv in args.overrides for a in ("--set", kv)],
            args.retrain_seeds,
        )
        results.append(r)
        print(
            f"seed {seed}: held out {r['held_out_items']} items; first full run {r['first_full_seconds']:.1f} s, "
            f"{r['first_full_llm_calls']} LLM calls",
            flush=True,
        )
        print(
            f"  diff predicted: {r['diff']['subjects']['item']['counts']}, interactions {r['diff']['interactions']}, "
            f"LLM calls {r['diff']['llm']['calls']}"
        )
        print(
            f"  incremental: {r['incremental_seconds']:.1f} s, {r['incremental_llm_calls']} LLM calls, stages {r['incremental_stage_seconds']}"
        )
        if args.incremental_only:
            continue
        print(
            f"  full:        {r['full_seconds']:.1f} s, {r['full_llm_calls']} LLM calls (answers cached), stages {r['full_stage_seconds']}"
        )
        print(f"  wall ratio {r['wall_ratio']:.3f}")
        print(
            f"  served (best on validation): incremental {r['incremental_served']}, full {r['full_served']}"
        )
        for m in r["full_ndcg@20"]:
            print(
                f"  {m:12s} test NDCG@20 incremental {r['incremental_ndcg@20'][m]:.4f} full {r['full_ndcg@20'][m]:.4f} "
                f"relative {r['ndcg_relative_difference'][m]:+.2%}; best/last epoch first full "
                f"{_epochs(r, 'first_full', m)}, full {_epochs(r, 'full', m)}",
                flush=True,
            )
        for t in r.get("retrains", []):
            print(
                f"  full retrained, training seed {t['training_seed']} ({t['seconds']:.0f} s, served {t['served']}): "
                + ", ".join(
                    f"{m} {v:.4f} ({_best_last(t['best_epochs'].get(m))})" for m, v in t["ndcg@20"].items()
                ),
                flush=True,
            )
        if args.out:
            with open(args.out, "a", encoding="utf-8") as f:
                f.write(json.dumps(r) + "\n")
    if args.incremental_only:
        return
    summarise(results)


if __name__ == "__main__":
    main()
