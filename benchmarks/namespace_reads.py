"""The namespace-scoped reads of a job, today's statements against those of an older commit, on
the same database: rows (must be the same), db hits (PROFILE) and seconds (best of ``--repeat``).

Point it at a loaded job in a database that other jobs share (for example one of ``refresh.py``'s,
which leaves six ml-latest-small namespaces in its database). A read that finds its namespace's
nodes by index seek costs the same however many other jobs the database holds; one that scans
a label pays for every job's nodes of that label. It only reads.

    .venv/bin/python benchmarks/namespace_reads.py JOB.yaml --against cb7c8c1 [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from at_commit import statement_at  # noqa: E402

from kg_enhance.api import validate_job  # noqa: E402
from kg_enhance.graph.store import Neo4jStore  # noqa: E402

#: the reads changed from a label scan to index seeks, with the parameters they take besides $ns/$ens
READS: dict[str, dict[str, Any]] = {
    "read/interactions": {},
    "read/interaction_triples": {"min_rating": None},
    "read/item_fact_triples": {"sources": None},
    "read/user_fact_triples": {"sources": None},
    "read/item_fact_counts": {},
    "read/item_fact_histogram": {},
    "read/entity_keys": {},
    "read/entity_keys_unordered": {},
    "read/entity_degrees": {},
    "read/entity_degree_histogram": {},
    "read/count_edges_by_type": {},
    "read/rdf_facts": {"sources": None},
    "resolve/entity_types_present": {"types": ["Genre", "Person", "Country", "Tag"]},
}


#: the writes changed the same way, PROFILEd in a transaction that is rolled back (nothing changes)
WRITES: dict[str, dict[str, Any]] = {
    "write/clear_quarantine_flags": {},
    "write/delete_stale_recommendations": {"job": "no-such-job", "run_id": "none"},
}


def profile_rolled_back(store: Neo4jStore, query: str, params: dict[str, Any]) -> tuple[str, int]:
    """The statement's update counters and db hits, in a transaction that is rolled back."""
    with store.driver.session(database=store.config.database) as session:
        tx = session.begin_transaction()
        try:
            result = tx.run("PROFILE " + query, params)
            list(result)
            summary = result.consume()
            return repr(summary.counters), db_hits(summary.profile)
        finally:
            tx.rollback()


def db_hits(plan: Any) -> int:
    return int(plan.get("dbHits", 0)) + sum(db_hits(c) for c in plan.get("children", []))


def canonical(value: Any) -> Any:
    """A row value with its lists sorted (collect() gives no order), for comparing two statements."""
    if isinstance(value, list):
        return sorted((canonical(v) for v in value), key=repr)
    return value


def profile(store: Neo4jStore, query: str, params: dict[str, Any]) -> tuple[list[str], int]:
    """Rows (in the order returned when the statement orders them, else sorted) and db hits of one PROFILE run."""
    with store.driver.session(database=store.config.database) as session:
        profiled = session.run("PROFILE " + query, params)
        rows = [repr(sorted((k, canonical(v)) for k, v in r.data().items())) for r in profiled]
        if "ORDER BY" not in "\n".join(x for x in query.splitlines() if not x.lstrip().startswith("//")):
            rows.sort()
        return rows, db_hits(profiled.consume().profile)


def best_seconds(store: Neo4jStore, queries: list[str], params: dict[str, Any], repeat: int) -> list[float]:
    """Best of ``repeat`` plain runs of each query, the queries alternating (order flipped every round)."""
    best = [float("inf")] * len(queries)
    with store.driver.session(database=store.config.database) as session:
        for rnd in range(repeat):
            order = list(range(len(queries)))
            if rnd % 2:
                order.reverse()
            for i in order:
                t0 = time.perf_counter()
                list(session.run(queries[i], params))
                best[i] = min(best[i], time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("job", type=Path)
    ap.add_argument("--against", required=True, help="commit whose statements to compare")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    job = validate_job(args.job)
    with Neo4jStore.for_job(job) as store:
        totals = store.query("MATCH (n) RETURN count(n) AS nodes")[0]["nodes"]
        print(
            f"job {job.name}: namespace {store.namespace!r}; database {totals} nodes; old statements {args.against}"
        )
        print(f"statement\trows\tdb hits new\tdb hits old\tnew s\told s (best of {args.repeat})")
        for name, extra in READS.items():
            params = store._scope(dict(extra))
            new_q, old_q = store.cypher.get(name), statement_at(args.against, name)
            new_rows, new_hits = profile(store, new_q, params)
            old_rows, old_hits = profile(store, old_q, params)
            if new_rows != old_rows:
                raise SystemExit(f"{name}: the rows differ ({len(new_rows)} new, {len(old_rows)} old)")
            new_s, old_s = best_seconds(store, [new_q, old_q], params, args.repeat)
            print(f"{name}\t{len(new_rows)}\t{new_hits}\t{old_hits}\t{new_s:.3f}\t{old_s:.3f}", flush=True)
        for name, extra in WRITES.items():
            params = store._scope(dict(extra))
            new_n, new_hits = profile_rolled_back(store, store.cypher.get(name), params)
            old_n, old_hits = profile_rolled_back(store, statement_at(args.against, name), params)
            if new_n != old_n:
                raise SystemExit(f"{name}: the updates differ ({new_n} new, {old_n} old)")
            print(f"{name} (rolled back)\t{new_n}\t{new_hits}\t{old_hits}\t-\t-", flush=True)


if __name__ == "__main__":
    main()
