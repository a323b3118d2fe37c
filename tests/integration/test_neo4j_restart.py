"""Neo4j restarted in the middle of a load: the job retries or resumes, and the graph ends up identical."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from kg_enhance.graph.fingerprint import graph_fingerprint
from kg_enhance.services import neo4j
from tests.support.helpers import REPO, cli, service_missing, write_job


@pytest.mark.neo4j
@pytest.mark.slow
def test_restart_during_load_ends_in_the_clean_graph(neo4j_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    if not neo4j.status().running:
        service_missing("the reachable Neo4j is not the project-managed one; cannot restart it")
    job = write_job(tmp_path, llm_enabled=False)
    clean = cli("run", str(job), "--only", "load", "--no-progress")
    assert clean.returncode == 0, clean.stderr[-2000:]
    expected = graph_fingerprint(neo4j_store)
    neo4j_store.clear()

    # small batches make the load long enough to be interrupted
    cmd = [sys.executable, "-m", "kg_enhance.cli", "run", str(job), "--only", "load", "--no-progress"]
    proc = subprocess.Popen(
        [*cmd, "--set", "neo4j.batch_size=100"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        n = neo4j_store.query("MATCH (:User)-[r:INTERACTED]->() RETURN count(r) AS n")[0]["n"]
        if n > 0:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the load finished before Neo4j could be restarted; make it longer"
    assert neo4j.stop().running is False
    time.sleep(2)
    assert neo4j.start().running
    _, err = proc.communicate(timeout=600)
    print(f"load across the restart exited {proc.returncode}")
    if proc.returncode != 0:  # it did not ride out the restart: one clear line, then a re-run resumes
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "run again" in lines[0], err[-2000:]
        again = cli("run", str(job), "--only", "load", "--no-progress")
        assert again.returncode == 0, again.stderr[-2000:]
    neo4j_store.close()
    from kg_enhance.graph.store import Neo4jStore

    with Neo4jStore(neo4j_store.config, namespace=neo4j_store.namespace) as fresh:
        assert graph_fingerprint(fresh) == expected
