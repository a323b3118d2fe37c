"""`kg-enhance graph bulk-load`: the offline first load gives the transactional load's graph.

It stops and restarts the project-managed test server (as ``test_neo4j_restart.py``
does) and replaces its database, so it runs only where the reachable Neo4j is that
server.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kg_enhance.graph.fingerprint import graph_fingerprint
from kg_enhance.graph.store import Neo4jStore
from kg_enhance.services import neo4j
from tests.support.helpers import cli, service_missing, write_job


@pytest.mark.neo4j
@pytest.mark.slow
def test_bulk_load_gives_the_transactional_graph(neo4j_store: Neo4jStore, tmp_path: Path) -> None:
    if not neo4j.status().running:
        service_missing("the reachable Neo4j is not the project-managed one; bulk-load cannot restart it")
    job = write_job(tmp_path, llm_enabled=False)
    transactional = cli("run", str(job), "--only", "load", "--no-progress")
    assert transactional.returncode == 0, transactional.stderr[-2000:]
    expected = graph_fingerprint(neo4j_store)
    reads = (neo4j_store.totals(), neo4j_store.counts_by_label(), neo4j_store.counts_by_type())

    refused = cli("graph", "bulk-load", str(job))  # the database is not empty
    assert refused.returncode == 6, refused.stderr[-2000:]
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "empty database" in lines[0] and "kg-enhance run" in lines[0], lines

    neo4j_store.clear()
    bulk = cli("graph", "bulk-load", str(job), "--json")
    assert bulk.returncode == 0, bulk.stderr[-2000:]
    neo4j_store.close()
    with Neo4jStore(neo4j_store.config, namespace=neo4j_store.namespace) as fresh:
        assert graph_fingerprint(fresh) == expected
        assert (fresh.totals(), fresh.counts_by_label(), fresh.counts_by_type()) == reads
        indexed = {r["type"] for r in fresh.run_statement("schema/fact_run_indexes_online")}
        assert {"DIRECTED_BY", "HAS_GENRE", "PRODUCED_IN"} <= indexed
    # a transactional load on top of the imported graph changes nothing: the constraints hold, MERGE finds it all
    again = cli("run", str(job), "--only", "load", "--no-progress")
    assert again.returncode == 0, again.stderr[-2000:]
    with Neo4jStore(neo4j_store.config, namespace=neo4j_store.namespace) as fresh:
        assert graph_fingerprint(fresh) == expected
        assert (fresh.totals(), fresh.counts_by_label(), fresh.counts_by_type()) == reads
