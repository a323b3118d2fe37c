"""The two ways to write a job's graph, timed on one Neo4j: the transactional load stage (a first
load into an empty database, an incremental re-run with nothing changed, a ``--full`` re-run that
MERGEs every row again) against ``kg-enhance graph bulk-load`` (``neo4j-admin database import``),
and whether both give the same namespace fingerprint.

Every command is the CLI a user runs, in a subprocess, against a Neo4j Community server of the
script's own: ``kg-enhance neo4j start`` with ``KG_ENHANCE_HOME`` in a scratch folder and its own
ports (``--bolt-port``, ``--http-port``), so no other Neo4j on the machine is touched; the run
folders go to the scratch folder too (``KG_ENHANCE_RUNS``). Per job:

1. the database is emptied; ``run JOB --until load --full``: the first load (stage seconds and
   phases from ``report.json``, the command's wall seconds), once right after the server started
   (cold: the job's first queries are planned and compiled) and once more on the emptied database
   (warm);
2. ``run JOB --until load``: a re-run with nothing changed (incremental: only the diff is written);
3. ``run JOB --until load --full``: every row MERGEd again (the duplicate scan is skipped when the
   load made no new entity); then ``graph fingerprint JOB``;
4. the database is emptied; ``graph bulk-load JOB --fingerprint --json``: seconds per phase and the
   fingerprint, compared with step 3's.

Wall seconds include each command's start-up (Python imports, about 3-5 s here). The LLM is off
(``--set llm.enabled=false``, the default ``--set``): this measures loading, not extraction.

    .venv/bin/python benchmarks/load_paths.py examples/jobs/movielens-demo.yaml \
        examples/jobs/ml-latest-small.yaml --out benchmarks/results/load_paths_DATE.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
#: the console script installed beside this interpreter (the command a user runs)
CLI = [str(Path(sys.executable).with_name("kg-enhance"))]


def cli(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Run one ``kg-enhance`` command; its wall seconds and stdout. Exits on failure with its stderr."""
    started = time.perf_counter()
    got = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - started
    if got.returncode != 0:
        tail = (got.stderr or got.stdout).strip().splitlines()[-3:]
        sys.exit(f"error: kg-enhance {' '.join(args)} exited {got.returncode}: {' | '.join(tail)}")
    return wall, got.stdout


def empty_database(spec: Any) -> None:
    """Delete every node and relationship of the script's own Neo4j (the job names it)."""
    from kg_enhance.graph.store import Neo4jStore

    with Neo4jStore.for_job(spec) as store:
        store.clear()


def load_report(runs: Path, name: str) -> dict[str, Any]:
    report = json.loads((runs / name / "report.json").read_text(encoding="utf-8"))
    graph = report.get("graph") or {}
    stage = (report.get("stages") or {}).get("load") or {}
    return {
        "stage_seconds": stage.get("seconds"),
        "cpu_seconds": stage.get("cpu_seconds"),
        "phase_seconds": graph.get("phase_seconds"),
        "mode": graph.get("mode"),
        "nodes": graph.get("nodes"),
        "edges": graph.get("edges"),
        "items": graph.get("items"),
        "facts_written": graph.get("facts_written"),
        "interactions_written": graph.get("interactions_written"),
        "entities": (graph.get("nodes_by_label") or {}).get("Entity"),
        "duplicate_scan": graph.get("duplicate_scan"),
    }


def measure(job: Path, sets: list[str], env: dict[str, str], runs: Path) -> dict[str, Any]:
    from kg_enhance.api import validate_job  # the job's name and namespace, as the CLI reads them

    spec = validate_job(job, overrides=sets)
    name = spec.name
    setargs = sum((["--set", s] for s in sets), [])
    out: dict[str, Any] = {"job": str(job), "name": name}

    # the first load right after the server started (its query plans cold), then again on the
    # emptied database with the server warm: the figure a second job's first load sees
    empty_database(spec)
    wall, _ = cli(["run", str(job), "--until", "load", "--full", *setargs], env)
    out["first_load_cold"] = {"wall_seconds": round(wall, 2), **load_report(runs, name)}
    empty_database(spec)
    wall, _ = cli(["run", str(job), "--until", "load", "--full", *setargs], env)
    out["first_load"] = {"wall_seconds": round(wall, 2), **load_report(runs, name)}
    wall, _ = cli(["run", str(job), "--until", "load", *setargs], env)
    out["rerun_unchanged"] = {"wall_seconds": round(wall, 2), **load_report(runs, name)}
    wall, _ = cli(["run", str(job), "--until", "load", "--full", *setargs], env)
    out["rerun_full"] = {"wall_seconds": round(wall, 2), **load_report(runs, name)}
    wall, text = cli(["graph", "fingerprint", str(job), "--json", *setargs], env)
    out["transactional_fingerprint"] = json.loads(text)
    out["fingerprint_wall_seconds"] = round(wall, 2)

    empty_database(spec)
    wall, text = cli(["graph", "bulk-load", str(job), "--fingerprint", "--json", *setargs], env)
    bulk = json.loads(text)
    out["bulk_load"] = {"wall_seconds": round(wall, 2), **bulk}
    out["same_fingerprint"] = out["transactional_fingerprint"]["fingerprint"] == bulk["fingerprint"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("jobs", nargs="+", type=Path)
    parser.add_argument("--set", dest="sets", action="append", default=None, help="job override (repeatable)")
    parser.add_argument(
        "--scratch", type=Path, default=None, help="Neo4j home and run folders (default: a temp dir)"
    )
    parser.add_argument("--bolt-port", type=int, default=7691)
    parser.add_argument("--http-port", type=int, default=7477)
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args()
    sets = args.sets if args.sets is not None else ["llm.enabled=false"]
    scratch = (args.scratch or Path(tempfile.mkdtemp(prefix="kg-load-paths-"))).resolve()
    runs = scratch / "runs"
    env = {
        **os.environ,
        "KG_ENHANCE_HOME": str(scratch / "state"),
        "KG_ENHANCE_NEO4J_BOLT_PORT": str(args.bolt_port),
        "KG_ENHANCE_NEO4J_HTTP_PORT": str(args.http_port),
        "NEO4J_URI": f"bolt://127.0.0.1:{args.bolt_port}",
        "KG_ENHANCE_RUNS": str(runs),
    }
    os.environ.update(env)  # for the in-process job validation and database clearing
    print(
        f"machine: {platform.node()}, {os.cpu_count()} CPUs, {platform.platform()}; scratch {scratch}; "
        f"Neo4j on bolt {args.bolt_port}; sets {sets}",
        flush=True,
    )
    wall, _ = cli(["neo4j", "start"], env)
    print(f"neo4j start: {wall:.1f}s", flush=True)
    results = []
    try:
        for job in args.jobs:
            got = measure(job.resolve(), sets, env, runs)
            results.append(got)
            first, same, full, bulk = (
                got["first_load"],
                got["rerun_unchanged"],
                got["rerun_full"],
                got["bulk_load"],
            )
            print(
                f"\n== {got['name']}: {first['items']} items, {first['interactions_written']} interactions, "
                f"{first['facts_written']} facts, {first['entities']} entities, {first['nodes']} nodes, "
                f"{first['edges']} edges"
            )
            rows = (
                ("first load, cold", got["first_load_cold"]),
                ("first load, warm", first),
                ("re-run, unchanged", same),
                ("re-run, --full", full),
            )
            for label, row in rows:
                print(
                    f"  {label:18s} load stage {row['stage_seconds']:.1f}s (CPU {row['cpu_seconds']:.1f}s; "
                    f"phases {row['phase_seconds']}; mode {row['mode']}), command {row['wall_seconds']:.1f}s; "
                    f"duplicate scan {row['duplicate_scan']}"
                )
            seconds = ", ".join(f"{k} {v:.1f}s" for k, v in bulk["seconds"].items())
            print(f"  bulk-load          command {bulk['wall_seconds']:.1f}s ({seconds})")
            print(f"  fingerprint: transactional = bulk-load: {got['same_fingerprint']}")
    finally:
        cli(["neo4j", "stop"], env)
    if args.out:
        args.out.write_text(json.dumps({"machine": platform.node(), "sets": sets, "jobs": results}, indent=1))
        print(f"\nresults: {args.out}")
    if not args.scratch:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
