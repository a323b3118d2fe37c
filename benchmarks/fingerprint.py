"""The graph fingerprint of a job's namespace: streaming against hashing, and the row hashing
against the reference ``json.dumps(..., sort_keys=True)`` text (the same text, so the same hash).

Run it on a loaded job (for example one of ``refresh.py``'s, which leaves its jobs in the
scratch folder); it only reads. ``--against COMMIT`` also times the two streamed reads
(``read/fingerprint_node_rows``, ``read/fingerprint_edge_rows``) as they were at that commit
against today's, on the same database, and checks they return the same rows: with other jobs'
namespaces in the database this shows whether a read's cost follows its namespace or the database.

    .venv/bin/python benchmarks/fingerprint.py JOB.yaml [--repeat 3] [--against COMMIT]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from at_commit import statement_at  # noqa: E402

from kg_enhance.api import validate_job  # noqa: E402
from kg_enhance.graph import fingerprint as F  # noqa: E402
from kg_enhance.graph.store import Neo4jStore  # noqa: E402


def _reference_canonical(v: Any) -> Any:
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, list):
        return [_reference_canonical(x) for x in v]
    return v if isinstance(v, (str, int, bool)) or v is None else str(v)


def _reference_stable(props: dict[str, Any]) -> dict[str, Any]:
    return {k: _reference_canonical(v) for k, v in sorted(props.items()) if k not in F.IGNORED_PROPERTIES}


def reference_lines(nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> list[str]:
    """The lines as the fingerprint built them before one encoder was reused (json.dumps per row)."""
    out = [
        json.dumps(["N", r["id"], sorted(r["labels"]), _reference_stable(r["props"])], sort_keys=True)
        for r in nodes
    ]
    out += [
        json.dumps(["E", r["head"], r["type"], r["tail"], _reference_stable(r["props"])], sort_keys=True)
        for r in edges
    ]
    return out


def compare_reads(store: Neo4jStore, commit: str, repeat: int) -> None:
    params = store._scope(
        {
            "own_entities": store.owns_entities,
            "exclude": sorted(F.IGNORED_PROPERTIES),
            "exclude_types": list(F.DERIVED_RELATIONSHIPS),
        }
    )
    with store.driver.session(database=store.config.database) as session:
        nodes = session.run("MATCH (n) RETURN count(n) AS c").single()["c"]  # type: ignore[index]
        print(f"database: {nodes} nodes in all namespaces", flush=True)
        for name in ("read/fingerprint_node_rows", "read/fingerprint_edge_rows"):
            old = statement_at(commit, name)
            new = store.cypher.get(name)
            same = sorted(map(repr, session.run(old, params).values())) == sorted(
                map(repr, session.run(new, params).values())
            )
            for _ in range(repeat):
                timed = []
                for query in (old, new):
                    started = time.perf_counter()
                    rows = sum(1 for _ in session.run(query, params))
                    timed.append(time.perf_counter() - started)
                print(
                    f"{name}: {rows} rows; at {commit} {timed[0]:.2f} s, now {timed[1]:.2f} s; same rows: {same}",
                    flush=True,
                )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("job", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--against", default=None, metavar="COMMIT", help="also time the streamed reads of COMMIT"
    )
    args = ap.parse_args()
    store = Neo4jStore.for_job(validate_job(args.job))
    try:
        if args.against:
            compare_reads(store, args.against, args.repeat)
        for _ in range(args.repeat):
            started = time.perf_counter()
            fp = F.graph_fingerprint(store)
            whole = time.perf_counter() - started
            started = time.perf_counter()
            nodes = list(store.stream_fingerprint_nodes(F.IGNORED_PROPERTIES))
            edges = list(store.stream_fingerprint_edges(F.DERIVED_RELATIONSHIPS, F.IGNORED_PROPERTIES))
            stream = time.perf_counter() - started
            started = time.perf_counter()
            current = [F._digest(F.node_line(r)) for r in nodes] + [F._digest(F.edge_line(r)) for r in edges]
            hashing = time.perf_counter() - started
            started = time.perf_counter()
            reference = [F._digest(line) for line in reference_lines(nodes, edges)]
            reference_hashing = time.perf_counter() - started
            print(
                f"{fp.nodes} nodes, {fp.edges} edges: graph_fingerprint {whole:.2f} s; streaming the rows "
                f"{stream:.2f} s; hashing them {hashing:.2f} s (json.dumps per row: {reference_hashing:.2f} s, "
                f"same digests: {current == reference})",
                flush=True,
            )
    finally:
        store.close()


if __name__ == "__main__":
    main()
