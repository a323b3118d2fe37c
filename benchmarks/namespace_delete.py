"""Deleting one job's namespace from a database that other jobs share: today's statements against
those of an older commit, on the same database, with 0, 1, 2, ... other namespaces of the same size.

Each namespace is a synthetic catalog written through the store's own writes: ``--items`` items with
one genre each out of 20, ``--users`` users with ``--per-user`` interactions each. For every number of
other namespaces the target namespace is written, deleted with ``clear_namespace`` (the loop of
``admin/delete_namespace_*``), written again and deleted with the older commit's statements; the
script checks that both leave the other namespaces as they were and the target empty, and prints
the seconds of each. A delete whose cost follows its own namespace stays flat as others are added;
one that scans the database grows with them.

CLEARS THE DATABASE it is pointed at (first and last): use the test Neo4j, never a real one.

    .venv/bin/python benchmarks/namespace_delete.py --uri bolt://127.0.0.1:7688 --others 0,2,4 \
        --against cb7c8c1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from at_commit import statement_at  # noqa: E402

from kg_enhance.config.models import Neo4jConfig  # noqa: E402
from kg_enhance.graph.store import Neo4jStore  # noqa: E402
from kg_enhance.ontology import load_ontology  # noqa: E402
from kg_enhance.types import Fact  # noqa: E402

ONTOLOGY = load_ontology(REPO / "schemas" / "movies.yaml")
STATEMENTS = ("admin/delete_namespace_relationships_batch", "admin/delete_namespace_batch")


def write_namespace(store: Neo4jStore, items: int, users: int, per_user: int) -> None:
    store.ensure_schema(ONTOLOGY)
    store.write_items(({"item_id": str(i), "props": {}} for i in range(items)), item_label="Movie")
    store.write_users(f"u{u}" for u in range(users))
    store.write_interactions(
        {"user_id": f"u{u}", "item_id": str((u * 7919 + j * 104729) % items), "rating": 4.0, "ts": j}
        for u in range(users)
        for j in range(per_user)
    )
    facts = (
        Fact(
            head_id=str(i),
            relation="HAS_GENRE",
            object=f"Genre {i % 20}",
            object_type="Genre",
            source="catalog",
        )
        for i in range(items)
    )
    store.write_facts(list(facts), ONTOLOGY, job=store.namespace, run_id="bench")


def delete_with(store: Neo4jStore, queries: list[str], batch: int) -> int:
    """``clear_namespace``'s loop, with the given statements (relationships, then nodes); returns
    the nodes deleted."""
    deleted = 0
    for query in queries:
        deleted = 0
        while True:
            records, _, _ = store.driver.execute_query(
                query, parameters_=store._scope({"limit": batch}), database_=store.config.database
            )
            n = int(records[0]["deleted"])
            deleted += n
            if n == 0:
                break
    return deleted


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--uri", required=True, help="the TEST Neo4j (the script clears its database)")
    ap.add_argument("--others", default="0,2,4", help="numbers of other namespaces, comma-separated")
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--users", type=int, default=1_000)
    ap.add_argument("--per-user", type=int, default=50)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3, help="deletes per statement set; the best is printed")
    ap.add_argument(
        "--against", required=True, help="commit whose admin/delete_namespace_* statements to compare"
    )
    args = ap.parse_args()

    cfg = Neo4jConfig(uri=args.uri)
    target = Neo4jStore(cfg, namespace="target")
    target.clear()
    old = [statement_at(args.against, name) for name in STATEMENTS]
    target.clear_namespace(batch=args.batch)  # both sets planned once before any is timed
    delete_with(target, old, args.batch)
    others: list[Neo4jStore] = []
    print(
        f"namespace: {args.items} items, {args.users} users x {args.per_user} interactions, 20 genres; "
        f"batch {args.batch}; old statements from {args.against}",
        flush=True,
    )
    print(
        f"others\tdatabase nodes\tnew s\told s (best of {args.repeat})\tnodes deleted (new, old)", flush=True
    )
    try:
        for n_others in sorted(int(x) for x in args.others.split(",")):
            while len(others) < n_others:
                other = Neo4jStore(cfg, namespace=f"other{len(others)}")
                write_namespace(other, args.items, args.users, args.per_user)
                others.append(other)
            before = [o.totals() for o in others]
            seconds: dict[str, float] = {"new": float("inf"), "old": float("inf")}
            counts: dict[str, int] = {}
            for label in ("new", "old") * args.repeat:
                write_namespace(target, args.items, args.users, args.per_user)
                db_nodes = sum(t["nodes"] for t in before) + target.totals()["nodes"]
                t0 = time.perf_counter()
                counts[label] = (
                    target.clear_namespace(batch=args.batch)
                    if label == "new"
                    else delete_with(target, old, args.batch)
                )
                seconds[label] = min(seconds[label], time.perf_counter() - t0)
                left = target.totals()
                if left["nodes"] or left["edges"]:
                    raise SystemExit(f"{label}: the target namespace is not empty after the delete: {left}")
                if [o.totals() for o in others] != before:
                    raise SystemExit(f"{label}: the delete changed another namespace")
            print(
                f"{n_others}\t{db_nodes}\t{seconds['new']:.2f}\t{seconds['old']:.2f}\t"
                f"{counts['new']}, {counts['old']}",
                flush=True,
            )
    finally:
        target.clear()
        for o in others:
            o.close()
        target.close()


if __name__ == "__main__":
    main()
