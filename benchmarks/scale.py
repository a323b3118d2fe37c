"""How the pipeline grows with the catalog: k-fold copies of the full ml-latest-small + HetRec job.

For each k (default 1, 2, 4, 8) the script writes a job over k copies of the full
``ml-latest-small`` (9,742 movies, 100,836 ratings, 610 users) with every HetRec
director, country and tag as gold facts (genres come from the catalog); copy r > 0 gets
suffixed item and user ids (``<id>~r``), while entities (people, countries, themes,
genres) are shared, as they are between the items of a real catalog. LLM off; the demo's
model settings (TransE 64-d, 60 epochs with early stopping, all four recommenders).

Every stage runs as its own ``kg-enhance run JOB --only STAGE`` process, so each gets
its own wall time, CPU time and peak RSS (``os.wait4``). The script prints a table per
stage and k, and the fitted growth exponent of CPU time and peak RSS against k
(least squares on log-log): 1.0 is linear.

With ``--baseline COMMIT`` it also runs the whole pipeline at k = 1 twice, each from nothing
(an emptied database, no run folder): once with this code (``kg-enhance run --full``), once
with the code of ``COMMIT`` (checked out into a scratch folder with ``git worktree`` and run
from there, same virtual environment), and prints the ratio. ``--k ""`` skips the per-stage
runs and makes only that comparison.

It runs its own Neo4j (state in ``.kg-enhance/bench-home``, bolt 7689, http 7476) so it
never touches the demo or test databases, and empties it between runs.

The load stage's work happens mostly inside Neo4j, so with the script's own server the CPU
seconds of the Neo4j JVM during each stage are printed too, and a second exponent counts
them. ``--whole`` also runs the whole pipeline at k = 1 as one ``kg-enhance run`` process.

``--store memory`` is for a machine with no Neo4j (the GPU machine: no Java there, and Neo4j
cannot travel to it): each k's whole pipeline runs in one child process with the graph in
:class:`~kg_enhance.graph.memory.InMemoryGraphStore`, the pure-Python store the unit tests use
(kept equal to Neo4j by the store contract test). The embed and recommend stages are the same
code reading the same graph through the same ``GraphStore`` interface, so their figures are
the pipeline's; load and export then measure that Python store, not Neo4j, and are labelled
so. Per-stage wall, CPU and peak RSS come from the run report's ``stages`` section; with CUDA
the peak GPU memory of each stage is printed too. ``--budget-s`` skips a k whose projected
time (the last k's, scaled by the ratio of the k's) would not fit in what is left.

    .venv/bin/python benchmarks/scale.py [--k 1,2,4,8] [--whole] [--baseline 322b3d1] [--device cpu]
    python3 benchmarks/scale.py --store memory --device cuda --k 1,2,4,8,16 --budget-s 480 --data DIR
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("KG_ENHANCE_HOME", str(REPO / ".kg-enhance" / "bench-home"))
os.environ.setdefault("KG_ENHANCE_NEO4J_BOLT_PORT", "7689")
os.environ.setdefault("KG_ENHANCE_NEO4J_HTTP_PORT", "7476")
os.environ.setdefault("KG_ENHANCE_NEO4J_HEAP", "2g")
os.environ.setdefault("KG_ENHANCE_NEO4J_PAGECACHE", "1g")
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from kg_enhance.config.models import Neo4jConfig  # noqa: E402
from kg_enhance.datasets.movielens import hetrec_gold_facts  # noqa: E402
from kg_enhance.graph.store import Neo4jStore  # noqa: E402
from kg_enhance.services import neo4j as neo4j_service  # noqa: E402

#: the movielens folder of the shared data (``ml-latest-small/``, ``hetrec2011-movielens-2k/``);
#: ``--data`` or ``KG_ENHANCE_SCALE_DATA`` points elsewhere (a copy carried to another machine)
DATA = Path(os.environ.get("KG_ENHANCE_SCALE_DATA", REPO.parent / "shared" / "data" / "movielens"))
STAGES = ("load", "embed", "recommend", "export")
#: whether the Neo4j server is the script's own (its CPU time is then read per stage)
OWN_NEO4J = False


def gold_facts() -> pd.DataFrame:
    """HetRec directors and countries, and tags as themes (genres come from the catalog); every HetRec movie.

    The package builds them (:func:`kg_enhance.datasets.movielens.hetrec_gold_facts`, also behind
    ``kg-enhance datasets prepare ml-latest-small``); this name stays for the other benchmarks.
    """
    return hetrec_gold_facts(DATA / "hetrec2011-movielens-2k")


def write_copies(folder: Path, k: int) -> dict[str, int]:
    """k copies of the catalog, ratings and gold facts under suffixed ids; entities shared."""
    folder.mkdir(parents=True, exist_ok=True)
    ml = DATA / "ml-latest-small"
    movies = pd.read_csv(ml / "movies.csv", dtype=str)
    ratings = pd.read_csv(ml / "ratings.csv", dtype=str)
    gold = gold_facts()
    gold = gold[gold["item_id"].isin(set(movies["movieId"]))]

    def copies(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
        parts = []
        for r in range(k):
            part = df.copy()
            if r:
                for c in columns:
                    part[c] = part[c] + f"~{r}"
            parts.append(part)
        return pd.concat(parts, ignore_index=True)

    m = copies(movies, ["movieId"])
    rt = copies(ratings, ["movieId", "userId"])
    g = copies(gold, ["item_id"])
    m.to_csv(folder / "movies.csv", index=False)
    rt.to_csv(folder / "ratings.csv", index=False)
    g.to_csv(folder / "gold.tsv", sep="\t", index=False)
    return {"items": len(m), "ratings": len(rt), "gold_facts": len(g), "users": rt["userId"].nunique()}


def write_job(folder: Path, k: int, *, device: str, uri: str) -> Path:
    """A job both the current and the baseline code accept (no keys newer than the baseline)."""
    job = folder / "job.yaml"
    job.write_text(
        f"""version: 1
name: scale-k{k}
ontology: {REPO / "schemas" / "movies.yaml"}
source:
  items:
    path: {folder / "movies.csv"}
    id_column: movieId
    title_column: title
    text_fields: [title, genres]
    fact_columns:
      - {{column: genres, relation: HAS_GENRE, object_type: Genre, separator: "|", ignore: ["(no genres listed)"]}}
  interactions:
    path: {folder / "ratings.csv"}
    user_column: userId
    item_column: movieId
    rating_column: rating
    timestamp_column: timestamp
    positive_threshold: 4.0
  facts:
    - name: hetrec
      path: {folder / "gold.tsv"}
llm:
  enabled: false
neo4j:
  uri: {uri}
kge:
  model: TransE
  dim: 64
  epochs: 60
  device: {device}
recommender:
  models: [{{type: bpr_mf}}, {{type: lightgcn}}, {{type: kg_bpr}}, {{type: kg_lightgcn}}]
  epochs: 60
  k: 20
  device: {device}
outputs:
  dir: {folder / "run"}
"""
    )
    return job


@dataclass
class Measured:
    wall: float
    cpu: float
    rss_mb: float
    ok: bool
    tail: str
    #: CPU seconds the Neo4j server spent meanwhile (None with --uri: not our process)
    neo4j_cpu: float | None = None


def model_figures(run: Path, k: int) -> list[str]:
    """Per-model lines of one k's run folder: the recommenders' epochs, training seconds, test
    NDCG@20, long-tail NDCG@20 and coverage, flags (``recommend/metrics.json``), and the KGE's
    (``embeddings/LATEST``'s metadata)."""
    import json

    lines = []
    metrics = run / "recommend" / "metrics.json"
    if metrics.exists():
        rec = json.loads(metrics.read_text(encoding="utf-8"))
        for name, rep in rec.items():
            if not isinstance(rep, dict) or "best_epoch" not in rep:
                continue
            epochs = max(1, int(rep["epochs"]))
            flags = [f for f in ("under_trained", "stopped_too_early") if rep.get(f)]
            lines.append(
                f"  k={k} {name:12s} epochs {epochs:3d} best {rep['best_epoch']:3d} train "
                f"{rep['train_seconds']:7.1f} s ({rep['train_seconds'] / epochs:.2f} s/epoch)"
                + (f" final eval {rep['eval_seconds']:.1f} s" if "eval_seconds" in rep else "")
                + "  NDCG@20 "
                f"{rep['test']['ndcg@20']:.4f}  long-tail {rep['slices']['long_tail']['ndcg@20']:.5f}  coverage "
                f"{rep['test']['coverage@20']:.3f}  tail slots {rec.get('tail_slots', 0)}"
                + (f"  FLAGGED {', '.join(flags)}" if flags else "")
            )
        parts = rec.get("seconds_by_part")
        if parts:
            lines.append(
                f"  k={k} recommend stage by part: " + ", ".join(f"{n} {v:.1f} s" for n, v in parts.items())
            )
    latest = run / "embeddings" / "LATEST"
    if latest.exists():
        meta = json.loads((run / "embeddings" / latest.read_text().strip() / "metadata.json").read_text())
        lines.append(
            f"  k={k} KGE {meta['model']} {meta['entities']} entities, epochs {meta['epochs_run']} best "
            f"{meta['best_epoch']}, batch {meta['train_batch_size']}, train {meta['train_seconds']:.1f} s, "
            f"eval {meta['eval_seconds']:.1f} s, MRR {meta.get('metrics', {}).get('mrr', float('nan')):.4f}"
            + ("  FLAGGED under_trained" if meta.get("under_trained") else "")
        )
    return lines


def neo4j_cpu_seconds() -> float | None:
    """User + system CPU seconds of the script's own Neo4j server so far (its JVM's /proc stat)."""
    pid = neo4j_service.status().pid
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_cli(
    args: list[str], *, env: dict[str, str] | None = None, cwd: Path = REPO, timeout: float = 3600
) -> Measured:
    """One ``kg-enhance`` process: wall, user+system CPU and peak RSS of that process alone.

    ``python -m`` puts the working folder first on ``sys.path``, so ``cwd`` decides which
    checkout's ``kg_enhance`` runs (the baseline's worktree for ``--baseline``).
    """
    started = time.perf_counter()
    server_before = neo4j_cpu_seconds() if OWN_NEO4J else None
    proc = subprocess.Popen(
        [sys.executable, "-m", "kg_enhance.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    server_after = neo4j_cpu_seconds() if OWN_NEO4J else None
    return Measured(
        neo4j_cpu=None if server_before is None or server_after is None else server_after - server_before,
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        rss_mb=usage.ru_maxrss / 1024,
        ok=proc.returncode == 0,
        tail=" | ".join(err.strip().splitlines()[-2:])[:300],
    )


def exponent(ks: list[int], values: list[float]) -> float | None:
    pairs = [(k, v) for k, v in zip(ks, values, strict=True) if v > 0]
    if len(pairs) < 2:
        return None
    x = np.log([p[0] for p in pairs])
    y = np.log([p[1] for p in pairs])
    return float(np.polyfit(x, y, 1)[0])


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def empty_database(uri: str) -> None:
    """No nodes, no constraints, no indexes (but Neo4j's built-in token lookups): every run sets up its own."""
    with Neo4jStore(Neo4jConfig(uri=uri)) as store:
        store.clear()
        constraints, _, _ = store.driver.execute_query("SHOW CONSTRAINTS YIELD name")
        for row in constraints:
            store.driver.execute_query(f"DROP CONSTRAINT `{row['name']}` IF EXISTS")
        indexes, _, _ = store.driver.execute_query("SHOW INDEXES YIELD name, type WHERE type <> 'LOOKUP'")
        for row in indexes:
            store.driver.execute_query(f"DROP INDEX `{row['name']}` IF EXISTS")


def baseline(commit: str, job: Path, scratch: Path, uri: str) -> Measured:
    """The whole pipeline at ``commit`` on the same job, imported from a git worktree."""
    tree = scratch / f"baseline-{commit}"
    if not tree.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), commit], cwd=REPO, check=True)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    empty_database(uri)
    try:
        return run_cli(["run", str(job), "--no-progress"], env=env, cwd=tree)
    finally:
        empty_database(uri)
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=False)


#: stdout line prefix of a ``--memory-child`` process's figures
_CHILD_TAG = "SCALE_MEMORY_JSON "
#: the lines ``kg_enhance.pipeline._run_stage`` echoes as a stage starts and ends
_STAGE_LINE = re.compile(r"\[(\w+)\] (running|done in [\d.]+s)")


def memory_child(job_path: str) -> None:
    """One k's whole pipeline in this process, the graph in an in-memory store; prints one JSON line.

    The stage figures are the run report's (``stages.<name>``: seconds, CPU seconds, the
    process's peak RSS at the stage's end). With CUDA, each stage's peak GPU memory is read
    through the pipeline's ``echo`` hook, which is called as a stage starts and ends: the most
    memory its tensors held (``max_memory_allocated``, what earlier stages left allocated included)
    and the most the caching allocator reserved; neither counts the CUDA context itself.
    """
    import resource

    from kg_enhance.api import run_job, validate_job
    from kg_enhance.graph.memory import InMemoryGraphStore

    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover - torch is a dependency
        cuda = False
    gpu_peak: dict[str, float] = {}
    gpu_reserved: dict[str, float] = {}

    def echo(line: str) -> None:
        # exactly the two lines ``pipeline._run_stage`` echoes around a stage; anything else is ignored
        matched = _STAGE_LINE.fullmatch(line)
        if matched is None:
            return
        name = matched.group(1)
        if matched.group(2) == "running":
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
        else:
            if cuda:
                torch.cuda.synchronize()
                gpu_peak[name] = torch.cuda.max_memory_allocated() / 2**20
                gpu_reserved[name] = torch.cuda.max_memory_reserved() / 2**20
            # streamed as it happens, so a k stopped by the budget still shows the stages it finished
            ru = resource.getrusage(resource.RUSAGE_SELF)
            print(
                f"    ({line}; process CPU {ru.ru_utime + ru.ru_stime:.1f} s, peak RSS {ru.ru_maxrss / 1024:.0f} MB"
                + (
                    f", peak GPU {gpu_peak[name]:.0f} MB allocated, {gpu_reserved[name]:.0f} MB reserved"
                    if name in gpu_peak
                    else ""
                )
                + ")",
                flush=True,
            )

    spec = validate_job(job_path)
    started = time.perf_counter()
    result = run_job(
        job_path, progress=False, echo=echo, full=True, store_factory=lambda: InMemoryGraphStore.for_job(spec)
    )
    stages = {
        name: {
            "seconds": st.get("seconds"),
            "cpu_seconds": st.get("cpu_seconds"),
            "peak_rss_mib": st.get("peak_rss_mib"),
            "gpu_peak_mib": gpu_peak.get(name),
            "gpu_reserved_mib": gpu_reserved.get(name),
            "status": st.get("status"),
        }
        for name, st in result.report["stages"].items()
    }
    device = torch.cuda.get_device_name(0) if cuda else "cpu"
    print(
        _CHILD_TAG + json.dumps({"stages": stages, "wall": time.perf_counter() - started, "device": device})
    )


def run_memory(ks: list[int], *, scratch: Path, device: str, budget_s: float | None) -> bool:
    """``--store memory``: per k, one child process runs every stage on the in-memory store.

    Returns whether a k failed (a k skipped or stopped by the budget is not a failure)."""
    started = time.perf_counter()
    rows: dict[int, dict[str, dict]] = {}
    last: tuple[int, float] | None = None
    failed = False
    for k in ks:
        left = None if budget_s is None else budget_s - (time.perf_counter() - started)
        if left is not None and left <= 0:
            print(f"\nk={k}: skipped, no budget left", flush=True)
            continue
        if left is not None and last is not None:
            # linear in k; under-estimates a smaller k after a larger one (fixed costs), which the
            # timer below then stops if it overruns, rather than dropping a k that would have fit
            projected = last[1] * k / last[0]
            if projected > left:
                print(
                    f"\nk={k}: skipped, projected {projected:.0f} s (k={last[0]} took {last[1]:.0f} s) > {left:.0f} s left"
                )
                continue  # a smaller k later in the list may still fit
        folder = scratch / f"k{k}"
        if folder.exists():
            shutil.rmtree(folder)
        sizes = write_copies(folder, k)
        job = write_job(folder, k, device=device, uri="bolt://127.0.0.1:1")  # never opened: in-memory store
        print(f"\nk={k}: {sizes}", flush=True)
        t0 = time.perf_counter()
        left = None if budget_s is None else budget_s - (t0 - started)
        with tempfile.TemporaryFile("w+") as err_file:
            proc = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--memory-child", str(job)],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=err_file,
                text=True,
            )
            # the budget is enforced on the child too, so what it finished is still printed
            timer = threading.Timer(max(left, 0.0), proc.kill) if left is not None else None
            if timer is not None:
                timer.daemon = True
                timer.start()
            tagged = []
            try:
                assert proc.stdout is not None
                for line in proc.stdout:
                    if line.startswith(_CHILD_TAG):
                        tagged.append(line)
                    elif line.startswith("    ("):
                        print(line.rstrip(), flush=True)
                proc.wait()
            finally:
                if timer is not None:
                    timer.cancel()
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            err_file.seek(0)
            err = err_file.read()
        wall = time.perf_counter() - t0
        if proc.returncode != 0 or not tagged:
            tail = " | ".join(err.strip().splitlines()[-3:])[:600]
            stopped = left is not None and wall >= left
            failed = failed or not stopped
            why = f"stopped by the budget ({left:.0f} s)" if stopped else "FAILED"
            print(f"  {why} (exit {proc.returncode}) after {wall:.1f} s: {tail}", flush=True)
            shutil.rmtree(folder, ignore_errors=True)
            continue
        got = json.loads(tagged[-1][len(_CHILD_TAG) :])
        rows[k] = got["stages"]
        for stage, st in got["stages"].items():
            if st.get("seconds") is None:
                continue
            label = stage + (" (in-memory store)" if stage in ("load", "export") else "")
            gpu = st.get("gpu_peak_mib")
            print(
                f"  {label:28s} wall {st['seconds']:8.1f} s  cpu {st['cpu_seconds']:8.1f} s  "
                f"peak RSS {st['peak_rss_mib']:8.0f} MB"
                + (
                    ""
                    if gpu is None
                    else f"  peak GPU {gpu:8.0f} MB allocated, {st['gpu_reserved_mib']:.0f} reserved"
                ),
                flush=True,
            )
        print(f"  {'process':28s} wall {wall:8.1f} s  device {got['device']}")
        print("\n".join(model_figures(folder / "run", k)), flush=True)
        last = (k, wall)
        shutil.rmtree(folder, ignore_errors=True)  # the scratch disk holds one k at a time
    done = [k for k in ks if k in rows]
    if len(done) > 1:
        print("\ngrowth exponent against k (1.0 = linear), CPU time / wall time:")
        for stage in STAGES:
            fits = [(k, rows[k][stage]) for k in done if rows[k].get(stage, {}).get("status") == "ok"]
            cpu = exponent([k for k, _ in fits], [st["cpu_seconds"] for _, st in fits])
            wall = exponent([k for k, _ in fits], [st["seconds"] for _, st in fits])
            print(
                f"  {stage:10s} cpu {_fmt(cpu):>5s}   wall {_fmt(wall):>5s}   (k = {', '.join(str(k) for k, _ in fits)})"
            )
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--k", default="1,2,4,8", help="comma-separated copy counts")
    parser.add_argument("--baseline", default=None, metavar="COMMIT", help="also run k=1 with this commit")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--scratch", default="/tmp/kg-enhance-scale", help="data, jobs and run folders")
    parser.add_argument("--uri", default=None, help="an existing Neo4j (default: the script's own on 7689)")
    parser.add_argument(
        "--whole",
        action="store_true",
        help="also run the whole pipeline at k = 1 in one `kg-enhance run` process (the 3-minute target)",
    )
    parser.add_argument(
        "--store",
        default="neo4j",
        choices=["neo4j", "memory"],
        help="memory: every stage of a k in one process on the in-memory store (a machine without Neo4j)",
    )
    parser.add_argument(
        "--budget-s", type=float, default=None, help="--store memory: skip a k that would not fit"
    )
    parser.add_argument(
        "--data", default=None, help="the movielens data folder (default: ../shared/data/movielens)"
    )
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    global DATA
    if args.data:
        DATA = Path(args.data).resolve()
    if args.memory_child:
        memory_child(args.memory_child)
        return
    ks = [int(x) for x in args.k.split(",") if x.strip()]  # --k "" with --baseline: the comparison alone
    if args.store == "memory":
        print(
            f"machine: {platform.node()}, {os.cpu_count()} CPUs, python {platform.python_version()}; "
            f"device {args.device}; graph in the in-memory store (no Neo4j); {time.strftime('%Y-%m-%d %H:%M')}"
        )
        failed = run_memory(ks, scratch=Path(args.scratch), device=args.device, budget_s=args.budget_s)
        sys.exit(1 if failed else 0)
    global OWN_NEO4J
    OWN_NEO4J = args.uri is None
    scratch = Path(args.scratch)
    if args.uri is None:
        neo4j_service.start()
        uri = f"bolt://127.0.0.1:{neo4j_service.bolt_port()}"
    else:
        uri = args.uri
    print(
        f"machine: {platform.node()}, {os.cpu_count()} CPUs, python {platform.python_version()}; "
        f"device {args.device}; neo4j {uri}; {time.strftime('%Y-%m-%d %H:%M')}"
    )
    rows: dict[int, dict[str, Measured]] = {}
    for k in ks:
        folder = scratch / f"k{k}"
        if folder.exists():
            shutil.rmtree(folder)
        sizes = write_copies(folder, k)
        job = write_job(folder, k, device=args.device, uri=uri)
        empty_database(uri)
        print(f"\nk={k}: {sizes}")
        rows[k] = {}
        for stage in ("extract", *STAGES):
            got = run_cli(["run", str(job), "--only", stage, "--no-progress"])
            rows[k][stage] = got
            print(
                f"  {stage:10s} wall {got.wall:8.1f} s  cpu {got.cpu:8.1f} s  peak RSS {got.rss_mb:8.0f} MB"
                + ("" if got.neo4j_cpu is None else f"  neo4j cpu {got.neo4j_cpu:7.1f} s")
                + ("" if got.ok else f"  FAILED: {got.tail}"),
                flush=True,
            )
            if not got.ok:
                break
        total = sum(m.wall for m in rows[k].values())
        print(
            f"  {'total':10s} wall {total:8.1f} s  peak RSS {max(m.rss_mb for m in rows[k].values()):8.0f} MB"
        )
        print("\n".join(model_figures(folder / "run", k)), flush=True)
    if len(ks) > 1:
        print("\ngrowth exponent against k (1.0 = linear), CPU time / peak RSS:")
        for stage in STAGES:
            fits = [(k, rows[k][stage]) for k in ks if stage in rows[k] and rows[k][stage].ok]
            cpu = exponent([k for k, _ in fits], [m.cpu for _, m in fits])
            rss = exponent([k for k, _ in fits], [m.rss_mb for _, m in fits])
            both = exponent([k for k, _ in fits], [m.cpu + (m.neo4j_cpu or 0.0) for _, m in fits])
            print(
                f"  {stage:10s} cpu {_fmt(cpu):>5s}   rss {_fmt(rss):>5s}   cpu incl. neo4j {_fmt(both):>5s}"
                f"   (k = {', '.join(str(k) for k, _ in fits)})"
            )
    if args.whole and 1 in ks:
        job = write_job(scratch / "k1", 1, device=args.device, uri=uri)
        shutil.rmtree(scratch / "k1" / "run", ignore_errors=True)  # no warm start from the per-stage runs
        empty_database(uri)
        whole = run_cli(["run", str(job), "--full", "--no-progress"])
        print(
            f"\nk=1 whole pipeline, one `kg-enhance run --full` process on an emptied database: "
            f"{whole.wall:.1f} s wall, {whole.cpu:.1f} s CPU (+ neo4j {whole.neo4j_cpu or 0:.1f} s), "
            f"peak RSS {whole.rss_mb:.0f} MB{'' if whole.ok else ' FAILED: ' + whole.tail}",
            flush=True,
        )
    if args.baseline:
        folder = scratch / "k1"
        if not (folder / "ratings.csv").exists():
            write_copies(folder, 1)
        job = write_job(folder, 1, device=args.device, uri=uri)
        # both start from nothing: an emptied database and no run folder (no warm start, no cache)
        shutil.rmtree(folder / "run", ignore_errors=True)
        empty_database(uri)
        new = run_cli(["run", str(job), "--full", "--no-progress"])  # one process, like the baseline
        shutil.rmtree(folder / "run", ignore_errors=True)
        old = baseline(args.baseline, job, scratch, uri)

        def side(m: Measured) -> str:
            return (
                f"{m.wall:.1f} s wall, {m.cpu:.1f} s CPU (+ neo4j {m.neo4j_cpu or 0:.1f} s), peak RSS {m.rss_mb:.0f} MB"
                + ("" if m.ok else " FAILED: " + m.tail)
            )

        ratio = (
            f"speed-up {old.wall / new.wall:.2f}x wall, {old.cpu / new.cpu:.2f}x CPU, "
            f"{(old.cpu + (old.neo4j_cpu or 0)) / (new.cpu + (new.neo4j_cpu or 0)):.2f}x CPU incl. neo4j"
            if new.ok and old.ok and new.wall and new.cpu
            else "speed-up n/a (a run failed)"
        )
        print(
            f"\nk=1 whole pipeline in one process: this code {side(new)} | {args.baseline}: {side(old)} | {ratio}"
        )


if __name__ == "__main__":
    main()
