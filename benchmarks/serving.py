"""Serving latency: a precomputed top-K lookup against one LLM call for the same user.

The survey's pre-computation claim, measured: the LLM works offline, serving reads a
table. For random users of a finished run this times

* ``in process``: :func:`kg_enhance.recommend` on the precomputed table (``topk.parquet``);
* ``neo4j``: the same top-K read from the ``RECOMMENDED`` edges (``cypher/read/recommendations_for_user``);
* ``llm``: one chat completion on the job's LLM endpoint asking for K movies for that user,
  given the titles of their last 10 rated movies (what serving with an LLM would cost at least).

and prints p50/p99 of each and the ratios. Needs the job's run directory, its Neo4j and its LLM.

    .venv/bin/python benchmarks/serving.py [JOB] [--users 2000] [--neo4j-calls 500] [--llm-calls 20]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from openai import OpenAI  # noqa: E402

from kg_enhance.api import open_graph, validate_job  # noqa: E402
from kg_enhance.io.tables import read_interactions, read_items  # noqa: E402
from kg_enhance.rec.serve import PrecomputedRecommender  # noqa: E402
from kg_enhance.rundir import RunDir  # noqa: E402


def pct(values: list[float]) -> tuple[float, float]:
    arr = np.asarray(values)
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("job", nargs="?", default=str(REPO / "examples" / "jobs" / "movielens-demo.yaml"))
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--neo4j-calls", type=int, default=500)
    parser.add_argument("--llm-calls", type=int, default=20)
    args = parser.parse_args()

    job = validate_job(args.job)
    run = RunDir.for_job(job).root
    k = job.recommender.k
    started = time.perf_counter()
    rec = PrecomputedRecommender(run)
    load_s = time.perf_counter() - started
    users = sorted(rec.table)
    rng = random.Random(0)
    print(
        f"machine: {platform.node()}, {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}"
    )
    print(f"run {run}: {len(users)} users, K={k}, model {rec.model}; table loaded in {load_s * 1000:.0f} ms")

    in_proc = []
    for _ in range(args.users):
        u = rng.choice(users)
        t = time.perf_counter_ns()
        rec.recommend(u, k)
        in_proc.append((time.perf_counter_ns() - t) / 1e6)

    neo = []
    with open_graph(args.job) as store:
        query = store.cypher.get("read/recommendations_for_user")
        store.driver.execute_query(query, user_id=users[0], k=k)  # connection warm-up
        for _ in range(args.neo4j_calls):
            u = rng.choice(users)
            t = time.perf_counter_ns()
            records, _, _ = store.driver.execute_query(query, user_id=u, k=k, database_=job.neo4j.database)
            neo.append((time.perf_counter_ns() - t) / 1e6)
            assert len(records) == k

    items, _ = read_items(job)
    titles = {i.item_id: i.title or i.item_id for i in items}
    ratings = read_interactions(job).sort_values("ts")
    history = {u: g["item_id"].tolist()[-10:] for u, g in ratings.groupby("user_id")}
    client = OpenAI(base_url=job.llm.base_url, api_key=os.environ.get(job.llm.api_key_env, "not-needed"))
    llm = []
    for _ in range(args.llm_calls):
        u = rng.choice(users)
        liked = "; ".join(titles.get(i, i) for i in history.get(u, []))
        t = time.perf_counter_ns()
        client.chat.completions.create(
            model=job.llm.model,
            messages=[
                {
                    "role": "system",
                    "content": "You recommend movies. Answer with a numbered list of titles only.",
                },
                {"role": "user", "content": f"I liked: {liked}. Recommend {k} other movies."},
            ],
            max_tokens=12 * k,
            temperature=0.0,
        )
        llm.append((time.perf_counter_ns() - t) / 1e6)

    rows = [
        ("in process (precomputed table)", in_proc),
        ("neo4j (RECOMMENDED edges)", neo),
        (f"llm call ({job.llm.model})", llm),
    ]
    print(f"{'path':34s} {'calls':>6s} {'p50 ms':>10s} {'p99 ms':>10s}")
    stats = {}
    for name, values in rows:
        p50, p99 = pct(values)
        stats[name] = (p50, p99)
        print(f"{name:34s} {len(values):6d} {p50:10.4f} {p99:10.4f}")
    llm50, llm99 = stats[rows[2][0]]
    for name, _ in rows[:2]:
        p50, p99 = stats[name]
        print(f"llm / {name}: p50 {llm50 / p50:,.0f}x, p99 {llm99 / p99:,.0f}x")


if __name__ == "__main__":
    main()
