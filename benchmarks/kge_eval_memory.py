"""KG-embedding evaluation, old settings against bounded ones, on k-fold copies of the full MovieLens KG.

Triples: HetRec 2011 directors, genres and countries of all its movies plus the
``ml-latest-small`` catalog genres (``../shared/data/movielens``, see its SOURCES.md), built as
``benchmarks/kge.py`` builds the demo's. Copy ``r > 0`` of the graph suffixes its item ids
(``item:1~1``) and shares the entities, so k copies have about k times the items and triples.

Per k, on the embed stage's split (seed 42, 10% validation, 10% test) and model (TransE, dim 64):

- training, ``--epochs`` epochs at batch 512, twice from the same seed: the old way
  (``pykeen.pipeline``'s loop: automatic memory optimisation on, PyKEEN's per-epoch
  ``gc.collect`` over the whole heap) and the new one (``kg_enhance.kge.train``: off on CPU,
  the heap frozen for those scans); training triples per second;
- one test-set evaluation of the trained model each way, in a fresh child process (so its peak RSS is
  its own): old = PyKEEN's filtered evaluation of the full set at a fixed batch of 1024, no
  slicing (one ``1024 x entities x dim`` float tensor per batch); new = a seeded sample of at
  most ``kge.eval_max_triples`` triples at the batch and slice computed from
  ``kge.eval_memory_mb``. The old evaluation is skipped, with its estimate printed, when its
  one allocation would not fit in the memory available now.

Evaluation seconds, triples per second, peak RSS during the evaluation (and its rise over the
RSS before it) and the MRR are printed side by side, with the evaluation time a 60-epoch run
would spend at each cadence (old: every 5 epochs on the full validation set; new: every
``kge.eval_every`` epochs and the last, on the sample; plus the final test). The two long
evaluations run one after the other under whatever else the machine runs, so a last line per k
compares their speed alternating short runs (``--rate-triples``, best of ``--rate-rounds``).

    .venv/bin/python benchmarks/kge_eval_memory.py [--k 1 2 4] [--epochs 2] [--threads N]
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import gc
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from pykeen.evaluation import RankBasedEvaluator  # noqa: E402
from pykeen.losses import loss_resolver  # noqa: E402
from pykeen.models import Model, model_resolver  # noqa: E402
from pykeen.training import SLCWATrainingLoop  # noqa: E402
from pykeen.triples import CoreTriplesFactory, TriplesFactory  # noqa: E402
from pykeen.utils import set_random_seed  # noqa: E402

from kg_enhance.config.models import KGEConfig  # noqa: E402
from kg_enhance.datasets.movielens import load_hetrec_facts, load_ml_latest_small  # noqa: E402
from kg_enhance.kge.train import (  # noqa: E402
    EvaluationPlan,
    _quiet_pykeen,
    _training_loop,
    evaluation_batch_and_slice,
    floats_per_entity,
    link_prediction_metrics,
    sample_triples,
)
from kg_enhance.names import entity_key  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "movielens"
OLD_BATCH = 1024
OLD_EVERY = 5
RUN_EPOCHS = 60

Triple = tuple[str, str, str]


def base_triples(root: Path) -> list[Triple]:
    gold = load_hetrec_facts(root / "hetrec2011-movielens-2k")
    out = {
        (f"item:{i}", r, f"entity:{entity_key(t, o)}")
        for i, r, o, t in gold[["item_id", "relation", "object", "object_type"]].itertuples(index=False)
    }
    movies = load_ml_latest_small(root / "ml-latest-small")["movies"]
    for mid, genres in movies[["movieId", "genres"]].itertuples(index=False):
        for g in str(genres).split("|"):
            if g and g != "(no genres listed)":
                out.add((f"item:{mid}", "HAS_GENRE", f"entity:{entity_key('Genre', g)}"))
    return sorted(out)


def k_copies(base: list[Triple], k: int) -> list[Triple]:
    out = list(base)
    for r in range(1, k):
        out += [(f"{h}~{r}" if h.startswith("item:") else h, rel, t) for h, rel, t in base]
    return sorted(set(out))


def _status(key: str) -> int:
    """A ``/proc/self/status`` memory line in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) // 1024
    return -1


def _available_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def in_child(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Run one evaluation in a fresh Python process; its seconds and peak RSS (reset before it) come back.

    A fresh process, not a fork: a forked child of a process whose torch thread pool has run
    can block for ever.
    """
    with tempfile.TemporaryDirectory(prefix="kge-eval-memory-") as tmp:
        path = Path(tmp) / "payload.pt"
        torch.save(payload, path)
        command = [
            sys.executable,
            __file__,
            "--child",
            kind,
            str(path),
            "--threads",
            str(torch.get_num_threads()),
        ]
        proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode < 0:
        sig = signal.Signals(-proc.returncode).name
        return {"error": f"killed by {sig}" + (" (out of memory?)" if sig == "SIGKILL" else "")}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {"error": f"exit {proc.returncode}: {(proc.stderr.strip().splitlines() or [''])[-1][:160]}"}
    return dict(json.loads(lines[-1]))


def child(kind: str, path: Path) -> None:
    """The child side of :func:`in_child`: load the payload, reset the peak, evaluate, print JSON."""
    payload = torch.load(path, weights_only=False)
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap back, so the rise is the evaluation's own
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    before = _status("VmRSS")
    started = time.perf_counter()
    if kind == "old":
        out = old_eval(payload["model"], payload["triples"], payload["known"], payload["batch"])
    else:
        out = new_eval(payload["model"], payload["triples"], payload["known"], payload["plan"])
    out.update(seconds=time.perf_counter() - started, rss_before_mib=before, peak_rss_mib=_status("VmHWM"))
    print(json.dumps(out))


def train(cfg: KGEConfig, training: CoreTriplesFactory, epochs: int, *, old: bool) -> tuple[Model, float]:
    """Train ``epochs`` epochs; the training triples per second."""
    set_random_seed(cfg.seed)
    model = model_resolver.make(
        cfg.model,
        triples_factory=training,
        embedding_dim=cfg.dim,
        loss=loss_resolver.make(cfg.loss),
        random_seed=cfg.seed,
    )
    if old:  # as pykeen.pipeline built it: automatic memory optimisation on (PyKEEN's default)
        loop: Any = SLCWATrainingLoop(
            model=model,
            triples_factory=training,
            optimizer="Adam",
            optimizer_kwargs={"lr": cfg.learning_rate},
            negative_sampler=cfg.negative_sampler,
            negative_sampler_kwargs={"num_negs_per_pos": cfg.num_negs_per_pos},
        )
    else:
        loop = _training_loop(cfg, model, training, amo=False)
    started = time.perf_counter()
    if not old:
        gc.freeze()
    try:
        loop.train(triples_factory=training, num_epochs=epochs, batch_size=cfg.batch_size, use_tqdm=False)
    finally:
        gc.unfreeze()
    seconds = time.perf_counter() - started
    return model, training.num_triples * epochs / seconds


def old_eval(model: Model, triples: torch.Tensor, known: list[torch.Tensor], batch: int) -> dict[str, Any]:
    """The old settings: the full set, a fixed batch, every entity scored at once."""
    result = RankBasedEvaluator(filtered=True).evaluate(
        model, triples, additional_filter_triples=known, batch_size=batch, slice_size=None, use_tqdm=False
    )
    return {"mrr": float(result.get_metric("both.realistic.inverse_harmonic_mean_rank"))}


def new_eval(
    model: Model, triples: torch.Tensor, known: list[torch.Tensor], plan: EvaluationPlan
) -> dict[str, Any]:
    """The new settings, as ``train_kge`` ranks the test split."""
    return {"mrr": link_prediction_metrics(model, triples, known_triples=known, plan=plan)["mrr"]}


@dataclass
class Row:
    setting: str
    train_rate: float
    eval_triples: int
    batch: int
    slice_size: int
    estimate_bytes: int
    result: dict[str, Any]
    rounds: int


def interleaved_rates(
    model: Model,
    triples: torch.Tensor,
    known: list[torch.Tensor],
    old_batch: int | None,
    plan: EvaluationPlan,
    rounds: int,
) -> tuple[float | None, float]:
    """Triples per second of each setting on the same triples, alternating, best of ``rounds``.

    One long evaluation after another meets whatever else the machine runs at the time;
    alternating short ones compare the settings under the same load.
    """
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name in ("old", "new") if old_batch is not None else ("new",):
            started = time.perf_counter()
            if name == "old":
                assert old_batch is not None
                old_eval(model, triples, known, old_batch)
            else:
                new_eval(model, triples, known, plan)
            rate = triples.shape[0] / (time.perf_counter() - started)
            best[name] = max(best.get(name, 0.0), rate)
    return best.get("old"), best["new"]


def run_k(
    base: list[Triple], k: int, cfg: KGEConfig, epochs: int, rate_triples: int, rate_rounds: int
) -> tuple[int, int, list[Row], tuple[float | None, float]]:
    triples = k_copies(base, k)
    tf = TriplesFactory.from_labeled_triples(np.array(triples, dtype=str))
    training, validation, testing = tf.split(
        [1.0 - 2 * cfg.test_ratio, cfg.test_ratio, cfg.test_ratio], random_state=cfg.seed
    )
    _, old_rate = train(cfg, training, epochs, old=True)
    model, new_rate = train(cfg, training, epochs, old=False)
    model.eval()
    width = floats_per_entity(model)
    known = [training.mapped_triples, validation.mapped_triples]
    old_batch = min(OLD_BATCH, testing.num_triples)
    old_bytes = old_batch * tf.num_entities * width * 4
    if old_bytes * 1.25 > _available_bytes():
        old = {"error": f"skipped: one {old_bytes / 2**30:.1f} GiB allocation, more than is available now"}
    else:
        old = in_child(
            "old", {"model": model, "triples": testing.mapped_triples, "known": known, "batch": old_batch}
        )
    plan = evaluation_batch_and_slice(
        tf.num_entities, width, cfg.eval_memory_mb * 2**20, num_filter_triples=tf.num_triples
    )
    sample = sample_triples(testing.mapped_triples, cfg.eval_max_triples, cfg.seed)
    new = in_child(
        "new", {"model": model, "triples": sample, "known": [*known, testing.mapped_triples], "plan": plan}
    )
    head = testing.mapped_triples[:rate_triples]
    fits = min(OLD_BATCH, rate_triples) * tf.num_entities * width * 4 * 1.25 < _available_bytes()
    rates = interleaved_rates(
        model, head, [*known, testing.mapped_triples], OLD_BATCH if fits else None, plan, rate_rounds
    )
    # evaluations a 60-epoch run makes (validation is about the test set's size), plus the final test
    old_rounds = RUN_EPOCHS // OLD_EVERY + 1
    new_rounds = RUN_EPOCHS // cfg.eval_every + (RUN_EPOCHS % cfg.eval_every != 0) + 1
    return (
        tf.num_entities,
        tf.num_triples,
        [
            Row("old", old_rate, testing.num_triples, old_batch, tf.num_entities, old_bytes, old, old_rounds),
            Row(
                "new",
                new_rate,
                int(sample.shape[0]),
                plan.batch_size,
                plan.slice_size,
                plan.estimated_bytes,
                new,
                new_rounds,
            ),
        ],
        rates,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--k", type=int, nargs="+", default=[1, 2, 4], help="graph copies (default 1 2 4)")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs per variant (default 2)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument(
        "--rate-triples", type=int, default=1024, help="test triples for the alternating speed check (1024)"
    )
    parser.add_argument(
        "--rate-rounds", type=int, default=3, help="rounds of the alternating speed check (3)"
    )
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PAYLOAD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    _quiet_pykeen()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    cfg = KGEConfig()  # the embed stage's defaults: TransE, dim 64, batch 512, seed 42
    load = os.getloadavg()
    print(
        f"{datetime.date.today()} on {platform.node()}: {os.cpu_count()} CPUs, load average "
        f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}, {_available_bytes() / 2**30:.1f} GiB available, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads"
    )
    print(
        f"{cfg.model} dim {cfg.dim}, training batch {cfg.batch_size}, {args.epochs} epochs per variant; "
        f"new evaluation: budget {cfg.eval_memory_mb} MiB, at most {cfg.eval_max_triples} triples, "
        f"every {cfg.eval_every} epochs; old: batch {OLD_BATCH}, full sets, every {OLD_EVERY} epochs"
    )
    base = base_triples(args.data)
    print(
        f"{'k':>2} {'entities':>8} {'triples':>7} {'setting':>7} {'train tr/s':>10} {'eval triples':>12} "
        f"{'batch':>5} {'slice':>6} {'est. MiB':>8} {'eval s':>7} {'eval tr/s':>9} {'peak RSS MiB':>12} "
        f"{'rise MiB':>8} {'MRR':>7} {'60-epoch run eval s':>19}"
    )
    for k in args.k:
        entities, n_triples, rows, (old_rate, new_rate) = run_k(
            base, k, cfg, args.epochs, args.rate_triples, args.rate_rounds
        )
        for row in rows:
            lead = (
                f"{k:>2} {entities:>8,} {n_triples:>7,} {row.setting:>7} {row.train_rate:>10,.0f} "
                f"{row.eval_triples:>12,} {row.batch:>5} {row.slice_size:>6} {row.estimate_bytes / 2**20:>8,.0f}"
            )
            res = row.result
            if "error" in res:
                print(f"{lead}  {res['error']}")
                continue
            seconds, peak, before = (
                float(res["seconds"]),
                int(res["peak_rss_mib"]),
                int(res["rss_before_mib"]),
            )
            print(
                f"{lead} {seconds:>7.1f} {row.eval_triples / seconds:>9.0f} {peak:>12,} {peak - before:>8,} "
                f"{float(res['mrr']):>7.4f} {row.rounds * seconds:>19,.0f}"
            )
        print(
            f"   k={k} alternating, best of {args.rate_rounds} on the first {args.rate_triples} test triples: "
            f"old {f'{old_rate:,.0f}' if old_rate else 'skipped'} triples/s, new {new_rate:,.0f} triples/s"
        )
        sys.stdout.flush()
    print(
        "train tr/s: training triples x epochs / seconds; est. MiB: old = the one batch x entities x dim float "
        "tensor, new = batch x (slice x dim floats + entities x 16 bytes); peak RSS: the evaluating process's "
        "VmHWM, rise: over its RSS before the evaluation; 60-epoch run eval s: the evaluations such a run makes "
        f"(old {RUN_EPOCHS // OLD_EVERY} + test, new {RUN_EPOCHS // cfg.eval_every} + test) x this one's seconds"
    )


if __name__ == "__main__":
    main()
