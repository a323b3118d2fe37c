"""The noise curve on the demo or on the full ml-latest-small: how precise must facts be to help?

Loads the job's graph (LLM off: the curve only uses gold facts) and runs
``kg-enhance ablate JOB --fact-noise SHARES --seeds SEEDS`` with the given ``--set`` overrides,
printing the CLI's table; the curve's JSON, CSV and PNG land in the run folder's ``ablation/``.

* ``--dataset demo``: ``examples/jobs/movielens-demo.yaml`` (300 movies, catalog genres + HetRec).
* ``--dataset full``: the full ``ml-latest-small`` (9,742 movies, 100,836 ratings) with every
  HetRec director, country and tag (as themes) and the catalog genres, the job
  ``benchmarks/scale.py`` builds at k = 1 (data from ``/work/shared/data/movielens``).

Run on 2026-11-29 with ``--dataset full`` (figures in RESULTS.md); the demo figures there came
from the CLI commands it wraps. It uses the Neo4j of the environment (``KG_ENHANCE_NEO4J_BOLT_PORT``, started if needed) and
loads into the job's own namespace.

    .venv/bin/python benchmarks/noise_curve.py --dataset demo --shares 0,0.25,0.5,0.75,1 --seeds 0,1,2 \\
        --set recommender.ablation.model=kg_bpr --set recommender.ablation.baseline=bpr_mf
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.scale import write_copies, write_job  # noqa: E402
from kg_enhance.services import neo4j as neo4j_service  # noqa: E402


def cli(*args: str) -> None:
    print("$ kg-enhance " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "kg_enhance.cli", *args], cwd=REPO, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=["demo", "full"], default="demo")
    parser.add_argument("--shares", default="0,0.25,0.5,0.75,1")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--scratch", default="/tmp/kg-enhance-noise", help="data and run folders (full)")
    parser.add_argument("--skip-load", action="store_true", help="the graph is already loaded")
    args = parser.parse_args()
    neo4j_service.start()
    uri = f"bolt://127.0.0.1:{neo4j_service.bolt_port()}"
    print(
        f"machine: {platform.node()}, {os.cpu_count()} CPUs (shared with other processes), python "
        f"{platform.python_version()}; neo4j {uri}; {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC",
        flush=True,
    )
    if args.dataset == "demo":
        job = REPO / "examples" / "jobs" / "movielens-demo.yaml"
        os.environ["NEO4J_URI"] = uri
    else:
        folder = Path(args.scratch) / "full"
        print(f"full ml-latest-small: {write_copies(folder, 1)}", flush=True)
        job = write_job(folder, 1, device="cpu", uri=uri)
    sets = [x for o in ["llm.enabled=false", *args.overrides] for x in ("--set", o)]
    if not args.skip_load:
        cli("run", str(job), "--only", "extract,load", "--no-progress", *sets)
    started = time.perf_counter()
    cli("ablate", str(job), "--fact-noise", args.shares, "--seeds", args.seeds, "--no-progress", *sets)
    print(f"noise curve: {time.perf_counter() - started:.0f} s wall", flush=True)


if __name__ == "__main__":
    main()
