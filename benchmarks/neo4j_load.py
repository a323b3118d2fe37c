"""Load 200,000 triples into one local Neo4j and compare writers, in one run.

Writers, each into an emptied database, on the same triples:

* ``kg_enhance``: ``Neo4jStore.write_items`` + ``write_facts`` (batched ``UNWIND ... MERGE``
  in managed transactions, constraints first); also timed with entity resolution in front,
  and re-loaded once more over the loaded graph (idempotent: the fingerprint must not change);
* ``naive``: one ``MERGE`` statement per triple, one transaction each (on a sample, see
  ``--naive-sample``; its rate is what is compared);
* ``neo4j-graphrag``: ``Neo4jWriter`` from neo4j-graphrag (``pip install neo4j-graphrag``;
  it needs APOC core, which this script puts into its own server's plugins folder).

Data: the HetRec 2011 MovieLens-2k facts from ``../shared/data`` (directors, genres,
countries, and tags as themes: 92,948 real triples), repeated under suffixed item ids
(``<id>#<copy>``) until 200,000 triples; entities are shared between copies, as new items
in a real catalog share people and genres.

The script runs its own Neo4j (state in ``.kg-enhance/bench-home``, bolt 7689, http 7476)
so it never touches the demo or test databases, and stops it at the end if it started it.

    .venv/bin/python benchmarks/neo4j_load.py [--triples 200000] [--naive-sample 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("KG_ENHANCE_HOME", str(REPO / ".kg-enhance" / "bench-home"))
os.environ.setdefault("KG_ENHANCE_NEO4J_BOLT_PORT", "7689")
os.environ.setdefault("KG_ENHANCE_NEO4J_HTTP_PORT", "7476")
os.environ.setdefault("KG_ENHANCE_NEO4J_HEAP", "2g")
os.environ.setdefault("KG_ENHANCE_NEO4J_PAGECACHE", "1g")
sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402

from kg_enhance.config.models import Neo4jConfig, ResolutionConfig  # noqa: E402
from kg_enhance.datasets.movielens import load_hetrec_facts  # noqa: E402
from kg_enhance.graph.fingerprint import graph_fingerprint  # noqa: E402
from kg_enhance.graph.resolve import EntityResolver  # noqa: E402
from kg_enhance.graph.store import Neo4jStore  # noqa: E402
from kg_enhance.names import entity_key  # noqa: E402
from kg_enhance.ontology import load_ontology  # noqa: E402
from kg_enhance.services import neo4j as neo4j_service  # noqa: E402
from kg_enhance.types import Fact  # noqa: E402

HETREC = REPO.parent / "shared" / "data" / "movielens" / "hetrec2011-movielens-2k"
ONTOLOGY = load_ontology(REPO / "schemas" / "movies.yaml")


def hetrec_facts() -> list[Fact]:
    gold = load_hetrec_facts(HETREC)
    tags = pd.read_csv(HETREC / "tags.dat", sep="\t", encoding="latin-1", dtype=str)
    movie_tags = pd.read_csv(HETREC / "movie_tags.dat", sep="\t", encoding="latin-1", dtype=str)
    themes = movie_tags.merge(tags, left_on="tagID", right_on="id")
    rows = [
        Fact(head_id=str(i), relation=r, object=str(o), object_type=t, source="hetrec")
        for i, r, o, t in gold[["item_id", "relation", "object", "object_type"]].itertuples(index=False)
    ]
    rows += [
        Fact(head_id=str(i), relation="HAS_THEME", object=v, object_type="Theme", source="hetrec")
        for i, v in themes[["movieID", "value"]].itertuples(index=False)
        if isinstance(v, str) and v.strip()
    ]
    return rows


def scaled(facts: list[Fact], n: int) -> list[Fact]:
    out: list[Fact] = []
    copy = 0
    while len(out) < n:
        for f in facts:
            head = f.head_id if copy == 0 else f"{f.head_id}#{copy}"
            out.append(f.model_copy(update={"head_id": head}))
            if len(out) == n:
                break
        copy += 1
    return out


def item_rows(facts: list[Fact]) -> list[dict]:
    return [{"item_id": i, "props": {}} for i in sorted({f.head_id for f in facts})]


def ours(store: Neo4jStore, facts: list[Fact], *, resolve: bool = False) -> float:
    started = time.perf_counter()
    store.ensure_schema(ONTOLOGY)
    store.write_items(item_rows(facts), item_label=ONTOLOGY.item.label)
    resolutions = None
    if resolve:
        resolutions = EntityResolver(store, ResolutionConfig()).resolve(
            (f.object_type, f.object) for f in facts
        )
    store.write_facts(facts, ONTOLOGY, job="bench", run_id="bench", resolutions=resolutions)
    return time.perf_counter() - started


def naive(store: Neo4jStore, facts: list[Fact]) -> float:
    """One transaction per triple: MERGE the item, the entity and the edge."""
    store.ensure_schema(ONTOLOGY)
    queries = {}
    for rel in ONTOLOGY.relations:
        for tail in ONTOLOGY.relations[rel].tail:
            queries[(rel, tail)] = (
                "MERGE (h:Item {item_id: $head}) "
                "MERGE (e:Entity {key: $key}) ON CREATE SET e.name = $name, e.type = $type "
                f"SET e:`{ONTOLOGY.check_label(tail)}` "
                f"MERGE (h)-[r:`{ONTOLOGY.check_relation(rel)}` {{source: $source}}]->(e)"
            )
    started = time.perf_counter()
    with store.driver.session() as session:
        for f in facts:
            query = queries[(f.relation, f.object_type)]
            params = {
                "head": f.head_id,
                "key": entity_key(f.object_type, f.object),
                "name": f.object,
                "type": f.object_type,
                "source": f.source,
            }
            session.execute_write(lambda tx, q=query, p=params: tx.run(q, **p).consume())
    return time.perf_counter() - started


def graphrag(store: Neo4jStore, facts: list[Fact]) -> float | str:
    try:
        from neo4j_graphrag.components.kg_writer import Neo4jWriter
        from neo4j_graphrag.components.types import Neo4jGraph, Neo4jNode, Neo4jRelationship
    except ImportError:
        try:  # releases before the components moved out of "experimental"
            from neo4j_graphrag.experimental.components.kg_writer import Neo4jWriter  # type: ignore[no-redef]
            from neo4j_graphrag.experimental.components.types import (  # type: ignore[no-redef]
                Neo4jGraph,
                Neo4jNode,
                Neo4jRelationship,
            )
        except ImportError as e:
            return f"not installed ({e.name}); pip install neo4j-graphrag"
    nodes: dict[str, Neo4jNode] = {}
    rels = []
    for f in facts:
        head = f"item:{f.head_id}"
        if head not in nodes:
            nodes[head] = Neo4jNode(id=head, label=ONTOLOGY.item.label, properties={"item_id": f.head_id})
        key = entity_key(f.object_type, f.object)
        if key not in nodes:
            nodes[key] = Neo4jNode(id=key, label=f.object_type, properties={"name": f.object, "key": key})
        rels.append(
            Neo4jRelationship(
                start_node_id=head, end_node_id=key, type=f.relation, properties={"source": f.source}
            )
        )
    graph = Neo4jGraph(nodes=list(nodes.values()), relationships=rels)
    writer = Neo4jWriter(store.driver, batch_size=1000)
    started = time.perf_counter()
    result = asyncio.run(writer.run(graph))
    seconds = time.perf_counter() - started
    if result.status != "SUCCESS":
        return f"failed: {str(result.metadata.get('error'))[:200]}"
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--triples", type=int, default=200_000)
    parser.add_argument("--naive-sample", type=int, default=10_000)
    parser.add_argument("--no-graphrag", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    if not HETREC.is_dir():
        sys.exit(f"error: {HETREC} not found; the benchmark reads the HetRec files from ../shared/data")
    neo4j_service.install()
    apoc = None
    if not args.no_graphrag:
        try:
            apoc = neo4j_service.install_apoc()
        except Exception as e:  # noqa: BLE001 - report and go on without the graphrag writer
            print(f"APOC not available ({e}); the graphrag writer will be skipped")
    was_running = neo4j_service.status().running
    if was_running and apoc is not None:
        neo4j_service.stop()
    neo4j_service.start()
    config = Neo4jConfig(uri=f"bolt://127.0.0.1:{neo4j_service.bolt_port()}")
    try:
        facts = scaled(hetrec_facts(), args.triples)
        print(
            f"machine: {platform.node()}, {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}"
        )
        print(
            f"neo4j {neo4j_service.version()} (local, heap {os.environ['KG_ENHANCE_NEO4J_HEAP']}), "
            f"{len(facts)} triples, {len(item_rows(facts))} items, "
            f"{len({entity_key(f.object_type, f.object) for f in facts})} entities"
        )
        results: dict[str, tuple[float, int]] = {}
        with Neo4jStore(config) as store:
            store.clear()
            # warm the server's JIT and page cache once, with every writer's statements
            warm = facts[:20_000]
            ours(store, warm)
            store.clear()
            naive(store, warm[:500])
            store.clear()
            if not args.no_graphrag and apoc is not None:
                graphrag(store, warm)
                store.clear()
            # alternate the two batched writers over several rounds and report medians: on a
            # small machine one round can be off by 25% either way
            runs: dict[str, list[float]] = {"ours": [], "reload": [], "graphrag": []}
            same = True
            for _ in range(args.rounds):
                store.clear()
                runs["ours"].append(ours(store, facts))
                fp = graph_fingerprint(store)
                runs["reload"].append(ours(store, facts))
                same = same and graph_fingerprint(store) == fp
                store.clear()
                if not args.no_graphrag and apoc is not None:
                    got = graphrag(store, facts)
                    if isinstance(got, str):
                        print(f"neo4j-graphrag Neo4jWriter: {got}")
                        apoc = None
                    else:
                        runs["graphrag"].append(got)
                    store.clear()
            results[f"kg_enhance writer (median of {args.rounds})"] = (
                statistics.median(runs["ours"]),
                len(facts),
            )
            results["kg_enhance re-load, idempotent (median)"] = (
                statistics.median(runs["reload"]),
                len(facts),
            )
            if runs["graphrag"]:
                results[f"neo4j-graphrag Neo4jWriter (median of {args.rounds})"] = (
                    statistics.median(runs["graphrag"]),
                    len(facts),
                )
            results["kg_enhance writer + entity resolution"] = (ours(store, facts, resolve=True), len(facts))
            store.clear()
            sample = facts[: args.naive_sample]
            results[f"naive, 1 tx per triple ({len(sample)} sample)"] = (naive(store, sample), len(sample))
            store.clear()
        print(f"{'writer':48s} {'seconds':>9s} {'triples/s':>11s}")
        rates = {}
        for name, (seconds, n) in results.items():
            rates[name] = n / seconds
            print(f"{name:48s} {seconds:9.2f} {rates[name]:11,.0f}")
        ours_rate = next(v for k, v in rates.items() if k.startswith("kg_enhance writer (median"))
        naive_rate = next(v for k, v in rates.items() if k.startswith("naive"))
        print(f"kg_enhance / naive: {ours_rate / naive_rate:.1f}x (target >= 10x)")
        graphrag_rate = next((v for k, v in rates.items() if k.startswith("neo4j-graphrag")), None)
        if graphrag_rate:
            print(f"kg_enhance / neo4j-graphrag: {ours_rate / graphrag_rate:.2f}x (target >= 2x)")
        print("seconds per round:", {k: [round(x, 2) for x in v] for k, v in runs.items()})
        print(f"re-load left the fingerprint unchanged: {same}")
    finally:
        if not was_running:
            neo4j_service.stop()


if __name__ == "__main__":
    main()
