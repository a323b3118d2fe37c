"""The long tail on the full ml-latest-small job: which settings let a model leave the head?

The job is the one of ``benchmarks/scale.py`` at k = 1 (9,742 movies, 100,836 ratings,
HetRec directors, countries and tags as gold facts, genres from the catalog; LLM off;
TransE 64-d). The script runs ``extract``, ``load`` and ``embed`` once (``--reuse`` keeps an
earlier run's graph and vectors), then trains the four recommenders on the job's split
(fixed by the job's seed) for each setting variant and each training seed, in one process.

For each model it prints test NDCG@20, coverage@20, long-tail NDCG@20 (test items outside
the 20% most-interacted items, ranked among all items: the reported slice) and
**tail-only NDCG@20**: the same slice with the head items removed from the ranking. The
last one asks whether a model's vectors order the tail well at all, apart from how far
below the head it puts it; it is a diagnostic here, not a metric the pipeline reports.

Variants (``--variants``, JSON: name -> ``recommender`` overrides), default:

* ``uniform``: the job's settings (negatives drawn uniformly);
* ``popularity``: ``recommender.negatives: popularity`` with ``negative_alpha: 1.0``.

A variant may set its own ``models`` (for example ``[{"type": "lightgcn"}, {"type": "kg_hybrid"}]``).

A variant may set ``tail_slots`` (the last positions of every list reserved for tail items,
the same for every model); its figures are then of lists ranked so. For each variant the
script also compares each KG-joined model with each no-KG one on the long-tail slice, paired
over the same test users pooled over the seeds, and flags trainings whose best epoch was the
last allowed one (under-trained).

Runs against an existing Neo4j (``--uri``, default the test server's bolt 7688) in its own
namespace (``long-tail-k1``).

    .venv/bin/python benchmarks/long_tail.py [--seeds 0,1,2] [--uri bolt://127.0.0.1:7688] [--out F.jsonl]

Seeds can run in several processes side by side (``--reuse --threads 1 --out`` each, once one run
has built the graph and vectors); ``--summarise A.jsonl B.jsonl`` then prints the pooled summary,
with one more test: over users, of each user's difference averaged over the seeds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.scale import write_copies, write_job  # noqa: E402
from kg_enhance.config.job import load_job  # noqa: E402
from kg_enhance.config.models import RecommenderConfig  # noqa: E402
from kg_enhance.graph.store import Neo4jStore  # noqa: E402
from kg_enhance.kge.artifacts import load_embeddings_dir  # noqa: E402
from kg_enhance.rec.evaluate import Slices  # noqa: E402
from kg_enhance.rec.kg import build_kg_inputs  # noqa: E402
from kg_enhance.rec.protocol import crossed_test, paired_test, under_trained  # noqa: E402
from kg_enhance.rec.train import TrainedModel, tail_slots_of, train_model  # noqa: E402
from kg_enhance.rundir import outputs_path  # noqa: E402
from kg_enhance.stages.recommend import needs_kg, recommend_split  # noqa: E402

DEFAULT_VARIANTS = {"uniform": {}, "popularity": {"negatives": "popularity", "negative_alpha": 1.0}}


def tail_only_ndcg(trained: TrainedModel, split: Any, slices: Slices, k: int) -> float:
    """Long-tail NDCG@k with every head item pushed below every tail item (one extra column).
    NaN for a model that adds neighbourhood terms to its dot product (``*_knn``): the extra column
    cannot push those terms, so the figure would be its LightGCN's, not its own."""
    if trained.model.extra_scores() is not None:
        return float("nan")
    users, items = (t.detach() for t in trained.model.representations())
    head = torch.as_tensor(~slices.tail_mask, dtype=items.dtype, device=items.device)  # type: ignore[operator]
    users = torch.cat([users, torch.ones(len(users), 1, dtype=users.dtype, device=users.device)], 1)
    items = torch.cat([items, -1e6 * head[:, None]], 1)
    got = slices.evaluators(split, k=k)["long_tail"].evaluate(users, items)
    return float(got[f"ndcg@{k}"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="training seeds (the split stays the job's)")
    parser.add_argument("--uri", default="bolt://127.0.0.1:7688")
    parser.add_argument("--scratch", default="/tmp/kg-enhance-long-tail")
    parser.add_argument("--variants", default=json.dumps(DEFAULT_VARIANTS), help="JSON: name -> overrides")
    parser.add_argument("--reuse", action="store_true", help="keep the graph and vectors of an earlier run")
    parser.add_argument("--out", default=None, help="also write one JSON line per model and seed here")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument(
        "--summarise",
        nargs="+",
        default=None,
        metavar="JSONL",
        help="print the summary of saved --out files (runs of other seeds pooled) and exit",
    )
    args = parser.parse_args()
    if args.summarise:
        summarise(*read_rows(args.summarise))
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    variants: dict[str, dict[str, Any]] = json.loads(args.variants)
    folder = Path(args.scratch) / "k1"
    print(
        f"machine: {platform.node()}, python {platform.python_version()}, torch threads "
        f"{torch.get_num_threads()}; {time.strftime('%Y-%m-%d %H:%M')}; seeds {seeds}",
        flush=True,
    )
    if not args.reuse or not (folder / "job.yaml").exists():
        write_copies(folder, 1)
        path = write_job(folder, 1, device="cpu", uri=args.uri)
        path.write_text(path.read_text().replace("name: scale-k1", "name: long-tail-k1"))
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "kg_enhance.cli",
                "run",
                str(path),
                "--only",
                "extract,load,embed",
                "--full",
                "--no-progress",
            ],
            cwd=REPO,
            check=True,
        )
        print(f"extract + load + embed: {time.perf_counter() - started:.1f} s", flush=True)
    job = load_job(folder / "job.yaml")
    cfg0 = job.recommender
    split = recommend_split(job)
    slices = Slices.from_split(split, head_share=cfg0.head_share, few=cfg0.few_interactions)
    with Neo4jStore.for_job(job) as store:  # the job's namespace
        triples = store.item_fact_triples(job.kge.sources)
    if not triples:
        raise SystemExit(f"no item facts in namespace {job.namespace!r} at {args.uri}: run without --reuse")
    kg = build_kg_inputs(load_embeddings_dir(outputs_path(job)), split, triples)
    tail_users = len(slices.evaluators(split, k=cfg0.k)["long_tail"].users)
    print(
        f"{split.n_users} users, {split.n_items} items, {len(split.train)} training positives; "
        f"{len(slices.tail_items)} tail items, {tail_users} test users with a tail item",
        flush=True,
    )
    k = cfg0.k
    # what each row was measured on: --summarise pools only rows of the same split, users and variant
    tail_users_ids = np.asarray(slices.evaluators(split, k=k)["long_tail"].users, dtype=np.int64)
    measured_on = {
        "split": [split.n_users, split.n_items, len(split.train)],
        "tail_users_sha256": hashlib.sha256(tail_users_ids.tobytes()).hexdigest()[:16],
    }
    rows: list[dict[str, Any]] = []
    tail_per_user: dict[tuple[str, int, str], np.ndarray] = {}
    sink = open(args.out, "a") if args.out else None  # noqa: SIM115
    for name, overrides in variants.items():
        for seed in seeds:
            # validated: a misspelt setting is an error, not a silently different run
            cfg = RecommenderConfig.model_validate({**cfg0.model_dump(), **overrides, "seed": seed})
            for spec in cfg.models:
                trained = train_model(spec, split, cfg, kg=kg, slices=slices, progress=False)
                # the long-tail slice per test user, ranked as the model was judged (its tail_slots)
                slice_eval = slices.evaluators(split, k=k, tail_slots=tail_slots_of(split, cfg))["long_tail"]
                with torch.no_grad():
                    tail_per_user[(name, seed, spec.key)] = np.asarray(
                        slice_eval.per_user(
                            *trained.model.representations(), extra=trained.model.extra_scores()
                        )["ndcg"],
                        dtype=np.float64,
                    )
                got_tail = float(trained.slices["long_tail"][f"ndcg@{k}"])
                if not np.isclose(tail_per_user[(name, seed, spec.key)].mean(), got_tail):
                    raise SystemExit(
                        f"{spec.key}: the per-user long-tail figures disagree with the model's report"
                    )
                row = {
                    "variant": name,
                    "seed": seed,
                    "model": spec.key,
                    "type": spec.type,
                    f"ndcg@{k}": trained.test[f"ndcg@{k}"],
                    f"valid_ndcg@{k}": trained.valid[f"ndcg@{k}"],
                    f"coverage@{k}": trained.test[f"coverage@{k}"],
                    f"long_tail_ndcg@{k}": float(trained.slices["long_tail"][f"ndcg@{k}"]),
                    f"tail_only_ndcg@{k}": tail_only_ndcg(trained, split, slices, k),
                    "best_epoch": trained.best_epoch,
                    "epochs": trained.epochs,
                    "under_trained": under_trained(trained.best_epoch, trained.epochs_allowed),
                    "train_seconds": round(trained.seconds, 1),
                    **measured_on,
                    "overrides": overrides,
                    # one figure per test user with a tail item, in the split's user order: what
                    # --summarise pools over runs of other seeds
                    "long_tail_per_user": [float(v) for v in tail_per_user[(name, seed, spec.key)]],
                }
                rows.append(row)
                print(json.dumps({key: v for key, v in row.items() if key not in _BULKY}), flush=True)
                if sink is not None:
                    sink.write(json.dumps(row) + "\n")
                    sink.flush()
    if sink is not None:
        sink.close()
    if rows:  # none with --variants '{}': a run that only builds the graph and vectors
        summarise(rows, tail_per_user)


_BULKY = ("long_tail_per_user", "overrides")
#: fields two rows pooled by --summarise must share (rows written before they were saved lack them)
_SAME = ("split", "tail_users_sha256")


def read_rows(paths: list[str]) -> tuple[list[dict[str, Any]], dict[tuple[str, int, str], np.ndarray]]:
    """Rows and per-user long-tail figures of saved ``--out`` files.

    A (variant, seed, model) seen twice must hold the same figures (a rerun of a seed is a check,
    not a second sample). Rows must share the split and the tail users, and a variant's rows its
    overrides, where the rows record them."""
    rows: list[dict[str, Any]] = []
    tail_per_user: dict[tuple[str, int, str], np.ndarray] = {}
    where: dict[tuple[str, int, str], str] = {}
    first: dict[str, tuple[str, Any]] = {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                at = f"{path}:{number}"
                try:
                    row = json.loads(line)
                    key = (row["variant"], int(row["seed"]), row["model"])
                    values = np.asarray(row.pop("long_tail_per_user"), dtype=np.float64)
                except (ValueError, KeyError) as e:
                    raise SystemExit(
                        f"{at}: not a row of long_tail.py --out ({type(e).__name__}: {e}); a row cut short by "
                        "a killed run, or one written before the per-user figures were saved: run that seed again"
                    ) from None
                for field in (*_SAME, f"overrides of {key[0]}"):
                    name = field.split(" ")[0]
                    if name not in row:
                        continue
                    seen = first.setdefault(field, (at, row[name]))
                    if seen[1] != row[name]:
                        raise SystemExit(f"{at}: {field} {row[name]!r} differs from {seen[0]}'s {seen[1]!r}")
                if key in tail_per_user:
                    old = tail_per_user[key]
                    if values.shape != old.shape or not np.allclose(values, old):
                        raise SystemExit(f"{at}: {key} differs from the same run's figures at {where[key]}")
                    continue
                tail_per_user[key] = values
                where[key] = at
                rows.append(row)
    if not rows:
        raise SystemExit(f"no rows in {', '.join(paths)}")
    if len({v.shape for v in tail_per_user.values()}) != 1:
        raise SystemExit(f"rows of {', '.join(paths)} hold different numbers of tail users: not one split")
    order = {name: i for i, name in enumerate(dict.fromkeys(r["variant"] for r in rows))}
    rows.sort(key=lambda r: (order[r["variant"]], int(r["seed"])))  # stable: models keep their order
    return rows, tail_per_user


def summarise(rows: list[dict[str, Any]], tail_per_user: dict[tuple[str, int, str], np.ndarray]) -> None:
    """Mean ± std per variant and model over the seeds, and the paired long-tail tests of every
    KG-joined model against every no-KG one, three ways:

    * over (seed, user) pairs pooled (as earlier runs reported; users recur in every seed, so
      these pairs are not independent);
    * over users, of each user's difference averaged over the seeds (other users, these trainings);
    * crossed (:func:`~kg_enhance.rec.protocol.crossed_test`): over the seeds' mean differences,
      and a bootstrap resampling seeds and users (other users *and* other trainings)."""
    k = next(int(key.split("@")[1]) for key in rows[0] if key.startswith("ndcg@"))
    seeds = sorted({int(r["seed"]) for r in rows})
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    for name in variants:
        its_seeds = sorted({int(r["seed"]) for r in rows if r["variant"] == name})
        if its_seeds != seeds:
            raise SystemExit(
                f"variant {name!r} has seeds {its_seeds}, others {seeds}: summarise like with like"
            )
        models = {s_: [r["model"] for r in rows if r["variant"] == name and r["seed"] == s_] for s_ in seeds}
        if len({tuple(m) for m in models.values()}) != 1:
            raise SystemExit(f"variant {name!r}: not every seed has every model ({models}); a run cut short?")
    metrics = [f"ndcg@{k}", f"coverage@{k}", f"long_tail_ndcg@{k}", f"tail_only_ndcg@{k}"]
    print(f"\nmean ± std over seeds {seeds}:")
    print(f"{'variant':12s} {'model':12s} " + " ".join(f"{m:>22s}" for m in metrics) + "  best epochs")

    def variant_models(name: str) -> list[str]:
        """The models a variant trained (a variant may set its own ``models``), in training order."""
        return list(dict.fromkeys(r["model"] for r in rows if r["variant"] == name))

    for name in variants:
        for key in variant_models(name):
            got = [r for r in rows if r["variant"] == name and r["model"] == key]
            cells = []
            for m in metrics:
                vals = [r[m] for r in got]
                if any(v != v for v in vals):  # NaN: tail-only of a *_knn model
                    cells.append("n/a".rjust(22))
                    continue
                sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
                cells.append(f"{statistics.mean(vals):.5f} ± {sd:.5f}".rjust(22))
            best = ",".join(str(r["best_epoch"]) + ("*" if r["under_trained"] else "") for r in got)
            print(f"{name:12s} {key:12s} " + " ".join(cells) + f"  {best}")
    print("(* under-trained: the best epoch was the last allowed one)")
    print(f"\nlong-tail NDCG@{k}, KG-joined minus no-KG, paired over test users pooled over seeds {seeds}:")
    for name in variants:
        types = {r["model"]: r["type"] for r in rows if r["variant"] == name}
        kg_keys = [key for key in variant_models(name) if needs_kg(types[key])]
        plain = [key for key in variant_models(name) if not needs_kg(types[key])]
        for a_key in kg_keys:
            for b_key in plain:
                a = np.concatenate([tail_per_user[(name, s_, a_key)] for s_ in seeds])
                b = np.concatenate([tail_per_user[(name, s_, b_key)] for s_ in seeds])
                t = paired_test(a, b)
                wins = sum(
                    tail_per_user[(name, s_, a_key)].mean() > tail_per_user[(name, s_, b_key)].mean()
                    for s_ in seeds
                )
                print(
                    f"{name:12s} {a_key} - {b_key}: {t.diff:+.5f} over {t.n} user-seed pairs, 95% CI "
                    f"[{t.ci_low:+.5f}, {t.ci_high:+.5f}], paired t p = {t.p_t:.3f}, bootstrap p = "
                    f"{t.p_bootstrap:.3f}; ahead in {wins} of {len(seeds)} seeds"
                )
                a2 = np.stack([tail_per_user[(name, s_, a_key)] for s_ in seeds])
                b2 = np.stack([tail_per_user[(name, s_, b_key)] for s_ in seeds])
                u = paired_test(a2.mean(axis=0), b2.mean(axis=0))
                print(
                    f"{'':12s} over {u.n} users (each user's mean over the seeds): {u.diff:+.5f}, 95% CI "
                    f"[{u.ci_low:+.5f}, {u.ci_high:+.5f}], paired t p = {u.p_t:.3f}, bootstrap p = "
                    f"{u.p_bootstrap:.3f}"
                )
                per_user = (a2 - b2).mean(axis=0)
                if per_user.any():
                    top = float(np.abs(per_user).max() / np.abs(per_user).sum())
                    print(
                        f"{'':12s} users with a tail hit in some seed: {int((a2 > 0).any(axis=0).sum())} ({a_key}), "
                        f"{int((b2 > 0).any(axis=0).sum())} ({b_key}); {int((per_user != 0).sum())} users differ, "
                        f"the largest carries {top:.0%} of the summed absolute difference"
                    )
                if len(seeds) > 1:
                    c = crossed_test(a2, b2)
                    print(
                        f"{'':12s} crossed, {c.seeds} seeds x {c.users} users: {c.diff:+.5f}, two-way bootstrap "
                        f"95% CI [{c.ci_low:+.5f}, {c.ci_high:+.5f}], p = {c.p_bootstrap:.4f}; over the "
                        f"seeds' means: paired t p = {c.p_t_seeds:.4f}, sign-flip p = {c.p_sign_flip_seeds:.4f}"
                    )


if __name__ == "__main__":
    main()
